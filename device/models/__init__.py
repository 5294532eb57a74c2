"""Whisper models for whisper.cpp: import (CTranslate2, transformers safetensors, ggml), quantize, store, the
embedded default.

Entry points: :class:`ModelStore` (install, look up, list, select, remove; it never converts anything),
:func:`sttkb.models.importer.import_model` (convert a source into the store) and
:func:`sttkb.models.default.ensure_default_model` (install the embedded default, explicitly, on first use)."""

from __future__ import annotations

from sttkb.models.errors import Error
from sttkb.models.store import ModelStore, default_store_dir

__all__ = ["Error", "ModelStore", "default_store_dir"]

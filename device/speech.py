"""The one place that turns settings and ``--model`` into a loaded transcriber (the speech side's factory).

Used by ``sttkb run``, ``transcribe``, ``dictate`` and ``bench`` through the composition root (``sttkb.cli``).

What ``--model`` means, everywhere (:func:`choose_model`):

- a **file path** when it looks like one — it contains ``/``, starts with ``~`` or ends in ``.bin`` — and then the
  file must exist (``./mine`` names a file in the current directory);
- otherwise a **name in the model store** (``sttkb model list``);
- not given: ``[models] name``, else the model chosen with ``sttkb model use``, else the embedded default
  (tiny.en q8_0, installed into the store from the bundled package on first use).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sttkb.config import Config
from sttkb.errors import SttkbError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    """The ggml file whisper.cpp loads."""
    name: str
    """What the user calls it (a store name, or the file's stem): shown in ``sttkb status`` and logs."""


def looks_like_path(model: str) -> bool:
    return "/" in model or model.startswith("~") or model.endswith(".bin")


def choose_model(config: Config, model: str | None = None, *,
                 on_progress: Callable[[str], None] | None = None) -> ModelChoice:
    """The model to load for ``--model`` (None: the configured one). Raises :class:`SttkbError` with what to do.

    When nothing is chosen and the embedded default is not in the store yet, it is installed now (a few seconds,
    once); each step goes to ``on_progress`` (else the log)."""
    if model and looks_like_path(model):
        path = Path(model).expanduser()
        if not path.is_file():
            raise SttkbError(f"{path}: no such model file (give a ggml .bin, or a name from `sttkb model list`)")
        return ModelChoice(path, path.stem)
    from sttkb.models.errors import DefaultModelNotInstalledError
    from sttkb.models.store import ModelStore
    store = ModelStore(config.models.store or None)
    name = model or config.models.name or None
    try:
        path = store.resolve(name)
    except DefaultModelNotInstalledError:
        from sttkb.models.default import ensure_default_model
        path = ensure_default_model(store, on_progress=on_progress)
    return ModelChoice(path, name or store.current() or path.stem)


def load_transcriber(config: Config, model: ModelChoice | Path, *, warm_up: bool = True, yield_cpu: bool = False):
    """A :class:`sttkb.chain.Transcriber` with the model loaded (and the remote engine of ``[asr] engine``, if any,
    in front of it: :func:`load_engine`).

    ``warm_up``: one throw-away decode so the first phrase of a live dictation is quick; a file transcribed once
    gains nothing from it (on a Pi it costs seconds). ``yield_cpu``: decode below the priority of capture and
    typing (the box's daemon; see :mod:`sttkb.asr.priority`)."""
    from sttkb.chain import Transcriber
    path = model.path if isinstance(model, ModelChoice) else Path(model)
    engine = load_engine(config, path)
    transcriber = Transcriber(config, engine=engine, warm_up=warm_up)
    transcriber.engine.yield_cpu = yield_cpu
    return transcriber


def load_engine(config: Config, path: Path):
    """The recognizer ``[asr] engine`` asks for: this box's whisper.cpp on ``path`` ("local"), or a speech server
    with that model as its fallback (:class:`sttkb.asr.fallback.FallbackEngine`). The server's client is built
    first, so a bad API key file stops before the model is loaded."""
    from sttkb.asr.engine import WhisperEngine
    client = None
    if config.asr.remote is not None:
        from sttkb.asr.fallback import build_client
        client = build_client(config.asr)
    log.info("loading model %s", path)
    local = WhisperEngine(path, config.asr)
    if client is None:
        return local
    from sttkb.asr.fallback import FallbackEngine
    log.info("remote engine %s: speech goes there; the box's model decodes whenever it fails", client.url)
    return FallbackEngine(local, client, config.asr)

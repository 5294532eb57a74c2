"""Shared fixtures. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Heavy test artifacts (the imported default model, kernels, wheelhouses, base images) are cached per user, outside
# the clone, keyed by their inputs: a fresh clone (CI) on the same machine starts warm. $STTKB_TEST_CACHE overrides.
CACHE = Path(os.environ.get("STTKB_TEST_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sttkb-tests")


@pytest.fixture(scope="session")
def model_store_dir() -> Path:
    path = CACHE / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def default_model(model_store_dir) -> Path:
    """Path to the embedded default model (tiny.en q8_0 ggml), imported from the PyPI package once."""
    from sttkb.models.default import ensure_default_model
    return ensure_default_model(model_store_dir)


@pytest.fixture(scope="session")
def engine(default_model):
    """One real whisper.cpp engine on the embedded default model (2 threads), warmed up, for the whole session."""
    from sttkb.asr.engine import WhisperEngine
    from sttkb.config.asr import AsrSettings
    eng = WhisperEngine(default_model, AsrSettings(threads=2))
    eng.warm_up()
    yield eng
    eng.close()

"""A real whisper.cpp engine on the embedded default model, loaded once per session."""

from __future__ import annotations

import pytest

from sttkb.asr.engine import WhisperEngine
from sttkb.config.asr import AsrSettings


@pytest.fixture(scope="session")
def engine(default_model):
    eng = WhisperEngine(default_model, AsrSettings(threads=2))
    eng.warm_up()
    yield eng
    eng.close()

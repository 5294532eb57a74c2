"""A real whisper.cpp engine on the embedded default model, loaded once per session."""

from __future__ import annotations

import pytest

from device.asr.engine import WhisperEngine
from device.config.asr import AsrSettings


@pytest.fixture(scope="session")
def engine(default_model):
    eng = WhisperEngine(default_model, AsrSettings(threads=2))
    eng.warm_up()
    yield eng
    eng.close()

"""One real engine (embedded default model) and a Transcriber around it for the chain tests."""

from __future__ import annotations

import pytest

from device.asr.engine import WhisperEngine
from device.chain import Transcriber
from device.config import Config
from device.config.asr import AsrSettings


@pytest.fixture(scope="session")
def engine(default_model):
    eng = WhisperEngine(default_model, AsrSettings(threads=2))
    eng.warm_up()
    yield eng
    eng.close()


@pytest.fixture
def transcriber(engine):
    return Transcriber(Config(), engine=engine)

"""One real engine (embedded default model) and a Transcriber around it for the chain tests."""

from __future__ import annotations

import pytest

from sttkb.asr.engine import WhisperEngine
from sttkb.chain import Transcriber
from sttkb.config import Config
from sttkb.config.asr import AsrSettings


@pytest.fixture(scope="session")
def engine(default_model):
    eng = WhisperEngine(default_model, AsrSettings(threads=2))
    eng.warm_up()
    yield eng
    eng.close()


@pytest.fixture
def transcriber(engine):
    return Transcriber(Config(), engine=engine)

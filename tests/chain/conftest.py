"""A Transcriber around the session's real engine (tests/conftest.py) for the chain tests."""

from __future__ import annotations

import dataclasses

import pytest

from sttkb.chain import Transcriber
from sttkb.config import Config


@pytest.fixture
def transcriber(engine):
    """Greedy throughout: streamed text is compared with batch text, and beam decodes where there is time depend on this machine's speed (tests/chain/test_idle_beam.py)."""
    c = Config()
    return Transcriber(dataclasses.replace(c, asr=dataclasses.replace(c.asr, beam_when_idle=False)), engine=engine)


@pytest.fixture
def decoded(engine, monkeypatch):
    """The audio whisper.cpp was asked to decode, in order."""
    calls = []
    real = engine.transcribe
    monkeypatch.setattr(engine, "transcribe", lambda seg, prompt="": calls.append(seg) or real(seg, prompt))
    return calls

"""A Transcriber around the session's real engine (tests/conftest.py) for the chain tests."""

from __future__ import annotations

import pytest

from sttkb.chain import Transcriber
from sttkb.config import Config


@pytest.fixture
def transcriber(engine):
    return Transcriber(Config(), engine=engine)

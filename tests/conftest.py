"""Shared fixtures. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# One model store per test session, outside the user's home: the default model is imported into it once.
CACHE = Path(os.environ.get("STTKB_TEST_CACHE", REPO / ".cache" / "tests"))


@pytest.fixture(scope="session")
def model_store_dir() -> Path:
    path = CACHE / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def default_model(model_store_dir) -> Path:
    """Path to the embedded default model (tiny.en q8_0 ggml), imported from the PyPI package once."""
    from device.models.default import ensure_default_model
    return ensure_default_model(model_store_dir)

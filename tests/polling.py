"""Waiting in tests: poll a condition until it holds or the time is up (never a bare sleep)."""

from __future__ import annotations

import time
from typing import Callable


def wait_for(condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """True as soon as ``condition()`` is true; False if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())

"""Waiting in tests: poll a condition until it holds or the time is up (never a bare sleep)."""

from __future__ import annotations

import time
from typing import Callable


def wait_for(condition: Callable[[], object], timeout: float = 30.0, interval: float = 0.02) -> bool:
    """True as soon as ``condition()`` is true; False if it is still false after ``timeout`` seconds.

    The default is generous on purpose: what is awaited is a chain of threads and D-Bus round trips, and on a
    2-core machine busy with emulators 5 s was once not enough (tests/ble/test_peripheral_mock.py failed by chance
    under load). A passing test returns as soon as the condition holds; a wait meant to time out names its own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())

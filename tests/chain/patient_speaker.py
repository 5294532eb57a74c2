"""A microphone for chain tests that must not race the recognizer: it waits for the chain between parts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

CHUNK = 480
"""Samples handed over at a time (30 ms at 16 kHz, as the microphone does)."""


class PatientSpeaker:
    """Audio parts played as fast as they are taken; after each part in ``wait_after`` the source waits (at most 60 s)
    until that part's condition holds. Ending = the button's release."""

    def __init__(self, parts: list[np.ndarray], wait_after: dict[int, Callable[[], bool]]) -> None:
        self.parts, self.wait_after = parts, wait_after
        self._stop = threading.Event()
        self.overflows = 0

    def chunks(self):
        for n, part in enumerate(self.parts):
            for i in range(0, len(part), CHUNK):
                if self._stop.is_set():
                    return
                yield part[i:i + CHUNK]
            if n in self.wait_after:
                deadline = time.monotonic() + 60
                while not self.wait_after[n]() and time.monotonic() < deadline:
                    time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()


def one_more(count: Callable[[], int]) -> Callable[[], bool]:
    """A condition that holds once ``count()`` has grown past its value at the condition's first check."""
    before: list[int] = []

    def grown() -> bool:
        if not before:
            before.append(count())
        return count() > before[0]
    return grown

"""Several keyboards as one: each text goes to the keyboard whose host is connected (USB before Bluetooth)."""

from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

from sttkb.keyboard import IDLE, OFFLINE, PAUSED, TYPING, Keyboard, KeyboardState


class FirstConnectedKeyboard:
    """Types each text on the first of several keyboards whose host is connected (USB before Bluetooth).

    A text goes to one keyboard only, never to two hosts. If none is connected, it goes to the first one that
    is not offline, else the first keyboard, where it waits (paused) until a host appears.
    """

    def __init__(self, keyboards: Sequence[Keyboard], *, waiting: Callable[[], int] | None = None) -> None:
        """``waiting()``: the index of the keyboard a text waits on when no host is connected (default: the
        first); the Bluetooth keyboards on both radios name the one of the host that comes back."""
        if not keyboards:
            raise ValueError("FirstConnectedKeyboard needs at least one keyboard")
        self._keyboards = list(keyboards)
        self._waiting = waiting or (lambda: 0)
        self._used: list[Keyboard] = []
        self._lock = threading.Lock()

    def _pick(self) -> Keyboard:
        for states in ({IDLE, TYPING}, {PAUSED}):
            for kb in self._keyboards:
                if kb.state in states:
                    return kb
        index = self._waiting()
        return self._keyboards[index if 0 <= index < len(self._keyboards) else 0]

    def type_text(self, text: str) -> None:
        with self._lock:
            busy = [kb for kb in self._used if kb.state in (TYPING, PAUSED)]
            kb = busy[0] if busy else self._pick()  # keep one text run on one host
            if kb not in self._used:
                self._used.append(kb)
        kb.type_text(text)

    def cancel(self) -> str:
        with self._lock:
            used, self._used = self._used, []
        return "".join(kb.cancel() for kb in used)

    def wait_idle(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            used = list(self._used)
        for kb in used:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not kb.wait_idle(left):
                return False
        return True

    @property
    def state(self) -> KeyboardState:
        states = [kb.state for kb in self._keyboards]
        for s in (TYPING, PAUSED, IDLE):
            if s in states:
                return s
        return OFFLINE

    def close(self) -> None:
        for kb in self._keyboards:
            kb.close()

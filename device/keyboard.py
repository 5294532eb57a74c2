"""What the device side needs from a keyboard: the :class:`Keyboard` protocol (see docs/ARCHITECTURE.md).

``sttkb.gadget.typist.Typist`` implements it over a USB, Bluetooth or virtual transport. ``device/`` never imports
``gadget/``: the CLI (the composition root) builds keyboards and hands them to the daemon or ``dictate``.

Also here, because they only need the protocol: :class:`PairingWindow` (what the daemon needs from the
Bluetooth side to open a pairing window) and :class:`FirstConnectedKeyboard`, which types to whichever of
several keyboards (USB, Bluetooth) has a host connected.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol, Sequence, runtime_checkable

__all__ = ["Keyboard", "KeyboardState", "PairingWindow", "FirstConnectedKeyboard"]

#: The values of :attr:`Keyboard.state`.
KeyboardState = str  # "idle" | "typing" | "paused" | "offline"
IDLE, TYPING, PAUSED, OFFLINE = "idle", "typing", "paused", "offline"


@runtime_checkable
class Keyboard(Protocol):
    """A keyboard that types text on the host, from its own thread."""

    def type_text(self, text: str) -> None:
        """Queue ``text`` to be typed; return at once (typing happens in the background)."""

    def cancel(self) -> str:
        """Drop whatever is queued but not typed yet and return it (``""`` if nothing was left)."""

    def wait_idle(self, timeout: float | None) -> bool:
        """Block until everything queued is typed; ``timeout`` in seconds (None = forever). True if idle."""

    @property
    def state(self) -> KeyboardState:
        """"idle", "typing", "paused" (host went away mid-text; resumes when it is back) or "offline"."""

    def close(self) -> None:
        """Stop the typing thread and release the transport (ends with all keys up)."""


@runtime_checkable
class PairingWindow(Protocol):
    """The Bluetooth side's pairing window, as the daemon sees it."""

    def open_pairing_window(self, timeout_s: float, on_done: Callable[[bool], None]) -> None:
        """Become discoverable and pairable for ``timeout_s`` seconds; return at once.

        ``on_done(paired)`` is called once, from any thread, when a host paired (True) or the window closed
        without one (False).
        """

    def close_pairing_window(self) -> None:
        """Close the window early (``on_done(False)`` follows unless a host already paired)."""


class FirstConnectedKeyboard:
    """Types each text on the first of several keyboards whose host is connected (USB before Bluetooth).

    A text goes to one keyboard only, never to two hosts. If none is connected, it goes to the first one that
    is not offline, else the first keyboard, where it waits (paused) until a host appears.
    """

    def __init__(self, keyboards: Sequence[Keyboard]) -> None:
        if not keyboards:
            raise ValueError("FirstConnectedKeyboard needs at least one keyboard")
        self._keyboards = list(keyboards)
        self._used: list[Keyboard] = []
        self._lock = threading.Lock()

    def _pick(self) -> Keyboard:
        for states in ({IDLE, TYPING}, {PAUSED}):
            for kb in self._keyboards:
                if kb.state in states:
                    return kb
        return self._keyboards[0]

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

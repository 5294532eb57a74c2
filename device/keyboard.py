"""What the device side needs from a keyboard: the :class:`Keyboard` protocol (see docs/ARCHITECTURE.md).

Part of the shared core (with :mod:`sttkb.errors` and :mod:`sttkb.config`): the daemon depends on these protocols,
the keyboard side (``sttkb.gadget``) implements them — ``sttkb.gadget.typist.Typist`` over a USB, Bluetooth or
virtual transport, ``sttkb.gadget.routing.FirstConnectedKeyboard`` over several typists — and only the composition
root (``sttkb.cli``, through ``sttkb.gadget.factory``) builds one and hands it over.

:class:`PairingWindow` is what the daemon needs from the Bluetooth side to open a pairing window, and
:class:`PasskeyRequest` is how the Bluetooth side asks for the code a host shows while pairing (the user says it; the
speech side hears it; the daemon answers).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol, runtime_checkable

__all__ = ["Keyboard", "KeyboardState", "PairingWindow", "PasskeyRequest", "IDLE", "TYPING", "PAUSED", "OFFLINE"]

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

    def on_passkey_request(self, handler: Callable[["PasskeyRequest"], None] | None) -> None:
        """Call ``handler(request)`` (from any thread; it must return at once) when a host pairing inside the
        window shows a code that the keyboard must enter. None: no handler, such requests are refused."""


class PasskeyRequest:
    """One "enter the code the host shows" request (LE Secure Connections passkey entry), answered once.

    The Bluetooth side makes it when BlueZ asks and waits in :meth:`wait`; the daemon answers with six digits or
    None (refuse) through :meth:`answer`; BlueZ may give up first (:meth:`cancel`: the host cancelled, or its
    30 s pairing timeout). The code is never part of a repr, a log line or an exception.
    """

    def __init__(self, host: str, timeout_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        """What to call the host in logs and status (its name, else its address)."""
        self.deadline = clock() + timeout_s
        """``clock()`` time after which an answer is useless (the host's pairing has timed out)."""
        self.outcome = ""
        """"" while pending, then "answered", "refused", or why it ended without an answer ("cancelled", ...)."""
        self._clock = clock
        self._passkey: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"PasskeyRequest(host={self.host!r}, outcome={self.outcome or 'pending'!r})"

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - self._clock())

    def answer(self, passkey: str | None) -> bool:
        """Six ASCII digits, or None to refuse. False (and nothing sent) if the request has already ended."""
        if passkey is not None and not (len(passkey) == 6 and passkey.isascii() and passkey.isdigit()):
            raise ValueError("a passkey is exactly six digits")
        return self._end("answered" if passkey is not None else "refused", passkey)

    def cancel(self, why: str = "cancelled") -> bool:
        """The Bluetooth side gave up (``why``: "cancelled", "timed out", ...). False if it had already ended."""
        return self._end(why, None)

    def wait(self, timeout: float | None = None) -> str | None:
        """Block until the request ends; the six digits if it was answered, else None. The code is handed over
        once: a second call gets None (nothing keeps it)."""
        self._done.wait(timeout)
        with self._lock:
            passkey, self._passkey = self._passkey, None
            return passkey

    def add_done_callback(self, fn: Callable[[], None]) -> None:
        """``fn()`` runs once when the request ends (at once if it has), on the thread that ended it."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        fn()

    def _end(self, outcome: str, passkey: str | None) -> bool:
        with self._lock:
            if self._done.is_set():
                return False
            self.outcome, self._passkey = outcome, passkey
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn()
        return True

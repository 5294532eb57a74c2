"""What the device side needs from a keyboard: the :class:`Keyboard` protocol (see docs/ARCHITECTURE.md).

Part of the shared core (with :mod:`sttkb.errors` and :mod:`sttkb.config`): the daemon depends on these protocols,
the keyboard side (``sttkb.gadget``) implements them — ``sttkb.gadget.typist.Typist`` over a USB, Bluetooth or
virtual transport, ``sttkb.gadget.routing.FirstConnectedKeyboard`` over several typists — and only the composition
root (``sttkb.cli``, through ``sttkb.gadget.factory``) builds one and hands it over.

:class:`PairingWindow` is what the daemon needs from the Bluetooth side to open a pairing window.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

__all__ = ["Keyboard", "KeyboardState", "PairingWindow", "IDLE", "TYPING", "PAUSED", "OFFLINE"]

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

"""Errors of the keyboard side. Every one is an :class:`SttkbError`; messages say what to do next.

The typist tells a host that went away (:class:`HostDisconnected`: pause, keep the rest, resume later) apart from
everything else (a bad layout name, a missing gadget), which is a configuration problem the user must fix.
"""

from __future__ import annotations

from sttkb.errors import SttkbError


class Error(SttkbError):
    """Base of all expected errors raised by gadget/."""


class HostDisconnected(Error, ConnectionError):
    """The host is not taking reports (unplugged, suspended, not paired, busy too long).

    Never means "written": the report that raised this was not delivered. ``reason`` is a short machine-friendly
    word ("eagain", "eshutdown", "timeout", "not-configured", "disconnected", ...) that the LED layer can map.
    ``earlier_unsure``: the transport cannot tell whether the report before this one reached the host either
    (USB: f_hid completes a report that an unplug aborts the same way as one the host took, and the controller's
    state may still read "configured" for a moment after), so the typist resumes one report earlier.
    """

    def __init__(self, message: str, *, reason: str = "disconnected", earlier_unsure: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.earlier_unsure = earlier_unsure


class LayoutError(Error, ValueError):
    """An XKB layout/variant name that libxkbcommon cannot compile."""


class UnmappableError(Error, ValueError):
    """A character cannot be typed in the layout and the policy does not allow a fallback."""


class GadgetError(Error, OSError):
    """The configfs USB gadget cannot be created, bound or removed."""


class TransportError(Error, OSError):
    """A transport cannot be opened at all (missing device node, no permission)."""

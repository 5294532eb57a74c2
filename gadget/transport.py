"""The Transport protocol: where 8-byte boot keyboard reports go (USB /dev/hidg0, BLE GATT, a virtual decoder).

Only transports do I/O. A transport never counts a report as delivered unless the host took it; if the host is
gone it raises :class:`sttkb.gadget.errors.HostDisconnected` and the typist pauses and retries the same report later.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

LED_NUM_LOCK = 0x01
LED_CAPS_LOCK = 0x02
LED_SCROLL_LOCK = 0x04


@runtime_checkable
class Transport(Protocol):
    """A place that takes 8-byte HID boot keyboard input reports."""

    name: str
    """Short name for logs and status ("usb", "bluetooth", "virtual")."""

    def wait_ready(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a host is attached and listening; True if it is."""
        ...

    def send(self, report: bytes) -> None:
        """Deliver one 8-byte report or raise :class:`~sttkb.gadget.errors.HostDisconnected` (then it was NOT sent)."""
        ...

    def leds(self) -> int:
        """The last LED output report byte from the host (bit 0x02 = Caps Lock); 0 if none was seen."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice."""
        ...

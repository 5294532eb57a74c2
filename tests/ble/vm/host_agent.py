"""A yes-to-everything pairing agent for the *host* side of the VM tests (a laptop's own agent).

With one bluetoothd serving both virtual controllers, the keyboard's default agent would otherwise get the
host's confirmation request too; BlueZ lets an agent handle one request at a time, so the second side failed
with "Device or resource busy". Pairing through Device1.Pair from the connection that registered this agent
sends the host side's questions here, as on a real laptop.

No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from the annotations.
"""

from dbus_fast.service import ServiceInterface, method

from sttkb.gadget.ble import defs


class HostAgent(ServiceInterface):
    """``on_display(passkey)`` is called when BlueZ asks the host to show a code (passkey entry: the host has a
    display, the keyboard enters it) — what the user reads off the laptop's screen."""

    def __init__(self, on_display=None) -> None:
        super().__init__(defs.AGENT)
        self.requests: list[str] = []
        self.displayed: list[int] = []
        self._on_display = on_display

    @method()
    def DisplayPasskey(self, device: "o", passkey: "u", entered: "q"):  # noqa: N802
        self.requests.append("DisplayPasskey")
        if entered == 0 and passkey not in self.displayed[-1:]:
            self.displayed.append(passkey)
            if self._on_display is not None:
                self._on_display(passkey)

    @method()
    def Release(self):  # noqa: N802
        pass

    @method()
    def RequestConfirmation(self, device: "o", passkey: "u"):  # noqa: N802
        self.requests.append("RequestConfirmation")

    @method()
    def RequestAuthorization(self, device: "o"):  # noqa: N802
        self.requests.append("RequestAuthorization")

    @method()
    def AuthorizeService(self, device: "o", uuid: "s"):  # noqa: N802
        self.requests.append("AuthorizeService")

    @method()
    def Cancel(self):  # noqa: N802
        self.requests.append("Cancel")

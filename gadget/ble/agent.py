"""The pairing agent (org.bluez.Agent1) of a box with one button and an LED: NoInputNoOutput, Just Works.

The agent says yes only while the pairing window is open (``is_open()`` is True) and no otherwise. With Just
Works, bluetoothd asks the agent only in some cases (re-pairing a host that already has a key, with
``JustWorksRepairing = confirm``; service authorization); the main gate for new pairings is the adapter's
Pairable property, which the pairing window switches. The agent is the second lock on the same door.

No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from the annotations.
"""

import logging
from typing import Callable

from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, method

from sttkb.gadget.ble import defs

log = logging.getLogger(__name__)


class PairingAgent(ServiceInterface):
    """Accept pairing requests only while ``is_open()``; ``is_bonded(device_path)`` lets bonded hosts reconnect."""

    def __init__(self, path: str, is_open: Callable[[], bool], is_bonded: Callable[[str], bool]) -> None:
        super().__init__(defs.AGENT)
        self.path = path
        self._is_open = is_open
        self._is_bonded = is_bonded
        self.requests: list[tuple[str, str, bool]] = []  # (method, device, accepted): for status and tests

    def _decide(self, what: str, device: str) -> None:
        ok = self._is_open()
        self.requests.append((what, device, ok))
        if ok:
            log.info("pairing window open: accepting %s from %s", what, device)
            return
        log.warning("pairing window closed: rejecting %s from %s (press the button or run `sttkb bt pair` "
                    "to pair a new host)", what, device)
        raise DBusError(defs.ERR_REJECTED, "pairing window is closed")

    @method()
    def Release(self):  # noqa: N802 (D-Bus names)
        log.info("BlueZ released the pairing agent")

    @method()
    def RequestPinCode(self, device: "o") -> "s":  # noqa: N802
        raise DBusError(defs.ERR_REJECTED, "this keyboard has no PIN")

    @method()
    def DisplayPinCode(self, device: "o", pincode: "s"):  # noqa: N802
        raise DBusError(defs.ERR_REJECTED, "this keyboard has no display")

    @method()
    def RequestPasskey(self, device: "o") -> "u":  # noqa: N802
        raise DBusError(defs.ERR_REJECTED, "this keyboard cannot enter a passkey")

    @method()
    def DisplayPasskey(self, device: "o", passkey: "u", entered: "q"):  # noqa: N802
        pass  # nothing to display on; never called for NoInputNoOutput

    @method()
    def RequestConfirmation(self, device: "o", passkey: "u"):  # noqa: N802
        self._decide("RequestConfirmation", device)

    @method()
    def RequestAuthorization(self, device: "o"):  # noqa: N802
        self._decide("RequestAuthorization", device)

    @method()
    def AuthorizeService(self, device: "o", uuid: "s"):  # noqa: N802
        if self._is_bonded(device):
            return
        self._decide(f"AuthorizeService {uuid}", device)

    @method()
    def Cancel(self):  # noqa: N802
        log.info("pairing request canceled by BlueZ")

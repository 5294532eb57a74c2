"""The LE advertisement (org.bluez.LEAdvertisement1) that lets hosts find and reconnect to the keyboard.

Connectable ("peripheral") and always on while the keyboard runs, so bonded hosts can reconnect. Inside the
pairing window it is *general discoverable* (hosts list it in their "add device" dialogs); outside it the
discoverable flag is off: hosts that are not bonded do not show it, bonded hosts still reconnect.

No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from the annotations.
"""

import logging

from dbus_fast import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_property, method

from sttkb.gadget.ble import defs

log = logging.getLogger(__name__)


class Advertisement(ServiceInterface):
    """A connectable advertisement with the HID service UUID, keyboard appearance and the configured name."""

    def __init__(self, path: str, name: str, *, discoverable: bool) -> None:
        super().__init__(defs.LE_ADVERTISEMENT)
        self.path = path
        self.local_name = name
        self.discoverable = discoverable
        self.released = False

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> "s":  # noqa: N802 (D-Bus names)
        return "peripheral"

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> "as":  # noqa: N802
        return [defs.UUID_HID]

    @dbus_property(access=PropertyAccess.READ)
    def Appearance(self) -> "q":  # noqa: N802
        return defs.APPEARANCE_KEYBOARD

    @dbus_property(access=PropertyAccess.READ)
    def LocalName(self) -> "s":  # noqa: N802
        return self.local_name

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> "b":  # noqa: N802
        return self.discoverable

    @method()
    def Release(self):  # noqa: N802
        log.info("BlueZ released the advertisement %s", self.path)
        self.released = True

"""Generic GATT server objects (GattService1, GattCharacteristic1, GattDescriptor1) for BlueZ's GattManager1.

bluetoothd reads the tree with ObjectManager.GetManagedObjects on the application root (dbus-fast answers that
for every exported path) and calls ReadValue/WriteValue/StartNotify/StopNotify on these objects.

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from the annotations.
"""

import logging
from typing import Callable, Optional

from dbus_fast import PropertyAccess
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_property, method

from sttkb.gadget.ble import defs

log = logging.getLogger(__name__)

ReadHandler = Callable[[], bytes]
WriteHandler = Callable[[bytes], None]


def _offset(options: dict) -> int:
    opt = options.get("offset")
    return int(opt.value) if opt is not None else 0


class GattService(ServiceInterface):
    """org.bluez.GattService1 at ``path``."""

    def __init__(self, path: str, uuid: str, primary: bool = True) -> None:
        super().__init__(defs.GATT_SERVICE)
        self.path = path
        self.uuid = uuid
        self.primary = primary
        self.characteristics: list["GattCharacteristic"] = []

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":  # noqa: N802 (D-Bus names)
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> "b":  # noqa: N802
        return self.primary

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> "ao":  # noqa: N802
        return []

    def add(self, characteristic: "GattCharacteristic") -> "GattCharacteristic":
        self.characteristics.append(characteristic)
        return characteristic


class GattCharacteristic(ServiceInterface):
    """org.bluez.GattCharacteristic1 holding a value; ``flags`` are BlueZ's ("read", "encrypt-read", "notify", ...).

    ``on_write(value)`` is called for writes from the host (raise ValueError to answer "invalid value length").
    ``on_notify_change(notifying, device_path)`` is called when a host subscribes or unsubscribes.
    """

    def __init__(self, service: GattService, index: int, uuid: str, flags: list[str], value: bytes = b"", *,
                 on_write: Optional[WriteHandler] = None, on_read: Optional[ReadHandler] = None,
                 on_notify_change: Optional[Callable[[bool], None]] = None) -> None:
        super().__init__(defs.GATT_CHARACTERISTIC)
        self.path = f"{service.path}/char{index:04x}"
        self.service_path = service.path
        self.uuid = uuid
        self.flags = list(flags)
        self.value = bytes(value)
        self.notifying = False
        self.descriptors: list["GattDescriptor"] = []
        self._on_write = on_write
        self._on_read = on_read
        self._on_notify_change = on_notify_change
        service.add(self)

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":  # noqa: N802
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> "o":  # noqa: N802
        return self.service_path

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":  # noqa: N802
        return self.flags

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> "ay":  # noqa: N802
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> "b":  # noqa: N802
        return self.notifying

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":  # noqa: N802
        if self._on_read is not None:
            self.value = self._on_read()
        offset = _offset(options)
        if offset > len(self.value):
            raise DBusError(defs.ERR_INVALID_OFFSET, f"offset {offset} > length {len(self.value)}")
        return self.value[offset:]

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}"):  # noqa: N802
        if not any(f in self.flags for f in ("write", "write-without-response", "encrypt-write",
                                             "encrypt-authenticated-write", "secure-write",
                                             "authenticated-signed-writes")):
            raise DBusError(defs.ERR_NOT_PERMITTED, "not writable")
        if _offset(options):
            raise DBusError(defs.ERR_INVALID_OFFSET, "offset writes are not supported")
        data = bytes(value)
        if self._on_write is not None:
            try:
                self._on_write(data)
            except ValueError as e:
                raise DBusError(defs.ERR_INVALID_VALUE_LENGTH, str(e)) from e
        self.value = data

    @method()
    def StartNotify(self):  # noqa: N802
        if self.notifying:
            return
        self.notifying = True
        log.info("host subscribed to %s", self.path)
        if self._on_notify_change is not None:
            self._on_notify_change(True)

    @method()
    def StopNotify(self):  # noqa: N802
        if not self.notifying:
            return
        self.notifying = False
        log.info("host unsubscribed from %s", self.path)
        if self._on_notify_change is not None:
            self._on_notify_change(False)

    def notify(self, value: bytes) -> bool:
        """Set the value and, if a host is subscribed, send it as a notification. True if it was sent to BlueZ."""
        self.value = bytes(value)
        if not self.notifying:
            return False
        self.emit_properties_changed({"Value": self.value})
        return True


class GattDescriptor(ServiceInterface):
    """org.bluez.GattDescriptor1 with a constant value (Report Reference and the like)."""

    def __init__(self, characteristic: GattCharacteristic, index: int, uuid: str, flags: list[str],
                 value: bytes) -> None:
        super().__init__(defs.GATT_DESCRIPTOR)
        self.path = f"{characteristic.path}/desc{index:04x}"
        self.characteristic_path = characteristic.path
        self.uuid = uuid
        self.flags = list(flags)
        self.value = bytes(value)
        characteristic.descriptors.append(self)

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":  # noqa: N802
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Characteristic(self) -> "o":  # noqa: N802
        return self.characteristic_path

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":  # noqa: N802
        return self.flags

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":  # noqa: N802
        return self.value[_offset(options):]

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}"):  # noqa: N802
        raise DBusError(defs.ERR_NOT_PERMITTED, "read-only descriptor")


def all_objects(services: list[GattService]) -> list[ServiceInterface]:
    """Every object of an application, services first: what to export under the application root."""
    out: list[ServiceInterface] = []
    for service in services:
        out.append(service)
        for ch in service.characteristics:
            out.append(ch)
            out.extend(ch.descriptors)
    return out

"""Errors of the Bluetooth LE keyboard. Each says what to do; subclasses inherit the fitting builtin."""

from __future__ import annotations

from sttkb.gadget.errors import Error


class BluetoothError(Error):
    """Base of the expected Bluetooth errors."""


class BluezUnavailable(BluetoothError, ConnectionError):
    """No system D-Bus or no bluetoothd on it."""


class BluezVersionError(BluetoothError, RuntimeError):
    """bluetoothd is older than the code needs."""


class AdapterNotFound(BluetoothError, LookupError):
    """The configured Bluetooth adapter (hci0, ...) does not exist."""


class HostNotFound(BluetoothError, LookupError):
    """A HOST argument matches no bonded host."""


class NotPermitted(BluetoothError, PermissionError):
    """BlueZ or D-Bus refused the call (policy, not root, not allowed now)."""


class AlreadyExists(BluetoothError, FileExistsError):
    """Something with that path is already registered with BlueZ (another sttkb running?)."""


class BluezCallFailed(BluetoothError, OSError):
    """Any other error reply from bluetoothd; ``dbus_error`` holds its D-Bus error name."""

    def __init__(self, message: str, *, dbus_error: str = "") -> None:
        super().__init__(message)
        self.dbus_error = dbus_error


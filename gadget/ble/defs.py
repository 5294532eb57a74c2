"""BlueZ D-Bus names and Bluetooth SIG numbers the BLE keyboard uses. Pure data, no I/O."""

from __future__ import annotations

BLUEZ_SERVICE = "org.bluez"
BLUEZ_ROOT = "/org/bluez"

OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
PROPERTIES = "org.freedesktop.DBus.Properties"

ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
AGENT = "org.bluez.Agent1"
AGENT_MANAGER = "org.bluez.AgentManager1"
GATT_MANAGER = "org.bluez.GattManager1"
GATT_SERVICE = "org.bluez.GattService1"
GATT_CHARACTERISTIC = "org.bluez.GattCharacteristic1"
GATT_DESCRIPTOR = "org.bluez.GattDescriptor1"
LE_ADVERTISING_MANAGER = "org.bluez.LEAdvertisingManager1"
LE_ADVERTISEMENT = "org.bluez.LEAdvertisement1"

# org.bluez.Error.* names (doc/*-api.txt). The agent and GATT objects raise some of these back to bluetoothd.
ERROR_PREFIX = "org.bluez.Error."
ERR_FAILED = ERROR_PREFIX + "Failed"
ERR_IN_PROGRESS = ERROR_PREFIX + "InProgress"
ERR_NOT_PERMITTED = ERROR_PREFIX + "NotPermitted"
ERR_NOT_AUTHORIZED = ERROR_PREFIX + "NotAuthorized"
ERR_INVALID_ARGUMENTS = ERROR_PREFIX + "InvalidArguments"
ERR_INVALID_OFFSET = ERROR_PREFIX + "InvalidOffset"
ERR_INVALID_VALUE_LENGTH = ERROR_PREFIX + "InvalidValueLength"
ERR_NOT_SUPPORTED = ERROR_PREFIX + "NotSupported"
ERR_ALREADY_EXISTS = ERROR_PREFIX + "AlreadyExists"
ERR_DOES_NOT_EXIST = ERROR_PREFIX + "DoesNotExist"
ERR_NOT_READY = ERROR_PREFIX + "NotReady"
ERR_REJECTED = ERROR_PREFIX + "Rejected"
ERR_CANCELED = ERROR_PREFIX + "Canceled"
ERR_NOT_CONNECTED = ERROR_PREFIX + "NotConnected"
ERR_ALREADY_CONNECTED = ERROR_PREFIX + "AlreadyConnected"
ERR_AUTH_FAILED = ERROR_PREFIX + "AuthenticationFailed"
ERR_AUTH_REJECTED = ERROR_PREFIX + "AuthenticationRejected"
ERR_AUTH_CANCELED = ERROR_PREFIX + "AuthenticationCanceled"
ERR_CONNECTION_ATTEMPT_FAILED = ERROR_PREFIX + "ConnectionAttemptFailed"
DBUS_UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"
DBUS_SERVICE_UNKNOWN = "org.freedesktop.DBus.Error.ServiceUnknown"
DBUS_ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
DBUS_NO_REPLY = "org.freedesktop.DBus.Error.NoReply"

# The oldest bluetoothd this code is written against: LEAdvertisement1 "Discoverable" and GATT "encrypt-*" flags
# are older, "Includes"/"Appearance" need 5.42+, and Debian bookworm / Raspberry Pi OS ship 5.66.
MIN_BLUEZ_VERSION = (5, 56)


def uuid16(value: int) -> str:
    """The 128-bit Bluetooth base UUID string of a 16-bit SIG number (0x1812 -> '00001812-0000-1000-...')."""
    return f"{value:08x}-0000-1000-8000-00805f9b34fb"


# Services
UUID_HID = uuid16(0x1812)
UUID_BATTERY = uuid16(0x180F)
UUID_DEVICE_INFO = uuid16(0x180A)

# HID service characteristics (HOGP / HIDS 1.0)
UUID_HID_INFORMATION = uuid16(0x2A4A)
UUID_REPORT_MAP = uuid16(0x2A4B)
UUID_HID_CONTROL_POINT = uuid16(0x2A4C)
UUID_REPORT = uuid16(0x2A4D)
UUID_PROTOCOL_MODE = uuid16(0x2A4E)
UUID_BOOT_KEYBOARD_INPUT = uuid16(0x2A22)
UUID_BOOT_KEYBOARD_OUTPUT = uuid16(0x2A32)
# Battery / Device Information
UUID_BATTERY_LEVEL = uuid16(0x2A19)
UUID_PNP_ID = uuid16(0x2A50)
UUID_MANUFACTURER_NAME = uuid16(0x2A29)
UUID_MODEL_NUMBER = uuid16(0x2A24)
UUID_FIRMWARE_REVISION = uuid16(0x2A26)
# Descriptors
UUID_REPORT_REFERENCE = uuid16(0x2908)
UUID_EXTERNAL_REPORT_REFERENCE = uuid16(0x2907)
UUID_CCC = uuid16(0x2902)

APPEARANCE_KEYBOARD = 0x03C1

# Report Reference descriptor "report type" values (HIDS 3.6.2)
REPORT_TYPE_INPUT = 1
REPORT_TYPE_OUTPUT = 2
REPORT_TYPE_FEATURE = 3

# Protocol Mode values
PROTOCOL_MODE_BOOT = 0
PROTOCOL_MODE_REPORT = 1

# HID Control Point values
CONTROL_POINT_SUSPEND = 0
CONTROL_POINT_EXIT_SUSPEND = 1

# PnP ID vendor ID sources
VENDOR_ID_SOURCE_BLUETOOTH = 1
VENDOR_ID_SOURCE_USB = 2


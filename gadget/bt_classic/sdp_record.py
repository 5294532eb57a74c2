"""The keyboard's HID service record for Bluetooth Classic (BR/EDR), as the SDP record XML that BlueZ's
``ProfileManager1.RegisterProfile`` takes in its ``ServiceRecord`` option. Pure: no I/O.

A host reads this record (SDP) before it connects: the two L2CAP channels (control on PSM 0x11, interrupt on
0x13), the HID report descriptor — the same bytes as the USB gadget's and the BLE Report Map
(:data:`sttkb.gadget.reports.REPORT_DESCRIPTOR`) — and the HID Profile 1.1 attributes that say what kind of
device this is: a keyboard (subclass 0x40) that speaks the boot protocol, has a virtual cable (unplugging it
removes the bond on both sides), reconnects by itself (HIDReconnectInitiate) and is page-scannable while not
connected (HIDNormallyConnectable), so either side may bring the link back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Union

from sttkb.gadget.reports import REPORT_DESCRIPTOR

HID_UUID = "00001124-0000-1000-8000-00805f9b34fb"
"""The HID service class (Human Interface Device, 0x1124) as BlueZ spells UUIDs."""

PSM_HID_CONTROL = 0x0011
PSM_HID_INTERRUPT = 0x0013

# Universal attribute IDs (Core spec, SDP) and the HID profile's own (HID Profile 1.1, service record).
ATTR_SERVICE_CLASS_ID_LIST = 0x0001
ATTR_PROTOCOL_DESCRIPTOR_LIST = 0x0004
ATTR_BROWSE_GROUP_LIST = 0x0005
ATTR_LANGUAGE_BASE_LIST = 0x0006
ATTR_PROFILE_DESCRIPTOR_LIST = 0x0009
ATTR_ADDITIONAL_PROTOCOL_DESCRIPTOR_LISTS = 0x000D
ATTR_SERVICE_NAME = 0x0100          # language base 0x0100 + 0
ATTR_SERVICE_DESCRIPTION = 0x0101   # + 1
ATTR_PROVIDER_NAME = 0x0102         # + 2
ATTR_HID_PARSER_VERSION = 0x0201
ATTR_HID_DEVICE_SUBCLASS = 0x0202
ATTR_HID_COUNTRY_CODE = 0x0203
ATTR_HID_VIRTUAL_CABLE = 0x0204
ATTR_HID_RECONNECT_INITIATE = 0x0205
ATTR_HID_DESCRIPTOR_LIST = 0x0206
ATTR_HID_LANGID_BASE_LIST = 0x0207
ATTR_HID_BATTERY_POWER = 0x0209
ATTR_HID_REMOTE_WAKE = 0x020A
ATTR_HID_SUPERVISION_TIMEOUT = 0x020C
ATTR_HID_NORMALLY_CONNECTABLE = 0x020D
ATTR_HID_BOOT_DEVICE = 0x020E

UUID_L2CAP = 0x0100
UUID_HIDP = 0x0011
UUID_HID = 0x1124
UUID_PUBLIC_BROWSE_ROOT = 0x1002

HID_PROFILE_VERSION = 0x0101        # HID Profile 1.1
HID_PARSER_VERSION = 0x0111         # HID class specification 1.11
SUBCLASS_KEYBOARD = 0x40            # Keyboard, not a pointing device (the Class of Device minor bits)
DESCRIPTOR_TYPE_REPORT = 0x22
LANG_ENGLISH = 0x656E               # "en" (ISO 639)
ENCODING_UTF8 = 0x006A              # IANA MIBenum of UTF-8
LANGID_EN_US = 0x0409
LANGUAGE_BASE = 0x0100
SUPERVISION_TIMEOUT_SLOTS = 0x1F40  # 8000 x 0.625 ms = 5 s: the link is given up after 5 s without a packet


@dataclass(frozen=True)
class U8:
    value: int


@dataclass(frozen=True)
class U16:
    value: int


@dataclass(frozen=True)
class Uuid16:
    value: int


@dataclass(frozen=True)
class Text:
    value: Union[str, bytes]
    """A str is stored as text; bytes as BlueZ's hex encoding of a binary string (the report descriptor)."""


Element = Union[U8, U16, Uuid16, Text, bool, list]
"""An SDP data element: unsigned ints, a 16-bit UUID, a text string, a boolean, or a sequence (a list)."""


@dataclass(frozen=True)
class HidRecord:
    """What varies between keyboards; everything else is fixed by the HID profile."""

    name: str = "sttkb keyboard"
    """ServiceName (what a host may show)."""
    description: str = "Keyboard"
    provider: str = "sttkb"
    report_descriptor: bytes = REPORT_DESCRIPTOR
    country_code: int = 0
    """HIDCountryCode: the same value as the USB gadget's bCountryCode (0 = not localized)."""
    battery_powered: bool = False
    normally_connectable: bool = True
    reconnect_initiate: bool = True


def attributes(record: HidRecord) -> dict[int, Element]:
    """The record's attributes by ID (the service record handle is BlueZ's to assign)."""
    l2cap_hidp = lambda psm: [[Uuid16(UUID_L2CAP), U16(psm)], [Uuid16(UUID_HIDP)]]  # noqa: E731
    return {
        ATTR_SERVICE_CLASS_ID_LIST: [Uuid16(UUID_HID)],
        ATTR_PROTOCOL_DESCRIPTOR_LIST: l2cap_hidp(PSM_HID_CONTROL),
        ATTR_BROWSE_GROUP_LIST: [Uuid16(UUID_PUBLIC_BROWSE_ROOT)],
        ATTR_LANGUAGE_BASE_LIST: [U16(LANG_ENGLISH), U16(ENCODING_UTF8), U16(LANGUAGE_BASE)],
        ATTR_PROFILE_DESCRIPTOR_LIST: [[Uuid16(UUID_HID), U16(HID_PROFILE_VERSION)]],
        ATTR_ADDITIONAL_PROTOCOL_DESCRIPTOR_LISTS: [l2cap_hidp(PSM_HID_INTERRUPT)],
        ATTR_SERVICE_NAME: Text(record.name),
        ATTR_SERVICE_DESCRIPTION: Text(record.description),
        ATTR_PROVIDER_NAME: Text(record.provider),
        ATTR_HID_PARSER_VERSION: U16(HID_PARSER_VERSION),
        ATTR_HID_DEVICE_SUBCLASS: U8(SUBCLASS_KEYBOARD),
        ATTR_HID_COUNTRY_CODE: U8(record.country_code),
        ATTR_HID_VIRTUAL_CABLE: True,
        ATTR_HID_RECONNECT_INITIATE: record.reconnect_initiate,
        ATTR_HID_DESCRIPTOR_LIST: [[U8(DESCRIPTOR_TYPE_REPORT), Text(bytes(record.report_descriptor))]],
        ATTR_HID_LANGID_BASE_LIST: [[U16(LANGID_EN_US), U16(LANGUAGE_BASE)]],
        ATTR_HID_BATTERY_POWER: record.battery_powered,
        ATTR_HID_REMOTE_WAKE: True,
        ATTR_HID_SUPERVISION_TIMEOUT: U16(SUPERVISION_TIMEOUT_SLOTS),
        ATTR_HID_NORMALLY_CONNECTABLE: record.normally_connectable,
        ATTR_HID_BOOT_DEVICE: True,
    }


def _element(parent: ET.Element, value: Element) -> None:
    if isinstance(value, bool):  # before the ints: bool is not one of the dataclasses, but keep the order obvious
        ET.SubElement(parent, "boolean", value="true" if value else "false")
    elif isinstance(value, U8):
        ET.SubElement(parent, "uint8", value=f"0x{value.value:02x}")
    elif isinstance(value, U16):
        ET.SubElement(parent, "uint16", value=f"0x{value.value:04x}")
    elif isinstance(value, Uuid16):
        ET.SubElement(parent, "uuid", value=f"0x{value.value:04x}")
    elif isinstance(value, Text):
        if isinstance(value.value, bytes):
            ET.SubElement(parent, "text", encoding="hex", value=value.value.hex())
        else:
            ET.SubElement(parent, "text", value=value.value)
    elif isinstance(value, list):
        seq = ET.SubElement(parent, "sequence")
        for item in value:
            _element(seq, item)
    else:
        raise TypeError(f"not an SDP element: {value!r}")


def record_xml(record: HidRecord = HidRecord()) -> str:
    """The record as BlueZ's SDP XML (``<record><attribute id="0x...">...``), attributes in ID order."""
    root = ET.Element("record")
    for attr_id, value in sorted(attributes(record).items()):
        attr = ET.SubElement(root, "attribute", id=f"0x{attr_id:04x}")
        _element(attr, value)
    return '<?xml version="1.0" encoding="UTF-8" ?>\n' + ET.tostring(root, encoding="unicode")

"""HID boot keyboard reports: the report descriptor and the pure 8-byte report builder.

An input report is 8 bytes: modifier bits, a reserved byte, then up to six pressed key usages (HID usage page
0x07). The host answers with a 1-byte output report carrying its lock LEDs (Num 0x01, Caps 0x02, Scroll 0x04).
Shared by the USB gadget (configfs ``report_desc``) and the BLE HID service (Report Map characteristic).
"""

from __future__ import annotations

REPORT_LENGTH = 8
"""Bytes per input report (boot protocol)."""

# Modifier bits of byte 0 (HID usages 0xE0..0xE7).
MOD_LEFT_CTRL = 0x01
MOD_LEFT_SHIFT = 0x02
MOD_LEFT_ALT = 0x04
MOD_LEFT_GUI = 0x08
MOD_RIGHT_CTRL = 0x10
MOD_RIGHT_SHIFT = 0x20
MOD_RIGHT_ALT = 0x40  # AltGr on layouts that have a third level
MOD_RIGHT_GUI = 0x80

ALL_KEYS_UP = bytes(REPORT_LENGTH)

# The boot keyboard report descriptor (HID 1.11, appendix B.1 layout), with the LED output report and key
# usages 0..0xFF so the international keys (0x87 Ro, 0x89 Yen, ...) work too.
REPORT_DESCRIPTOR = bytes([
    0x05, 0x01,        # Usage Page (Generic Desktop)
    0x09, 0x06,        # Usage (Keyboard)
    0xA1, 0x01,        # Collection (Application)
    0x05, 0x07,        #   Usage Page (Keyboard/Keypad)
    0x19, 0xE0,        #   Usage Minimum (Left Control)
    0x29, 0xE7,        #   Usage Maximum (Right GUI)
    0x15, 0x00,        #   Logical Minimum (0)
    0x25, 0x01,        #   Logical Maximum (1)
    0x75, 0x01,        #   Report Size (1)
    0x95, 0x08,        #   Report Count (8)
    0x81, 0x02,        #   Input (Data, Variable, Absolute): modifier bits
    0x95, 0x01,        #   Report Count (1)
    0x75, 0x08,        #   Report Size (8)
    0x81, 0x01,        #   Input (Constant): reserved byte
    0x95, 0x05,        #   Report Count (5)
    0x75, 0x01,        #   Report Size (1)
    0x05, 0x08,        #   Usage Page (LEDs)
    0x19, 0x01,        #   Usage Minimum (Num Lock)
    0x29, 0x05,        #   Usage Maximum (Kana)
    0x91, 0x02,        #   Output (Data, Variable, Absolute): LED bits
    0x95, 0x01,        #   Report Count (1)
    0x75, 0x03,        #   Report Size (3)
    0x91, 0x01,        #   Output (Constant): LED padding
    0x95, 0x06,        #   Report Count (6)
    0x75, 0x08,        #   Report Size (8)
    0x15, 0x00,        #   Logical Minimum (0)
    0x26, 0xFF, 0x00,  #   Logical Maximum (255)
    0x05, 0x07,        #   Usage Page (Keyboard/Keypad)
    0x19, 0x00,        #   Usage Minimum (0)
    0x2A, 0xFF, 0x00,  #   Usage Maximum (255)
    0x81, 0x00,        #   Input (Data, Array): up to six keys
    0xC0,              # End Collection
])


def key_report(modifiers: int = 0, *usages: int) -> bytes:
    """One 8-byte input report: ``modifiers`` (MOD_* bits) with up to six key ``usages`` held."""
    if not 0 <= modifiers <= 0xFF:
        raise ValueError(f"modifier byte out of range: {modifiers}")
    if len(usages) > 6:
        raise ValueError(f"a boot keyboard report holds at most 6 keys, got {len(usages)}")
    for usage in usages:
        if not 1 <= usage <= 0xFF:
            raise ValueError(f"key usage out of range: {usage}")
    return bytes([modifiers, 0, *usages]) + bytes(6 - len(usages))


def parse_report(report: bytes) -> tuple[int, tuple[int, ...]]:
    """(modifiers, held key usages) of an 8-byte input report."""
    if len(report) != REPORT_LENGTH:
        raise ValueError(f"a boot keyboard report has {REPORT_LENGTH} bytes, got {len(report)}")
    return report[0], tuple(u for u in report[2:] if u)


def is_all_up(report: bytes) -> bool:
    """True if no key and no modifier is held."""
    return report == ALL_KEYS_UP

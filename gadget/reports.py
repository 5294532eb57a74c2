"""HID boot keyboard reports: the report descriptor and the pure 8-byte report builder.

An input report is 8 bytes: modifier bits, a reserved byte, then up to six pressed key usages (HID usage page
0x07). The host answers with a 1-byte output report carrying its lock LEDs (Num 0x01, Caps 0x02, Scroll 0x04).
Shared by the USB gadget (configfs ``report_desc``) and the BLE HID service (Report Map characteristic).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

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


class Stroke(NamedTuple):
    """One key press with the modifiers that must be held for it (what a keymap lookup yields)."""

    modifiers: int
    """MOD_* bits held while the key is pressed."""
    usage: int
    """HID usage of the key (page 0x07)."""
    dead: bool = False
    """A dead key: it produces nothing by itself and changes the next key's character."""


class ReportSequencer:
    """Turns strokes into the report sequence a careful typist would produce, tracking what the host holds.

    - modifiers go down in their own report before the key and come up together with (or after) the key;
    - the same key twice is always separated by a release;
    - the next key replaces the held one in one report (rollover) only when the modifiers stay the same and
      neither key is a dead key; everything else releases first;
    - :meth:`release_all` ends any sequence with all keys up.
    Pure: no I/O, no clock. ``held`` is (modifiers, usage) as the host sees it after the last report returned.
    """

    def __init__(self, modifiers: int = 0, usage: int = 0, dead: bool = False) -> None:
        self._mods = modifiers
        self._key = usage
        self._dead = dead

    @property
    def held(self) -> tuple[int, int]:
        return self._mods, self._key

    def press(self, stroke: Stroke) -> list[bytes]:
        """Reports that press ``stroke`` (leaving it held) from the current state."""
        out: list[bytes] = []
        mods, key = stroke.modifiers, stroke.usage
        if self._key and (self._key == key or self._mods != mods or self._dead or stroke.dead):
            self._emit(out, self._mods & mods, 0)
        if self._mods & ~mods:
            self._emit(out, self._mods & mods, 0)
        if self._mods != mods:
            self._emit(out, mods, 0)
        self._emit(out, mods, key)
        self._dead = stroke.dead
        return out

    def release_all(self) -> list[bytes]:
        """Reports that bring the host to all keys up (empty if nothing is held)."""
        out: list[bytes] = []
        if self._key:
            self._emit(out, self._mods, 0)
        if self._mods:
            self._emit(out, 0, 0)
        self._dead = False
        return out

    def _emit(self, out: list[bytes], mods: int, key: int) -> None:
        if (mods, key) != (self._mods, self._key):
            out.append(key_report(mods, key) if key else key_report(mods))
        self._mods, self._key = mods, key


def strokes_to_reports(strokes: Iterable[Stroke], *, end_all_up: bool = True) -> list[bytes]:
    """The whole report sequence for ``strokes`` from all keys up (ending all keys up unless told not to)."""
    seq = ReportSequencer()
    out: list[bytes] = []
    for stroke in strokes:
        out += seq.press(stroke)
    if end_all_up:
        out += seq.release_all()
    return out

"""Linux input keycodes (linux/input-event-codes.h) <-> HID keyboard usages (usage page 0x07).

XKB works on Linux keycodes (xkb keycode = Linux keycode + 8); a USB/BLE keyboard sends HID usages. The table is
the inverse of the Linux kernel's HID keyboard mapping for the keys a typist can need. For the ISO key beside
Enter (Linux KEY_BACKSLASH) both 0x31 and 0x32 map to the same key on Linux and Windows; we send 0x31.
"""

from __future__ import annotations

# Linux keycodes used by name elsewhere.
KEY_TAB = 15
KEY_ENTER = 28
KEY_LEFTCTRL = 29
KEY_LEFTSHIFT = 42
KEY_LEFTALT = 56
KEY_SPACE = 57
KEY_CAPSLOCK = 58
KEY_102ND = 86
KEY_RIGHTALT = 100

XKB_KEYCODE_OFFSET = 8
"""xkb keycode = Linux keycode + 8."""

# (Linux keycode, HID usage) for the keys that produce text, plus the few control keys named above.
_PAIRS: tuple[tuple[int, int], ...] = (
    # letters a..z
    (30, 0x04), (48, 0x05), (46, 0x06), (32, 0x07), (18, 0x08), (33, 0x09), (34, 0x0A), (35, 0x0B),
    (23, 0x0C), (36, 0x0D), (37, 0x0E), (38, 0x0F), (50, 0x10), (49, 0x11), (24, 0x12), (25, 0x13),
    (16, 0x14), (19, 0x15), (31, 0x16), (20, 0x17), (22, 0x18), (47, 0x19), (17, 0x1A), (45, 0x1B),
    (21, 0x1C), (44, 0x1D),
    # digits 1..9, 0
    (2, 0x1E), (3, 0x1F), (4, 0x20), (5, 0x21), (6, 0x22), (7, 0x23), (8, 0x24), (9, 0x25), (10, 0x26),
    (11, 0x27),
    (KEY_ENTER, 0x28), (1, 0x29), (14, 0x2A), (KEY_TAB, 0x2B), (KEY_SPACE, 0x2C),
    (12, 0x2D),  # minus
    (13, 0x2E),  # equal
    (26, 0x2F),  # left brace
    (27, 0x30),  # right brace
    (43, 0x31),  # backslash (ANSI) / the ISO key beside Enter
    (39, 0x33),  # semicolon
    (40, 0x34),  # apostrophe
    (41, 0x35),  # grave
    (51, 0x36),  # comma
    (52, 0x37),  # dot
    (53, 0x38),  # slash
    (KEY_CAPSLOCK, 0x39),
    (KEY_102ND, 0x64),  # the ISO key beside left Shift
    (89, 0x87),  # KEY_RO (Japanese, Brazilian ABNT2 /?)
    (124, 0x89),  # KEY_YEN
    (121, 0x85),  # KEY_KPCOMMA (ABNT2 keypad .)
    (KEY_LEFTCTRL, 0xE0), (KEY_LEFTSHIFT, 0xE1), (KEY_LEFTALT, 0xE2), (125, 0xE3),
    (97, 0xE4), (54, 0xE5), (KEY_RIGHTALT, 0xE6), (126, 0xE7),
)

LINUX_TO_HID: dict[int, int] = dict(_PAIRS)
HID_TO_LINUX: dict[int, int] = {usage: code for code, usage in _PAIRS}
HID_TO_LINUX[0x32] = 43  # "Non-US # and ~": the same key as 0x31 for Linux

TEXT_KEYCODES: tuple[int, ...] = tuple(
    code for code, usage in _PAIRS
    if 0x04 <= usage <= 0x38 and code not in (KEY_ENTER, 1, 14, KEY_TAB)
) + (KEY_102ND, 89, 124)
"""Linux keycodes a typist may press to produce characters (main block, space, ISO and JIS/ABNT extra keys).
Keypad keys are left out: their meaning depends on the host's Num Lock."""

AVOID_KEYCODES = frozenset({KEY_102ND, 89, 124})
"""Keys used only when no other key gives the character (an ANSI-only host keyboard driver may lack them)."""

USAGE_ENTER = LINUX_TO_HID[KEY_ENTER]
USAGE_TAB = LINUX_TO_HID[KEY_TAB]
USAGE_SPACE = LINUX_TO_HID[KEY_SPACE]
USAGE_CAPSLOCK = LINUX_TO_HID[KEY_CAPSLOCK]

MODIFIER_KEYCODES: dict[int, int] = {
    0x01: KEY_LEFTCTRL, 0x02: KEY_LEFTSHIFT, 0x04: KEY_LEFTALT, 0x08: 125,
    0x10: 97, 0x20: 54, 0x40: KEY_RIGHTALT, 0x80: 126,
}
"""HID modifier bit -> Linux keycode."""


def hid_usage(linux_keycode: int) -> int:
    """The HID usage for a Linux keycode; KeyError if the typist never sends that key."""
    return LINUX_TO_HID[linux_keycode]

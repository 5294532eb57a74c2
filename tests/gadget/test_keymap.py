"""Keymaps computed from the real XKB data (xkb-data + libxkbcommon) for the host layouts people use."""

from __future__ import annotations

import pytest

from sttkb.gadget.errors import LayoutError
from sttkb.gadget.keymap import get_keymap, known_layouts, parse_layout
from sttkb.gadget.reports import MOD_LEFT_SHIFT as SHIFT, MOD_RIGHT_ALT as ALTGR, Stroke

# HID usages by US key position
Q, W, Y, Z, E, A, M = 0x14, 0x1A, 0x1C, 0x1D, 0x08, 0x04, 0x10
K1, K2, K3 = 0x1E, 0x1F, 0x20
MINUS, EQUAL, BSLASH, SEMI, QUOTE, GRAVE, COMMA, SLASH, ISO = 0x2D, 0x2E, 0x31, 0x33, 0x34, 0x35, 0x36, 0x38, 0x64


def s(mods, usage, dead=False):
    return Stroke(mods, usage, dead)


@pytest.mark.parametrize("layout,char,strokes", [
    ("us", "a", (s(0, A),)),
    ("us", "A", (s(SHIFT, A),)),
    ("us", "@", (s(SHIFT, K2),)),
    ("us", '"', (s(SHIFT, QUOTE),)),
    ("us", "\\", (s(0, BSLASH),)),
    ("us", "<", (s(SHIFT, COMMA),)),          # not the ISO key an ANSI host may lack
    ("gb", '"', (s(SHIFT, K2),)),
    ("gb", "@", (s(SHIFT, QUOTE),)),
    ("gb", "£", (s(SHIFT, K3),)),
    ("gb", "#", (s(0, BSLASH),)),             # the ISO key beside Enter
    ("gb", "\\", (s(0, ISO),)),               # the ISO key beside left Shift
    ("de", "z", (s(0, Y),)),                  # QWERTZ
    ("de", "y", (s(0, Z),)),
    ("de", "@", (s(ALTGR, Q),)),
    ("de", "€", (s(ALTGR, E),)),
    ("de", "ß", (s(0, MINUS),)),
    ("de", "<", (s(0, ISO),)),
    ("de", "|", (s(ALTGR, ISO),)),
    ("de", "é", (s(0, EQUAL, True), s(0, E))),       # dead acute, then e
    ("de", "^", (s(0, GRAVE, True), s(0, 0x2C))),    # dead circumflex, then space
    ("fr", "a", (s(0, Q),)),                  # AZERTY
    ("fr", "1", (s(SHIFT, K1),)),
    ("fr", "&", (s(0, K1),)),
    ("fr", "é", (s(0, K2),)),
    ("fr", "m", (s(0, SEMI),)),
    ("fr", "@", (s(ALTGR, 0x27),)),
    ("us(intl)", "'", (s(0, QUOTE, True), s(0, 0x2C))),  # dead acute + space: also right on Windows US-Intl
    ("us(intl)", "é", (s(ALTGR, E),)),
])
def test_characters_map_to_the_keys_the_layout_needs(layout, char, strokes):
    assert get_keymap(layout).strokes(char) == strokes


def test_caps_lock_inverts_letters_but_not_digits_or_symbols():
    us = get_keymap("us")
    assert us.strokes("a", caps_lock=True) == (s(SHIFT, A),)
    assert us.strokes("A", caps_lock=True) == (s(0, A),)
    assert us.strokes("1", caps_lock=True) == (s(0, K1),)
    assert us.strokes("!", caps_lock=True) == (s(SHIFT, K1),)
    de = get_keymap("de")
    assert de.strokes("ä", caps_lock=True) == (s(SHIFT, QUOTE),)
    assert de.strokes("é", caps_lock=True) == (s(0, EQUAL, True), s(SHIFT, E))


def test_layouts_with_more_characters_reach_accented_letters_only_where_they_exist():
    assert get_keymap("us").strokes("é") is None
    assert get_keymap("de(nodeadkeys)").strokes("é") is None  # no dead acute in this variant
    assert get_keymap("es").strokes("ñ") == (s(0, SEMI),)
    assert get_keymap("it").strokes("è") is not None


def test_keymaps_are_cached_per_layout():
    assert get_keymap("fr") is get_keymap("fr")
    assert get_keymap("fr") is not get_keymap("de")


def test_layout_names_parse_and_bad_names_say_how_to_list_them():
    assert parse_layout("us(intl)") == ("us", "intl")
    assert parse_layout(" de ") == ("de", "")
    for bad in ("", "us,de", "US INTL", "de(no dead)"):
        with pytest.raises(LayoutError, match="localectl list-x11-keymap-layouts"):
            get_keymap(bad)
    with pytest.raises(LayoutError, match="Did you mean .*'de'"):
        get_keymap("dee")
    with pytest.raises(LayoutError, match="has no variant 'nope'"):
        get_keymap("fr(nope)")
    assert "intl" in known_layouts()["us"]

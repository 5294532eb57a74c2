"""Text -> keystrokes -> exact 8-byte reports, and the unmappable-character policies."""

from __future__ import annotations


import pytest

from sttkb.gadget.errors import UnmappableError
from sttkb.gadget.keymap import get_keymap
from sttkb.gadget.keystrokes import plan_text, text_to_reports
from sttkb.gadget.virtual import VirtualTransport


def hexes(text, layout="us", **kw):
    return [r.hex() for r in text_to_reports(text, get_keymap(layout), **kw)]


def typed(text, layout="us", caps_lock=False, **kw):
    host = VirtualTransport(layout, caps_lock=caps_lock)
    for report in text_to_reports(text, get_keymap(layout), caps_lock=caps_lock, **kw):
        host.send(report)
    return host.text


def test_hello_exact_reports_us():
    assert hexes("Hi!\n") == [
        "0200000000000000",  # Shift down alone
        "02000b0000000000",  # Shift+h
        "0000000000000000",  # all up (modifier changes)
        "00000c0000000000",  # i
        "0000000000000000",
        "0200000000000000",  # Shift
        "02001e0000000000",  # Shift+1 = !
        "0000000000000000",
        "0000280000000000",  # Enter for the newline
        "0000000000000000",
    ]


def test_double_letters_are_released_in_between_and_different_ones_roll_over():
    assert hexes("aab") == ["0000040000000000", "0000000000000000", "0000040000000000",
                            "0000050000000000", "0000000000000000"]


def test_altgr_and_dead_keys_exact_reports_de():
    assert hexes("@é", "de") == [
        "4000000000000000", "4000140000000000",  # AltGr, AltGr+Q = @
        "0000000000000000",
        "00002e0000000000", "0000000000000000",  # dead acute (released before the next key)
        "0000080000000000", "0000000000000000",  # e
    ]


def test_caps_lock_on_the_host_still_gives_the_right_case():
    assert hexes("a", caps_lock=True) == ["0200000000000000", "0200040000000000", "0200000000000000",
                                          "0000000000000000"]
    for layout in ("us", "gb", "de", "fr"):
        text = "Hello World, ÄÖÜ äöü 123 !?"
        plan = plan_text(text, get_keymap(layout), caps_lock=True)
        assert typed(text, layout, caps_lock=True) == plan.expected


@pytest.mark.parametrize("layout,text", [
    ("us", "The quick brown fox jumps over the lazy dog! 0123456789 #$%&*()[]{}<>@\\|~^`'\"_+=-;:,./?\n\tok"),
    ("gb", "Pack my box with five dozen liquor jugs: £5 #1 @home \"quoted\" ~tilde~ \\back| ¬"),
    ("de", "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg. @€ {}[]\\|~^° §$%&/()=?` é É"),
    ("fr", "Portez ce vieux whisky au juge blond qui fume. à é è ç ù 0123456789 @#{}[]|\\^~ €£µ§ ê ô ï!?;:"),
    ("us(intl)", "Naïve café, 'quoted' \"double\" ~tilde^ `grave` ñ ç"),
    ("es", "El veloz murciélago hindú comía feliz cardillo y kiwi. ¿Qué? ¡Sí! ñ Ñ ü"),
    ("it", "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja! è é à ò ù"),
])
def test_pangrams_round_trip_through_a_host_decoding_with_the_same_layout(layout, text):
    plan = plan_text(text, get_keymap(layout))
    assert plan.changes == ()
    assert typed(text, layout) == text


def test_transliterate_only_what_the_layout_lacks_and_log_it(caplog):
    text = "“Café” — naïve"
    assert typed(text, "us") == '"Cafe" - naive'
    assert typed(text, "fr") == '“Café” - naïve'  # fr has é, ï and curly quotes (AltGr), no em dash
    plan = plan_text(text, get_keymap("us"))
    assert [c.char for c in plan.changes] == ["“", "é", "”", "—", "ï"]
    assert all(c.replacement for c in plan.changes)


def test_skip_policy_drops_and_reports():
    plan = plan_text("a—b€", get_keymap("us"), unmappable="skip")
    assert plan.expected == "ab"
    assert [(c.char, c.replacement) for c in plan.changes] == [("—", ""), ("€", "")]
    assert "skipped" in plan.changes[0].describe()


def test_linux_unicode_entry_types_ctrl_shift_u_hex_space():
    reports = hexes("€", "us", unmappable="linux-unicode")
    assert reports[:2] == ["0300000000000000", "0300180000000000"]  # Ctrl+Shift, Ctrl+Shift+U
    plan = plan_text("€", get_keymap("us"), unmappable="linux-unicode")
    assert plan.expected == "€"
    assert typed("€", "us", unmappable="linux-unicode") == "20ac "  # a plain xkb host shows the digits


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(UnmappableError, match="transliterate"):
        plan_text("x", get_keymap("us"), unmappable="drop")


def test_control_characters_are_never_typed_and_cr_lf_becomes_one_enter():
    plan = plan_text("a\x1b[2J\x07b\r\nc\u200bd", get_keymap("us"))
    assert plan.expected == "a[2Jb\ncd"
    assert {c.reason for c in plan.changes} == {"control or invisible character"}
    enters = [r for r in text_to_reports("x\r\ny", get_keymap("us")) if r[2] == 0x28]
    assert len(enters) == 1

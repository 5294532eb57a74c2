"""Report descriptor and the report sequencer, against exact bytes."""

from __future__ import annotations

import pytest

from sttkb.gadget.reports import (ALL_KEYS_UP, MOD_LEFT_SHIFT, MOD_RIGHT_ALT, REPORT_DESCRIPTOR, ReportSequencer,
                            Stroke, key_report, parse_report, strokes_to_reports)

A, B, E, SPACE = 0x04, 0x05, 0x08, 0x2C


def r(mods: int, key: int = 0) -> bytes:
    return bytes([mods, 0, key, 0, 0, 0, 0, 0])


def test_descriptor_is_a_boot_keyboard_with_led_output_report():
    d = REPORT_DESCRIPTOR
    assert d[:6] == bytes([0x05, 0x01, 0x09, 0x06, 0xA1, 0x01])  # Generic Desktop / Keyboard / Application
    assert bytes([0x05, 0x08]) in d  # LED usage page
    assert bytes([0x91, 0x02]) in d  # Output (Data, Var, Abs): the LED report
    assert d.count(bytes([0x81, 0x02])) == 1 and bytes([0x81, 0x00]) in d  # modifier bits + key array
    assert d[-1] == 0xC0


def test_key_report_bytes_and_limits():
    assert key_report(MOD_LEFT_SHIFT, A) == bytes([0x02, 0, 0x04, 0, 0, 0, 0, 0])
    assert key_report() == ALL_KEYS_UP
    assert parse_report(key_report(0x40, 0x14, 0x08)) == (0x40, (0x14, 0x08))
    with pytest.raises(ValueError):
        key_report(0, *range(1, 8))
    with pytest.raises(ValueError):
        parse_report(b"\0" * 7)


def test_rollover_between_different_keys_with_same_modifiers():
    assert strokes_to_reports([Stroke(0, A), Stroke(0, B)]) == [r(0, A), r(0, B), r(0)]


def test_same_key_twice_is_released_in_between():
    assert strokes_to_reports([Stroke(0, A), Stroke(0, A)]) == [r(0, A), r(0), r(0, A), r(0)]


def test_modifier_goes_down_alone_before_the_key_and_comes_up_with_it():
    # "aAb": a; release a; Shift; Shift+A; all up; b; all up
    got = strokes_to_reports([Stroke(0, A), Stroke(MOD_LEFT_SHIFT, A), Stroke(0, B)])
    assert got == [r(0, A), r(0), r(2), r(2, A), r(0), r(0, B), r(0)]


def test_switching_shift_to_altgr_releases_shift_before_pressing_altgr():
    got = strokes_to_reports([Stroke(MOD_LEFT_SHIFT, A), Stroke(MOD_RIGHT_ALT, E)])
    assert got == [r(2), r(2, A), r(0), r(0x40), r(0x40, E), r(0x40), r(0)]


def test_dead_key_is_released_before_the_next_key_even_with_same_modifiers():
    got = strokes_to_reports([Stroke(0, 0x2E, dead=True), Stroke(0, E)])
    assert got == [r(0, 0x2E), r(0), r(0, E), r(0)]


def test_every_sequence_ends_all_up_and_release_all_is_empty_when_nothing_is_held():
    seq = ReportSequencer()
    assert seq.release_all() == []
    seq.press(Stroke(MOD_LEFT_SHIFT | MOD_RIGHT_ALT, SPACE))
    assert seq.release_all() == [r(0x42), r(0)]
    assert seq.held == (0, 0)

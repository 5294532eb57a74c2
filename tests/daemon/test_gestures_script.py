"""The --gestures script format for `sttkb run --simulate`."""

from __future__ import annotations

import pytest

from sttkb.daemon.gestures_script import GestureScriptError, parse_line, parse_script


def test_script_lines_become_timed_button_edges():
    edges = parse_script("""
        # a dictation, then hands-free on and off, then a retype
        hold 0.0 12.5
        double 20   # on
        double 30
        triple 40
    """, pair_hold_s=5.0)
    assert edges[:2] == [(0.0, True), (12.5, False)]
    downs = [t for t, pressed in edges if pressed]
    assert len(downs) == 1 + 2 + 2 + 3
    assert downs[1:3] == [20.0, pytest.approx(20.23)]
    assert [t for t, _ in edges] == sorted(t for t, _ in edges)


def test_long_hold_lasts_past_the_pairing_time():
    assert parse_line("long 3", pair_hold_s=5.0) == [(3.0, True), (8.5, False)]


def test_stdin_lines_may_leave_out_the_time():
    assert parse_line("tap", now=2.0)[0] == (2.0, True)
    assert parse_line("hold 4", now=1.0) == [(1.0, True), (4.0, False)]


@pytest.mark.parametrize("line,msg", [("wiggle 3", "unknown gesture 'wiggle'"), ("hold 5 2", "must end after"),
                                      ("tap soon", "must be numbers"), ("hold 1", "expected `hold START END`")])
def test_bad_lines_say_what_is_wrong(line, msg):
    with pytest.raises(GestureScriptError, match=msg):
        parse_script(f"\n{line}\n")
    with pytest.raises(GestureScriptError, match="line 2"):
        parse_script(f"\n{line}\n")

"""Button gestures with real timing through gpiozero's own MockFactory pins.

A physical button cannot exist here: the pin is gpiozero's MockPin, driven low (pressed, the button shorts
the pin to GND against the pull-up) and high with real sleeps. Everything above the pin is the real code.
"""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from sttkb.daemon.button import (HOLD_END, HOLD_START, LONG_HOLD, PRESS, TAPS, ButtonGestures, Gesture,
                                  GestureRecognizer)

TIMES = dict(hold_s=0.15, pair_hold_s=0.6, multi_press_s=0.25, bounce_s=0.02)


class Recorder:
    def __init__(self) -> None:
        self.gestures: list[Gesture] = []
        self.cond = threading.Condition()

    def __call__(self, g: Gesture) -> None:
        with self.cond:
            self.gestures.append(g)
            self.cond.notify_all()

    def wait_for(self, kind: str, timeout: float = 2.0) -> Gesture:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(g.kind == kind for g in self.gestures), timeout)
            assert ok, f"no {kind} gesture within {timeout} s; got {self.gestures}"
            return next(g for g in self.gestures if g.kind == kind)

    def kinds(self) -> list[str]:
        with self.cond:
            return [g.kind if g.kind != TAPS else f"taps{g.count}" for g in self.gestures]


@pytest.fixture
def button():
    Device.pin_factory = MockFactory()
    rec = Recorder()
    btn = ButtonGestures("GPIO17", rec, **TIMES)
    pin = Device.pin_factory.pin(17)
    yield pin, rec
    btn.close()
    Device.pin_factory.reset()
    Device.pin_factory = None


def tap(pin, down_s=0.04, up_s=0.06):
    pin.drive_low()
    time.sleep(down_s)
    pin.drive_high()
    time.sleep(up_s)


def test_press_reaches_the_daemon_at_once_and_hold_is_push_to_talk(button):
    pin, rec = button
    t0 = time.monotonic()
    pin.drive_low()
    rec.wait_for(PRESS, timeout=0.1)
    assert time.monotonic() - t0 < 0.05
    rec.wait_for(HOLD_START)
    time.sleep(0.15)
    pin.drive_high()
    end = rec.wait_for(HOLD_END)
    assert 0.25 <= end.held_s < 0.6
    time.sleep(TIMES["multi_press_s"] + 0.1)
    assert rec.kinds() == [PRESS, HOLD_START, HOLD_END]  # a hold is not also a tap


def test_double_and_triple_press(button):
    pin, rec = button
    tap(pin)
    tap(pin)
    rec.wait_for(TAPS)
    assert rec.kinds() == [PRESS, PRESS, "taps2"]
    time.sleep(0.1)
    rec.gestures.clear()
    tap(pin)
    tap(pin)
    tap(pin)
    rec.wait_for(TAPS)
    assert rec.kinds() == [PRESS, PRESS, PRESS, "taps3"]


def test_presses_further_apart_than_the_multi_press_gap_are_single(button):
    pin, rec = button
    tap(pin, up_s=0.4)
    tap(pin, up_s=0.4)
    assert rec.kinds() == [PRESS, "taps1", PRESS, "taps1"]


def test_a_five_second_style_hold_gives_long_hold_while_still_pressed(button):
    pin, rec = button
    pin.drive_low()
    rec.wait_for(LONG_HOLD, timeout=1.5)
    assert rec.kinds() == [PRESS, HOLD_START, LONG_HOLD]  # reported before the release
    pin.drive_high()
    assert rec.wait_for(HOLD_END).held_s >= 0.6


def test_contact_chatter_is_one_press(button):
    pin, rec = button
    t0 = time.monotonic()
    for _ in range(3):  # a bouncing contact: edges well under a millisecond apart
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    assert time.monotonic() - t0 < TIMES["bounce_s"]
    time.sleep(0.05)
    pin.drive_high()
    rec.wait_for(TAPS)
    assert rec.kinds() == [PRESS, "taps1"]


def test_a_glitch_shorter_than_the_bounce_time_never_leaves_the_button_held(button):
    pin, rec = button
    pin.drive_low()
    time.sleep(0.003)
    pin.drive_high()  # ignored as bounce, but the level is read again when the bounce time is over
    rec.wait_for(TAPS)
    time.sleep(TIMES["hold_s"])
    assert HOLD_START not in rec.kinds()


def test_recognizer_is_pure_and_reports_deadlines():
    r = GestureRecognizer(**TIMES)
    assert r.next_deadline() is None
    assert r.edge(True, 10.0) == [Gesture(PRESS)]
    assert r.next_deadline() == pytest.approx(10.0 + TIMES["bounce_s"])
    assert r.poll(10.05, level=True) == []
    assert r.next_deadline() == pytest.approx(10.15)
    assert r.poll(10.15, level=True) == [Gesture(HOLD_START)]
    assert r.poll(10.61, level=True) == [Gesture(LONG_HOLD)]
    assert r.next_deadline() is None
    (end,) = r.edge(False, 11.0)
    assert end.kind == HOLD_END and end.held_s == pytest.approx(1.0)

"""LED patterns on gpiozero's MockFactory pins (MockPWMPin records every value with its time).

A physical LED cannot exist here; the pin is gpiozero's mock, everything above it is the real code.
"""

from __future__ import annotations

import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from sttkb.daemon.led import ONOFF_PATTERNS, PWM_PATTERNS, StatusLed, pattern_for
from sttkb.daemon.state import State
from tests.polling import wait_for

STATE_PATTERNS = ("idle", "listening", "transcribing", "typing", "pairing", "passkey", "error")


def _values_since(pin, start_index: int) -> list[tuple[float, float]]:
    return [(round(s.timestamp, 3), s.state) for s in pin.states[start_index:]]


@pytest.fixture
def pwm_led():
    factory = MockFactory(pin_class=MockPWMPin)
    led = StatusLed("GPIO27", pwm=True, pin_factory=factory)
    yield led, factory.pin(27)
    led.close()
    factory.reset()


def test_every_state_has_its_own_pattern():
    for table in (PWM_PATTERNS, ONOFF_PATTERNS):
        shown = [table[p] for p in STATE_PATTERNS + ("host_gone",)]
        assert len(set(shown)) == len(shown)
    assert {pattern_for(s) for s in State} == set(STATE_PATTERNS)
    assert pattern_for(State.HANDSFREE) == "listening"
    assert pattern_for(State.TYPING, "paused") == "host_gone"
    assert pattern_for(State.TYPING, "typing") == "typing"


def test_idle_shows_when_the_remote_engine_does_not_answer():
    for table in (PWM_PATTERNS, ONOFF_PATTERNS):
        shown = [table[p] for p in STATE_PATTERNS + ("host_gone", "remote_down")]
        assert len(set(shown)) == len(shown)
    assert pattern_for(State.IDLE, remote_up=False) == "remote_down"
    assert pattern_for(State.IDLE, remote_up=True) == "idle"
    assert pattern_for(State.LISTENING, remote_up=False) == "listening"   # the box's model decodes meanwhile


def test_steady_patterns_set_the_pwm_level(pwm_led):
    led, pin = pwm_led
    led.show("listening")
    assert wait_for(lambda: pin.state == 1.0, 10.0)
    led.show("idle")
    assert wait_for(lambda: pin.state == pytest.approx(0.08), 10.0)
    assert pin.frequency  # really driven as PWM


def lasted_about(seconds: float, nominal: float) -> bool:
    """A step of a blink pattern lasted its nominal time: never noticeably shorter; longer by at most what a busy
    machine adds to a thread's sleep (a late step is scheduling, a short or much longer one is a wrong pattern)."""
    return nominal - 0.03 <= seconds <= nominal + 0.15


def test_error_is_a_double_blink_with_its_timing(pwm_led):
    led, pin = pwm_led
    led.show("idle")
    assert wait_for(lambda: pin.state == pytest.approx(0.08), 10.0)
    start = len(pin.states)
    led.show("error")
    assert wait_for(lambda: len(_values_since(pin, start)) >= 5, 10.0)
    seen = _values_since(pin, start)
    values = [v for _, v in seen]
    assert values[:5] == [1.0, 0.0, 1.0, 0.0, 1.0]  # on, off, on, long off, next cycle
    gaps = [t for t, _ in seen[1:5]]  # time each value lasted before the next change
    assert lasted_about(gaps[0], 0.1) and lasted_about(gaps[2], 0.1) and lasted_about(gaps[3], 0.9)


def test_passkey_is_on_with_a_short_dark_blink(pwm_led):
    """"Say the code": mostly on like listening, blinking at 2 Hz unlike it and unlike pairing's even 1 Hz."""
    led, pin = pwm_led
    led.show("idle")
    assert wait_for(lambda: pin.state == pytest.approx(0.08), 10.0)
    start = len(pin.states)
    led.show("passkey")
    assert wait_for(lambda: len(_values_since(pin, start)) >= 5, 10.0)
    seen = _values_since(pin, start)
    assert [v for _, v in seen][:5] == [1.0, 0.0, 1.0, 0.0, 1.0]
    lasted = [t for t, _ in seen[1:5]]  # time each value lasted before the next change
    assert lasted_about(lasted[0], 0.4) and lasted_about(lasted[1], 0.1) and lasted_about(lasted[2], 0.4)


def test_transcribing_breathes_through_intermediate_levels(pwm_led):
    led, pin = pwm_led
    led.show("transcribing")

    def between() -> int:
        return len([v for v in {round(s.state, 2) for s in pin.states} if 0.0 < v < 1.0])
    assert wait_for(lambda: between() >= 5, 10.0)


def test_switching_pattern_takes_effect_at_once(pwm_led):
    led, pin = pwm_led
    led.show("pairing")  # 0.5 s steps
    assert wait_for(lambda: pin.state == 1.0, 10.0)   # its first step is on
    led.show("listening")
    assert wait_for(lambda: pin.state == 1.0, 10.0)
    led.show("idle")
    assert wait_for(lambda: pin.state == pytest.approx(0.08), 10.0)


def test_a_pin_without_pwm_gets_on_off_patterns():
    factory = MockFactory(pin_class=MockPin)
    led = StatusLed("GPIO27", pwm=True, pin_factory=factory)
    pin = factory.pin(27)
    try:
        led.show("transcribing")
        assert wait_for(lambda: {s.state for s in pin.states} == {True, False}, 10.0)
        assert led.patterns is ONOFF_PATTERNS
    finally:
        led.close()
        factory.reset()

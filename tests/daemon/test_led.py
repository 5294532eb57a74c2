"""LED patterns on gpiozero's MockFactory pins (MockPWMPin records every value with its time).

A physical LED cannot exist here; the pin is gpiozero's mock, everything above it is the real code.
"""

from __future__ import annotations

import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin

from sttkb.daemon.led import ONOFF_PATTERNS, PWM_PATTERNS, StatusLed, pattern_for
from sttkb.daemon.state import State

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
    time.sleep(0.05)
    assert pin.state == 1.0
    led.show("idle")
    time.sleep(0.05)
    assert pin.state == pytest.approx(0.08)
    assert pin.frequency  # really driven as PWM


def test_error_is_a_double_blink_with_its_timing(pwm_led):
    led, pin = pwm_led
    led.show("idle")
    time.sleep(0.05)
    start = len(pin.states)
    led.show("error")
    time.sleep(1.35)
    seen = _values_since(pin, start)
    values = [v for _, v in seen]
    assert values[:5] == [1.0, 0.0, 1.0, 0.0, 1.0]  # on, off, on, long off, next cycle
    gaps = [t for t, _ in seen[1:5]]  # time each value lasted before the next change
    assert gaps[0] == pytest.approx(0.1, abs=0.05) and gaps[2] == pytest.approx(0.1, abs=0.05)
    assert gaps[3] == pytest.approx(0.9, abs=0.1)


def test_passkey_is_on_with_a_short_dark_blink(pwm_led):
    """"Say the code": mostly on like listening, blinking at 2 Hz unlike it and unlike pairing's even 1 Hz."""
    led, pin = pwm_led
    led.show("idle")
    time.sleep(0.05)
    start = len(pin.states)
    led.show("passkey")
    time.sleep(1.15)
    seen = _values_since(pin, start)
    assert [v for _, v in seen][:5] == [1.0, 0.0, 1.0, 0.0, 1.0]
    lasted = [t for t, _ in seen[1:5]]  # time each value lasted before the next change
    assert lasted[0] == pytest.approx(0.4, abs=0.05) and lasted[1] == pytest.approx(0.1, abs=0.05)
    assert lasted[2] == pytest.approx(0.4, abs=0.05)


def test_transcribing_breathes_through_intermediate_levels(pwm_led):
    led, pin = pwm_led
    led.show("transcribing")
    time.sleep(0.9)
    levels = {round(s.state, 2) for s in pin.states}
    assert len([v for v in levels if 0.0 < v < 1.0]) >= 5


def test_switching_pattern_takes_effect_at_once(pwm_led):
    led, pin = pwm_led
    led.show("pairing")  # 0.5 s steps
    time.sleep(0.05)
    led.show("listening")
    time.sleep(0.05)
    assert pin.state == 1.0
    led.show("idle")
    time.sleep(0.05)
    assert pin.state == pytest.approx(0.08)


def test_a_pin_without_pwm_gets_on_off_patterns():
    factory = MockFactory(pin_class=MockPin)
    led = StatusLed("GPIO27", pwm=True, pin_factory=factory)
    pin = factory.pin(27)
    try:
        led.show("transcribing")
        time.sleep(0.7)
        assert {s.state for s in pin.states} == {True, False}
        assert led.patterns is ONOFF_PATTERNS
    finally:
        led.close()
        factory.reset()

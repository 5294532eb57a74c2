"""Feedback sounds: the tones themselves and when they play (no speaker here: playing is recorded)."""

from __future__ import annotations

import numpy as np

from sttkb.daemon.led import LogLed
from sttkb.daemon.sounds import RATE, SOUNDS, SoundingLed, tone


def test_tones_are_short_clickless_and_distinct():
    for name, s in SOUNDS.items():
        assert s.dtype == np.int16 and 0.1 < len(s) / RATE < 0.3, name
        assert abs(int(s[0])) < 200 and abs(int(s[-1])) < 200  # faded in and out
    assert len({s.tobytes() for s in SOUNDS.values()}) == len(SOUNDS) == 4
    up = tone((660.0, 880.0))
    half = len(up) // 2
    crossings = [np.count_nonzero(np.diff(np.sign(part.astype(float))) != 0) for part in (up[:half], up[half:])]
    assert crossings[1] > crossings[0]  # rising pitch


def test_sounds_follow_the_led_pattern_changes():
    played = []

    class Recorder:
        def play(self, name):
            played.append(name)

    led = SoundingLed(LogLed(), Recorder())
    for p in ("idle", "listening", "listening", "transcribing", "typing", "idle", "error", "idle", "pairing",
              "passkey", "pairing"):
        led.show(p)
    assert played == ["start", "stop", "error", "passkey"]  # "say the code"; back to pairing is silent

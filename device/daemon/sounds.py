"""Optional feedback sounds ([led] feedback_sounds, off by default): a rising beep when listening starts, a
falling one when it stops, a low double beep on an error, three rising beeps when a pairing host shows a code to
say. Played on the default output through pyaudio from a thread; a box without a speaker just logs that it cannot
play."""

from __future__ import annotations

import logging
import threading

import numpy as np

log = logging.getLogger(__name__)

RATE = 22050  # hertz


def tone(freqs_hz: tuple[float, ...], each_s: float = 0.07, volume: float = 0.3) -> np.ndarray:
    """Consecutive sine beeps as int16 samples at :data:`RATE`, with 5 ms fades (no clicks)."""
    parts = []
    n = int(RATE * each_s)
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (RATE * 0.005))
    for f in freqs_hz:
        t = np.arange(n) / RATE
        parts.append(np.sin(2 * np.pi * f * t) * fade * volume)
    return (np.concatenate(parts) * 32767).astype(np.int16)


SOUNDS = {
    "start": tone((660.0, 880.0)),
    "stop": tone((880.0, 660.0)),
    "error": tone((220.0, 0.0, 220.0)),
    "passkey": tone((523.0, 659.0, 784.0)),
}

#: pattern shown on the LED → sound played when it begins
PATTERN_SOUNDS = {"listening": "start", "transcribing": "stop", "error": "error", "passkey": "passkey"}


class FeedbackSounds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned = False

    def play(self, name: str) -> None:
        threading.Thread(target=self._play, args=(SOUNDS[name],), name="sttkb-sound", daemon=True).start()

    def _play(self, samples: np.ndarray) -> None:
        with self._lock:
            try:
                import pyaudio
                pa = pyaudio.PyAudio()
                try:
                    stream = pa.open(format=pyaudio.paInt16, channels=1, rate=RATE, output=True)
                    stream.write(samples.tobytes())
                    stream.stop_stream()
                    stream.close()
                finally:
                    pa.terminate()
            except Exception as e:  # no speaker: sounds are a nicety
                if not self._warned:
                    log.warning("cannot play feedback sounds: %s", e)
                    self._warned = True


class SoundingLed:
    """Wraps an LED: plays the matching sound when a pattern starts."""

    def __init__(self, led, sounds: FeedbackSounds) -> None:
        self.led, self.sounds = led, sounds
        self.current = getattr(led, "current", "off")

    def show(self, pattern: str) -> None:
        if pattern != self.current:
            self.current = pattern
            if pattern in PATTERN_SOUNDS:
                self.sounds.play(PATTERN_SOUNDS[pattern])
        self.led.show(pattern)

    def close(self) -> None:
        self.led.close()

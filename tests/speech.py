"""Test audio: speech synthesized with espeak-ng in the test session, and synthetic signals (silence, noises,
a voiced buzz). Everything is float32, 16 kHz mono, -1..1."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 16000
DATA = Path(__file__).resolve().parent / "data"
JFK_WAV = DATA / "jfk.wav"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.lru_cache(maxsize=256)
def _speak_cached(text: str, voice: str, wpm: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    audio = soxr.resample(audio.mean(axis=1), sr, RATE).astype(np.float32)
    return audio.tobytes()


def speak(text: str, voice: str = "en-us", wpm: int = 160, level_dbfs: float = -20.0) -> np.ndarray:
    """``text`` spoken by espeak-ng (voice e.g. en-us, en-gb, en-us+m3, en-us+f3; wpm 80..450), its speech
    normalized to ``level_dbfs`` RMS, with espeak's leading/trailing silence trimmed."""
    audio = np.frombuffer(_speak_cached(text, voice, wpm), dtype=np.float32).copy()
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    if loud.size:
        audio = audio[loud[0]:loud[-1] + 1]
    return set_level(audio, level_dbfs)


def set_level(audio: np.ndarray, level_dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return (audio * (10 ** (level_dbfs / 20) / rms)).astype(np.float32) if rms > 0 else audio


def room(seconds: float, level_dbfs: float = -65.0, seed: int = 0) -> np.ndarray:
    """Quiet room noise (white, ``level_dbfs`` RMS) — what a real mic gives between sentences."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (level_dbfs / 20)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def white_noise(seconds: float, level_dbfs: float = -25.0, seed: int = 1) -> np.ndarray:
    return room(seconds, level_dbfs, seed)


def pink_noise(seconds: float, level_dbfs: float = -25.0, seed: int = 2) -> np.ndarray:
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    k = np.arange(len(spectrum), dtype=np.float64)
    k[0] = 1.0
    return set_level(np.fft.irfft(spectrum / np.sqrt(k), n), level_dbfs)


def hum(seconds: float, level_dbfs: float = -25.0, mains_hz: float = 50.0) -> np.ndarray:
    """Mains hum with its odd harmonics."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * mains_hz * k * t) / k for k in (1, 3, 5, 7))
    return set_level(x, level_dbfs)


def keyboard_clicks(seconds: float, per_second: float = 7.0, level_dbfs: float = -15.0, seed: int = 3,
                    floor_dbfs: float = -65.0) -> np.ndarray:
    """Typing: short decaying clicks (a few ms, with a ~10 ms resonance) at random times over room noise."""
    rng = np.random.default_rng(seed)
    out = room(seconds, floor_dbfs, seed)
    n = len(out)
    peak = 10 ** (level_dbfs / 20) * 4
    for t in np.sort(rng.uniform(0, seconds, int(seconds * per_second))):
        i = int(t * RATE)
        length = min(int(0.015 * RATE), n - i)
        env = np.exp(-np.arange(length) / (0.0015 * RATE))
        ring = np.sin(2 * np.pi * rng.uniform(2000, 5000) * np.arange(length) / RATE) * np.exp(
            -np.arange(length) / (0.004 * RATE))
        out[i:i + length] += (peak * (rng.standard_normal(length) * env + 0.5 * ring)).astype(np.float32)
    return out


def buzz(seconds: float, level_dbfs: float = -20.0, f0: float = 130.0, syllable_s: float = 0.25) -> np.ndarray:
    """A voiced, vowel-like sound (harmonics of a gliding f0 under a formant envelope) that webrtcvad calls
    speech, broken into syllables (``syllable_s`` each, the last 60 ms of each 25 dB down, like the gaps
    between words) — a deterministic stand-in for a talker in segmenter tests. ``syllable_s=0``: one steady
    vowel."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0 + 15 * np.sin(2 * np.pi * 3 * t)) / RATE
    x = np.zeros_like(t)
    for k in range(1, 27):
        formant = np.exp(-0.5 * ((k * f0 - 700) / 600) ** 2) + 0.5 * np.exp(-0.5 * ((k * f0 - 1800) / 500) ** 2)
        x += np.sin(k * phase) / k * formant
    if syllable_s > 0:
        in_syllable = np.mod(t, syllable_s)
        x = x * np.where(in_syllable < syllable_s - 0.06, 1.0, 10 ** (-25 / 20))
    return set_level(x, level_dbfs)


def concat(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts])


def paragraph(sentences: list[tuple[str, str, int]], pauses_s: list[float], *, room_dbfs: float = -65.0,
              lead_s: float = 0.5, tail_s: float = 1.0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Sentences ``(text, voice, wpm)`` separated by ``pauses_s`` of room noise (len = len(sentences) - 1).

    Returns the audio and each sentence's (start_s, end_s) in it.
    """
    assert len(pauses_s) == len(sentences) - 1, "one pause between each two sentences"
    parts = [room(lead_s, room_dbfs, seed=10)]
    spans = []
    pos = lead_s
    for i, (text, voice, wpm) in enumerate(sentences):
        said = speak(text, voice, wpm)
        spans.append((pos, pos + len(said) / RATE))
        parts.append(said + room(len(said) / RATE, room_dbfs, seed=20 + i)[:len(said)])
        pos += len(said) / RATE
        gap = pauses_s[i] if i < len(pauses_s) else tail_s
        parts.append(room(gap, room_dbfs, seed=40 + i))
        pos += gap
    return concat(*parts), spans

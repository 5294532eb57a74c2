"""Signal levels (pure functions)."""

from __future__ import annotations

import math

import numpy as np

SILENCE_DBFS = -120.0
"""Level reported for digital silence (dBFS)."""


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of float samples in dBFS (full-scale square wave = 0 dBFS, full-scale sine ≈ -3 dBFS)."""
    if samples.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DBFS, 20.0 * math.log10(rms)) if rms > 0 else SILENCE_DBFS


def to_int16_bytes(samples: np.ndarray) -> bytes:
    """float32 -1..1 → little-endian int16 PCM bytes (clipped)."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def from_int16_bytes(data: bytes, channels: int = 1) -> np.ndarray:
    """Little-endian int16 PCM bytes (interleaved channels) → float32 mono -1..1 (channels averaged)."""
    pcm = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm[: len(pcm) - len(pcm) % channels].reshape(-1, channels).mean(axis=1)
    return pcm

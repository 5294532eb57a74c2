"""Slaney-style mel filterbank, the one Whisper was trained with (same numbers as librosa.filters.mel).

whisper.cpp reads the filterbank from the model file, so every ggml file we write carries it.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
"""Whisper's sample rate (hertz)."""
N_FFT = 400
"""FFT size (samples, 25 ms); gives N_FFT // 2 + 1 = 201 frequency bins."""

_F_SP = 200.0 / 3.0          # Slaney: linear part, hertz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0          # where the log part starts (hertz)
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Hertz → Slaney mel (linear below 1 kHz, logarithmic above)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Slaney mel → hertz (inverse of :func:`hz_to_mel`)."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filters(n_mels: int, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """Triangular mel filters, area-normalized (Slaney), shape (n_mels, n_fft // 2 + 1), float32.

    Filters span 0 Hz to sample_rate / 2, as in Whisper (80 bins; large-v3 uses 128).
    """
    if n_mels <= 0:
        raise ValueError(f"n_mels must be positive, got {n_mels}")
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)

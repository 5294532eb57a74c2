"""Read a short audio file as Whisper wants it: float32, 16 kHz, mono, -1..1 (for validation and --check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sttkb.models.errors import Error

SAMPLE_RATE = 16000


class AudioFileError(Error, ValueError):
    """The audio file for validation or --check cannot be read."""


def read_audio_16k(path: Path) -> np.ndarray:
    """Decode WAV/FLAC/OGG (anything libsndfile reads), mix to mono, resample to 16 kHz."""
    import soundfile
    import soxr
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as e:
        raise AudioFileError(f"{path}: cannot read it as audio ({e}); give a WAV or FLAC file") from e
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.ascontiguousarray(mono, dtype=np.float32)

"""Read audio files (WAV, FLAC, OGG: whatever libsndfile decodes) at any rate and channel count as 16 kHz mono."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile
import soxr

from sttkb.audio import SAMPLE_RATE, AudioFileError


def to_mono_16k(audio: np.ndarray, rate: int) -> np.ndarray:
    """(frames,) or (frames, channels) float audio at ``rate`` hertz → float32 mono at 16 kHz."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1, dtype=np.float32)
    if rate != SAMPLE_RATE and audio.size:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def read_audio(path: str | os.PathLike) -> np.ndarray:
    """The whole file as float32 mono 16 kHz, -1..1. Raises :class:`AudioFileError` with what to do."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such audio file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioFileError(f"{path}: cannot decode this audio file ({e}); use WAV or FLAC, e.g. convert with "
                             f"`sox {path.name} -r 16000 -c 1 out.wav`") from e
    except OSError as e:
        raise AudioFileError(f"{path}: cannot read: {e}") from e
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: the file holds no audio samples")
    return to_mono_16k(data, rate)


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Write float samples as 16-bit PCM WAV (tests and tools)."""
    soundfile.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")

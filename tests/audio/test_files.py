"""Audio files at any rate and channel count come out as 16 kHz mono float32; bad files give clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from sttkb.audio import AudioFileError
from sttkb.audio.files import read_audio
from sttkb.audio.sources import ArraySource, FileSource


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize(("rate", "channels", "fmt"), [(16000, 1, "WAV"), (44100, 2, "WAV"), (48000, 1, "FLAC"),
                                                        (8000, 1, "WAV"), (22050, 6, "FLAC")])
def test_any_rate_and_channels_become_16k_mono(tmp_path, rate, channels, fmt):
    mono = tone(440.0, 2.0, rate)
    data = np.stack([mono] * channels, axis=1)
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, data, rate, format=fmt, subtype="PCM_16")
    audio = read_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(32000, abs=2)
    assert peak_hz(audio) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(audio ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_stereo_channels_are_averaged(tmp_path):
    left = tone(300.0, 1.0, 16000)
    path = tmp_path / "lr.wav"
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 16000, subtype="FLOAT")
    assert np.allclose(read_audio(path), left / 2, atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(AudioFileError, match="no such audio file"):
        read_audio(tmp_path / "nope.wav")


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not a RIFF file")
    with pytest.raises(AudioFileError, match="cannot decode.*WAV or FLAC"):
        read_audio(path)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioFileError, match="no audio samples"):
        read_audio(path)


def test_file_source_hands_out_everything_in_order(tmp_path):
    audio = tone(200.0, 1.0, 16000)
    sf.write(tmp_path / "t.wav", audio, 16000, subtype="FLOAT")
    chunks = list(FileSource(tmp_path / "t.wav").chunks())
    assert all(len(c) == 480 for c in chunks[:-1])
    assert np.array_equal(np.concatenate(chunks), audio)


def test_realtime_replay_runs_at_1x():
    """Chunk i is released when the (fake) clock reaches its end time."""
    now = [100.0]
    released = []

    def clock():
        return now[0]

    src = ArraySource(np.zeros(16000, np.float32), realtime=True, clock=clock)
    src._stop.wait = lambda delay: now.__setitem__(0, now[0] + delay) or False  # advance instead of sleeping
    for chunk in src.chunks():
        released.append((now[0] - 100.0, len(chunk)))
    ends = np.cumsum([n for _, n in released]) / 16000
    assert [t for t, _ in released] == pytest.approx(list(ends), abs=1e-9)
    assert src.wall_time_of(0.5) == 100.5


def test_stop_ends_a_realtime_replay_early():
    src = ArraySource(np.zeros(16000 * 60, np.float32), realtime=True)
    got = 0
    for i, _ in enumerate(src.chunks()):
        got += 1
        if i == 3:
            src.stop()
    assert got == 4

"""The text pipeline on what whisper.cpp really writes: espeak-ng speech and silence through the embedded
tiny.en model (real whisper.cpp, real weights), then through the pipeline."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
import soxr

from sttkb.config.text import TextSettings
from sttkb.text.pipeline import TextPipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def whisper(default_model):
    from pywhispercpp.model import Model
    return Model(str(default_model), n_threads=2, print_progress=False, print_realtime=False,
                 redirect_whispercpp_logs_to=None)


def speak(tmp_path, text: str, voice: str, rate: int) -> np.ndarray:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(wav), text], check=True)
    audio, sr = sf.read(wav, dtype="float32")
    return soxr.resample(audio, sr, 16000).astype(np.float32)


def transcribe(whisper, audio: np.ndarray) -> str:
    return "".join(segment.text for segment in whisper.transcribe(audio))


@pytest.mark.parametrize(("voice", "rate"), [("en-us", 150), ("en-us+f3", 140), ("en-us+m3", 140)])
def test_spoken_new_line_becomes_a_line_break(whisper, tmp_path, voice, rate):
    raw = transcribe(whisper, speak(tmp_path, "Dear John, new line, how are you today?", voice, rate))
    typed = TextPipeline(TextSettings(spoken_commands=True, trailing_space=False)).process(
        raw, pause_before_s=0.0, speech_dbfs=-20.0, is_first=True)
    first, _, second = typed.partition("\n")
    assert "john" in first.lower(), (raw, typed)
    assert "how are you" in second.lower(), (raw, typed)
    assert "new line" not in typed.lower(), (raw, typed)


def test_commands_off_types_the_words(whisper, tmp_path):
    raw = transcribe(whisper, speak(tmp_path, "Dear John, new line, how are you today?", "en-us", 150))
    typed = TextPipeline(TextSettings(trailing_space=False)).process(raw, is_first=True)
    assert "\n" not in typed and "new line" in typed.lower(), (raw, typed)


@pytest.mark.parametrize("level_dbfs", [None, -50.0])
def test_silence_and_faint_noise_type_nothing(whisper, level_dbfs):
    """whisper.cpp writes [BLANK_AUDIO] (or similar) for these; the pipeline must type nothing."""
    samples = 16000 * 5
    if level_dbfs is None:
        audio = np.zeros(samples, np.float32)
    else:
        audio = (np.random.default_rng(0).standard_normal(samples) * 10 ** (level_dbfs / 20)).astype(np.float32)
    raw = transcribe(whisper, audio)
    pipeline = TextPipeline(TextSettings())
    assert pipeline.process(raw, speech_dbfs=level_dbfs or -90.0, is_first=True) == ""

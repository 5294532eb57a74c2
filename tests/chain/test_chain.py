"""The whole chain on real whisper.cpp: espeak-ng paragraphs with long pauses, silence and noises, streaming with a
real-time replay, batch, and the `sttkb transcribe` / `sttkb dictate` commands."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sttkb.audio.files import write_wav
from sttkb.audio.sources import ArraySource
from sttkb.config import Config
from sttkb.config.text import TextSettings
from sttkb.models.wer import normalize, wer
from tests.chain.patient_speaker import PatientSpeaker
from tests.speech import (JFK_TEXT, JFK_WAV, RATE, concat, hum, keyboard_clicks, paragraph, pink_noise, room, silence,
                          white_noise)

pytestmark = pytest.mark.slow

SENTENCES = [
    ("The weather will be sunny and warm tomorrow afternoon.", "en-us", 160),
    ("Please remember to bring your notebook to the meeting.", "en-gb", 140),
    ("We need to buy milk, bread and eggs on the way home.", "en-us+m3", 175),
    ("The train to the city leaves at the end of the day.", "en-us+f3", 150),
]
REFERENCE = " ".join(text for text, _, _ in SENTENCES)


@pytest.fixture(scope="module")
def long_paragraph():
    """Four voices and rates, pauses of 5, 12 and 20 s (about 60 s)."""
    return paragraph(SENTENCES, [5.0, 12.0, 20.0])


def test_paragraph_with_long_pauses(transcriber, long_paragraph):
    audio, spans = long_paragraph
    everything = list(transcriber.stream(ArraySource(audio)))
    text = "".join(p.text for p in everything)
    pieces = [p for p in everything if not p.sentence_end]
    assert wer(REFERENCE, text) <= 0.2, text
    # One segment per sentence: the pauses never reach the model.
    assert len(pieces) == len(SENTENCES)
    for piece, (start, end) in zip(pieces, spans):
        assert piece.segment_start_s <= start + 0.05 and piece.speech_end_s >= end - 0.3
        assert piece.segment_end_s - piece.segment_start_s < (end - start) + 1.0
    assert transcriber.stats.speech_s < 0.5 * transcriber.stats.audio_s
    # Joined with single spaces, Whisper's own casing kept.
    assert "  " not in text and text[0].isupper()


@pytest.mark.parametrize("noise", [
    pytest.param(lambda: silence(30.0), id="silence"),
    pytest.param(lambda: room(30.0, -60), id="room"),
    pytest.param(lambda: white_noise(30.0, -20), id="white"),
    pytest.param(lambda: pink_noise(30.0, -20), id="pink"),
    pytest.param(lambda: hum(30.0, -15), id="hum"),
    pytest.param(lambda: keyboard_clicks(30.0), id="keyboard"),
    pytest.param(lambda: keyboard_clicks(30.0, per_second=12.0, seed=4), id="fast-typing"),
])
def test_silence_and_noise_give_no_text_and_never_reach_the_model(transcriber, noise):
    calls = transcriber.engine.calls
    pieces = list(transcriber.stream(ArraySource(noise())))
    assert "".join(p.text for p in pieces) == ""
    assert transcriber.engine.calls == calls
    assert transcriber.stats.audio_s == pytest.approx(30.0, abs=0.05)


def test_streaming_types_each_phrase_while_the_next_is_spoken(transcriber):
    """Each phrase's text comes out while the audio after it is still being read, not all at the end; only the last
    phrase is left when the recording ends. The source is patient: 2 s into each pause it waits (at most 60 s) until
    the chain has produced the phrase before it, so a chain that decoded only at the end would be caught there with
    nothing produced, however fast or loaded this machine is. (How fast: `sttkb bench`.)"""
    audio, spans = paragraph(SENTENCES[:3], [6.0, 5.0], tail_s=0.3)
    cuts = [int((end + 2.0) * RATE) for _, end in spans[:2]]        # past end_silence_ms: the phrase has closed
    parts = [audio[:cuts[0]], audio[cuts[0]:cuts[1]], audio[cuts[1]:]]
    pieces: list = []
    read_when_out: list[float] = []
    speaker = PatientSpeaker(parts, {0: lambda: len(pieces) >= 1, 1: lambda: len(pieces) >= 2})
    everything = []
    for piece in transcriber.stream(speaker):
        everything.append(piece)
        if not piece.sentence_end:
            read_when_out.append(transcriber.stats.audio_s)
            pieces.append(piece)
    assert len(pieces) == 3
    for n in range(2):                    # out before the next sentence's audio was read
        assert read_when_out[n] <= spans[n + 1][0], (n, read_when_out[n], spans[n + 1][0])
    assert read_when_out[2] == pytest.approx(len(audio) / RATE, abs=0.05)   # the last: after the end
    assert wer(" ".join(t for t, _, _ in SENTENCES[:3]), "".join(p.text for p in everything)) <= 0.2


def test_batch_gives_the_same_text_as_streaming(transcriber):
    audio = concat(room(0.5), *paragraph(SENTENCES[:2], [3.0])[:1], room(0.5))
    streamed = "".join(p.text for p in transcriber.stream(ArraySource(audio)))
    batched = "".join(p.text for p in transcriber.batch(ArraySource(audio)))
    assert normalize(streamed) == normalize(batched) and streamed


def test_text_pipeline_is_applied(default_model, engine):
    from sttkb.chain import Transcriber
    config = Config(text=TextSettings(replacements={"notebook": "laptop"}, trailing_space=False))
    t = Transcriber(config, engine=engine)
    audio, _ = paragraph(SENTENCES[1:2], [])
    text = "".join(p.text for p in t.stream(ArraySource(audio)))
    assert "laptop" in text.lower() and "notebook" not in text.lower()
    assert not text.endswith(" ")


# -- the commands ------------------------------------------------------------------------------------------
def sttkb(*args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "sttkb", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_transcribe_prints_only_the_transcript(default_model):
    run = sttkb("transcribe", str(JFK_WAV), "--model", str(default_model))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1, run.stdout
    assert "ask not what your country can do for you" in normalize(lines[0])
    assert wer(JFK_TEXT, lines[0]) <= 0.15
    assert "whisper_" not in run.stdout and "ggml" not in run.stderr


def test_transcribe_uses_the_configured_store(default_model, tmp_path):
    """No --model: the store's default model (already imported into the test store) is used."""
    flac = tmp_path / "jfk-44k-stereo.flac"
    import soundfile as sf
    import soxr
    audio = soxr.resample(sf.read(JFK_WAV, dtype="float32")[0], 16000, 44100)
    sf.write(flac, np.stack([audio, audio], axis=1), 44100, format="FLAC")
    run = sttkb("transcribe", str(flac), env_extra={"STTKB_MODEL_STORE": str(default_model.parent)})
    assert run.returncode == 0, run.stderr
    assert "ask not what your country" in normalize(run.stdout)


def test_dictate_streams_a_file(default_model, tmp_path):
    audio, _ = paragraph(SENTENCES[:2], [5.0])
    wav = tmp_path / "two.wav"
    write_wav(wav, audio)
    run = sttkb("dictate", "--file", str(wav), "--model", str(default_model))
    assert run.returncode == 0, run.stderr
    assert wer(" ".join(t for t, _, _ in SENTENCES[:2]), run.stdout) <= 0.2


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["us", "de"])
def test_dictate_into_a_keyboard_types_what_was_said(default_model, tmp_path, layout):
    """`dictate --keyboard virtual`: the text goes through the real keymap, typist and HID reports, and a
    simulated host in the same layout decodes the reports back: the host receives the words of the recording."""
    config = tmp_path / "config.toml"
    config.write_text(f'[keyboard]\nlayout = "{layout}"\n')
    run = sttkb("--config", str(config), "dictate", "--file", str(JFK_WAV), "--model", str(default_model),
                "--keyboard", "virtual")
    assert run.returncode == 0, run.stderr
    said = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    assert wer(said, run.stdout) <= 0.1, run.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["transcribe", "/nonexistent.wav"], "no such audio file"),
    (["transcribe", str(JFK_WAV), "--model", "/nonexistent/model.bin"], "no such model file"),
    (["dictate", "--realtime"], "--realtime replays a --file"),
])
def test_command_errors_are_one_clear_line(args, message):
    run = sttkb(*args)
    assert run.returncode == 1
    assert message in run.stderr and "Traceback" not in run.stderr

"""whisper.cpp on real speech through WhisperEngine (real tiny.en q8_0 weights): a real recording and espeak-ng
voices at several rates."""

from __future__ import annotations

import pytest

from sttkb.audio.files import read_audio
from sttkb.models.wer import normalize, wer
from tests.speech import JFK_TEXT, JFK_WAV, speak

pytestmark = pytest.mark.slow


def test_real_recording(engine):
    result = engine.transcribe(read_audio(JFK_WAV))
    assert "ask not what your country can do for you" in normalize(result.text)
    assert wer(JFK_TEXT, result.text) <= 0.1
    assert result.dropped_reason is None and not result.retried


@pytest.mark.parametrize(("text", "voice", "wpm"), [
    ("The weather will be sunny and warm tomorrow afternoon.", "en-us", 160),
    ("Please remember to bring your notebook to the meeting.", "en-gb", 140),
    ("We need to buy milk, bread and eggs on the way home.", "en-us+m3", 175),
    ("The train to the city leaves at the end of the day.", "en-us+f3", 150),
])
def test_espeak_voices(engine, text, voice, wpm):
    result = engine.transcribe(speak(text, voice, wpm))
    assert wer(text, result.text) <= 0.3, result.text


def test_vocabulary_prompt_steers_spelling(engine):
    vocabulary = ["Ansible", "Kubernetes", "Okafor", "Siobhan"]
    prompt = ", ".join(vocabulary) + "."
    hits = {"plain": 0, "prompted": 0}
    for text in ("Deploy it with Ansible on Kubernetes.", "Send the file to Doctor Okafor and Siobhan."):
        audio = speak(text, "en-us", 150)
        for kind, p in (("plain", ""), ("prompted", prompt)):
            words = normalize(engine.transcribe(audio, p).text).split()
            hits[kind] += sum(w.lower() in words for w in vocabulary)
    assert hits["prompted"] > hits["plain"], hits


def test_a_real_runaway_decode_is_never_typed(default_model):
    """A real whisper.cpp runaway: with the encoder window fitted tightly to the segment (which the default
    fixed audio_ctx avoids, see docs/audio-asr.md) tiny.en repeats the sentence until the token budget
    stops it. The engine sees the missing end-of-text token, retries, and drops the segment rather than type
    the sentence twice."""
    import math

    from sttkb.asr.engine import WhisperEngine
    from sttkb.audio.vad import Segmenter
    from sttkb.config.asr import AsrSettings
    from tests.speech import concat, room
    audio = concat(room(0.5), speak("Turn left at the second traffic light and park behind the bakery.",
                                    "en-gb+f3", 150), room(1.5))
    segmenter = Segmenter()
    (segment,) = segmenter.feed(audio) + segmenter.flush()
    tight = int(math.ceil(segment.duration_s / 0.02)) + 32
    with WhisperEngine(default_model, AsrSettings(threads=2, audio_ctx=tight)) as tight_engine:
        result = tight_engine.transcribe(segment)
    assert result.retried
    assert normalize(result.text).count("traffic light") <= 1
    assert result.text == "" or "turn left" in normalize(result.text)

"""Decoding during the pause ([vad] speculate_ms) with the real whisper.cpp: a pause that lasts types the early result
and decodes nothing after the segment ended; speech that resumes throws the early result away. Either way the text is
exactly what the chain types without speculation.

The speaker is patient: at each pause the source waits until the chain has decoded early (as a user whose pause
outlasts the decode would), so the test does not depend on how fast this machine is at the moment."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from sttkb.audio.sources import ArraySource
from sttkb.chain import Transcriber
from sttkb.config import Config
from tests.chain.patient_speaker import PatientSpeaker, one_more
from tests.speech import RATE, concat, have_espeak, room, speak

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_espeak(), reason="needs espeak-ng")]


@pytest.fixture
def counting(engine, monkeypatch):
    """The segments whisper.cpp was asked to decode (transcribe() calls recognize(): each decode counts once)."""
    calls = []
    real = engine.recognize
    monkeypatch.setattr(engine, "recognize", lambda seg, prompt="", **kw: calls.append(seg) or real(seg, prompt, **kw))
    return calls


def config(speculate_ms: int) -> Config:
    """Greedy throughout: the text is compared with a batch run's, and beam decodes where there is time depend on this machine's speed (tests/chain/test_idle_beam.py)."""
    c = Config()
    return dataclasses.replace(c, vad=dataclasses.replace(c.vad, speculate_ms=speculate_ms, end_silence_ms=700),
                               asr=dataclasses.replace(c.asr, beam_when_idle=False))


def plain_text(engine, audio: np.ndarray) -> str:
    t = Transcriber(config(0), engine=engine)
    return "".join(p.text for p in t.batch(ArraySource(audio)))


def speculated(engine, counting, parts: list[np.ndarray]) -> tuple[Transcriber, list, str]:
    """Stream ``parts`` with speculation on, the speaker waiting out the early decode in the two pauses (after parts
    2 and 5); also the text without speculation, for comparison."""
    expected = plain_text(engine, concat(*parts))
    counting.clear()
    t = Transcriber(config(300), engine=engine)
    pieces = list(t.stream(PatientSpeaker(parts, {n: one_more(lambda: t.stats.early_decodes) for n in (2, 5)})))
    assert "".join(p.text for p in pieces) == expected
    return t, pieces, expected


def test_a_pause_that_lasts_types_the_early_result(engine, counting):
    first = speak("The quick brown fox jumps over the lazy dog.", wpm=150)
    second = speak("Please send the report before lunch.", wpm=150, voice="en-gb")
    # pause 1: 0.4 s (early decode happens), then 1.1 s more: the pause lasts, the segment closes
    t, _, expected = speculated(engine, counting, [room(0.4), first, room(0.4, seed=1), room(1.1, seed=2), second,
                                                   room(0.4, seed=3), room(1.0, seed=4)])
    assert "lazy dog" in expected and "report" in expected
    assert t.stats.early_decodes == 2 and t.stats.early_used == 2
    assert len(counting) == 2          # nothing was decoded again after a segment ended


def test_speech_that_resumes_throws_the_early_result_away(engine, counting):
    start = speak("I would like to order", wpm=150)
    rest = speak("two large pizzas with extra cheese.", wpm=150)
    # a thinking pause of 0.5 s (longer than speculate_ms, shorter than end_silence_ms) inside one sentence
    t, pieces, expected = speculated(engine, counting, [room(0.4), start, room(0.45, seed=1), room(0.05, seed=2), rest,
                                                        room(0.4, seed=3), room(1.0, seed=4)])
    assert len([p for p in pieces if not p.sentence_end]) == 1   # one segment: the pause did not end it
    assert t.stats.early_decodes == 2 and t.stats.early_used == 1
    assert len(counting) == 2                             # the thrown-away guess, then the whole sentence early
    assert "order" in expected and "cheese" in expected


def test_speech_that_comes_back_during_the_early_decode_stops_it(engine, counting, monkeypatch):
    """The early decode of a thinking pause is stopped (whisper.cpp's abort) as soon as speech comes back, instead of
    running to its end for nothing; the text is still exactly the text without speculation."""
    start = speak("I would like to order", wpm=150)
    rest = speak("two large pizzas with extra cheese.", wpm=150)
    parts = [room(0.4), start, room(0.45, seed=1), rest, room(0.4, seed=3), room(1.0, seed=4)]
    expected = plain_text(engine, concat(*parts))
    entered = threading.Event()
    recognize = engine.recognize

    def early_waits_for_speech(seg, prompt="", **kw):
        # The first early decode holds until the capture has seen speech come back (so the abort is certain to be
        # asked while whisper.cpp works, however fast this machine is), then runs: whisper.cpp must stop it.
        if kw.get("abort") is not None and not entered.is_set():
            entered.set()
            deadline = time.monotonic() + 60
            while not kw["abort"]() and time.monotonic() < deadline:
                time.sleep(0.005)
        return recognize(seg, prompt, **kw)

    monkeypatch.setattr(engine, "recognize", early_waits_for_speech)
    t = Transcriber(config(300), engine=engine)
    speaker = PatientSpeaker(parts, {2: entered.is_set, 4: one_more(lambda: t.stats.early_decodes)})
    pieces = list(t.stream(speaker))
    assert "".join(p.text for p in pieces) == expected
    assert "order" in expected and "cheese" in expected
    assert t.stats.early_decodes == 2 and t.stats.early_aborted == 1 and t.stats.early_used == 1


def test_speculation_off_decodes_after_each_segment(engine, counting):
    parts = [room(0.4), speak("Good morning everyone.", wpm=150), room(1.2)]
    t = Transcriber(config(0), engine=engine)
    pieces = list(t.stream(ArraySource(concat(*parts))))
    assert "everyone" in "".join(p.text for p in pieces).lower()
    assert t.stats.early_decodes == 0 and len(counting) == len(pieces) == 1
    assert len(concat(*parts)) / RATE > 2

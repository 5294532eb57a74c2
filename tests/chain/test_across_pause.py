"""[text] decode_across_pause with the real whisper.cpp: a phrase that follows another within hold_sentence_end_s is
decoded together with it (Whisper hears both sides of the pause); off, each phrase is decoded alone."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from sttkb.audio.sources import ArraySource
from sttkb.chain import Transcriber
from sttkb.config import Config
from tests.speech import concat, have_espeak, room, speak

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_espeak(), reason="needs espeak-ng")]


def config(across: bool) -> Config:
    c = Config()
    # greedy throughout: the test counts the decodes, and beam decodes where there is time depend on this machine's speed (tests/chain/test_idle_beam.py)
    return dataclasses.replace(c, text=dataclasses.replace(c.text, decode_across_pause=across),
                               vad=dataclasses.replace(c.vad, speculate_ms=0),
                               asr=dataclasses.replace(c.asr, beam_when_idle=False))


@functools.lru_cache(maxsize=1)
def two_phrases():
    """Two phrases of one sentence, 1.3 s apart, both longer than [vad] join_short_s."""
    return concat(room(0.3), speak("When the train arrives at the station,", "en-us", 150), room(1.3, seed=1),
                  speak("please stand behind the yellow line.", "en-us", 150), room(1.0, seed=2))


def test_the_next_phrase_is_decoded_with_the_one_before_it(engine, decoded):
    pieces = list(Transcriber(config(True), engine=engine).stream(ArraySource(two_phrases())))
    words = [p for p in pieces if not p.sentence_end]
    assert len(words) == 2
    first, second = words[0].segment_start_s, words[1].segment_start_s
    assert second > first + 2.0
    assert decoded[0].start_s == first and decoded[1].start_s == first      # the second decode hears both
    assert decoded[1].end_s >= words[1].segment_end_s - 0.01
    typed = "".join(p.text for p in pieces).strip()
    assert typed.count("station") == 1 and "yellow line" in typed           # the first phrase is typed once


def test_off_each_phrase_is_decoded_alone(engine, decoded):
    pieces = list(Transcriber(config(False), engine=engine).stream(ArraySource(two_phrases())))
    words = [p for p in pieces if not p.sentence_end]
    assert [s.start_s for s in decoded] == [p.segment_start_s for p in words]
    assert "yellow line" in "".join(p.text for p in pieces)

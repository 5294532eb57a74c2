"""[text] wait_for_next_phrase with the real whisper.cpp: each phrase is typed when the next one has been heard with
it (Whisper reads it with the speech on both sides of its pauses), or after a silence of hold_sentence_end_s, or at
the release; nothing is typed twice and nothing is lost."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from sttkb.audio.sources import ArraySource
from sttkb.chain import Transcriber
from sttkb.config import Config
from tests.speech import concat, have_espeak, room, speak

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_espeak(), reason="needs espeak-ng")]


def config(wait: bool = True) -> Config:
    c = Config()
    # greedy throughout, no early decodes: the tests count the decodes, and beam decodes where there is time depend
    # on this machine's speed (tests/chain/test_idle_beam.py)
    return dataclasses.replace(c, text=dataclasses.replace(c.text, wait_for_next_phrase=wait),
                               vad=dataclasses.replace(c.vad, speculate_ms=0),
                               asr=dataclasses.replace(c.asr, beam_when_idle=False))


FIRST, SECOND = "When the train arrives at the station,", "please stand behind the yellow line."


@functools.lru_cache(maxsize=2)
def two_phrases(pause_s: float):
    """One sentence said in two phrases, ``pause_s`` apart."""
    return concat(room(0.3), speak(FIRST, "en-us", 150), room(pause_s, seed=1), speak(SECOND, "en-us", 150),
                  room(1.0, seed=2))


def words(pieces) -> list:
    return [p for p in pieces if p.text.strip(" .!?")]


def test_a_phrase_is_typed_when_the_next_one_has_been_heard_with_it(engine, decoded):
    pieces = list(Transcriber(config(), engine=engine).stream(ArraySource(two_phrases(1.3))))
    first, second = decoded[0], decoded[1]
    assert second.start_s == first.start_s and second.end_s > first.end_s + 2.0   # the second decode hears both
    assert pieces[0].text == "" and pieces[0].segment_start_s == first.start_s     # the first phrase waited
    typed = words(pieces)
    assert typed[0] is pieces[1] and typed[0].segment_start_s == first.start_s   # typed with the second decode
    assert typed[1].segment_start_s > first.end_s + 0.5                          # the second phrase, at the end
    assert "station" in typed[0].text and "yellow line" in typed[1].text
    assert not any(p.after_silence for p in pieces)
    text = "".join(p.text for p in pieces)
    assert text.count("station") == 1 and text.count("yellow") == 1 and len(decoded) == 2
    assert "please stand" in text and text.count(".") == 1, text      # one sentence, as it was said


def test_after_a_long_silence_the_waiting_phrase_is_typed_as_it_was_read(engine, decoded):
    """3 s of silence (more than hold_sentence_end_s): the first phrase is typed during it, flagged as typed after a
    silence, and the phrase after it is decoded alone (a new train of thought)."""
    pieces = list(Transcriber(config(), engine=engine).stream(ArraySource(two_phrases(3.0))))
    typed = words(pieces)
    assert "station" in typed[0].text and typed[0].after_silence
    assert typed[0].speech_end_s is not None and typed[0].speech_end_s < decoded[1].start_s
    assert "yellow line" in typed[1].text and not typed[1].after_silence
    assert decoded[1].start_s > decoded[0].end_s + 2.0                   # the second phrase heard alone
    assert pieces.index(typed[0]) < pieces.index(typed[1])
    text = "".join(p.text for p in pieces)
    assert text.count("station") == 1 and text.count("yellow") == 1


def test_a_batch_reads_ahead_the_same_way(engine, decoded):
    """The benchmark's batch at release gets no news of silences: the pause between the phrases says the same."""
    near = Transcriber(config(), engine=engine)
    text = near.text_of(near.batch(ArraySource(two_phrases(1.3))))
    assert len(decoded) == 2 and decoded[1].start_s == decoded[0].start_s
    far = Transcriber(config(), engine=engine)
    assert "station" in text and "yellow line" in text
    apart = far.text_of(far.batch(ArraySource(two_phrases(3.0))))
    assert len(decoded) == 4 and decoded[3].start_s > decoded[2].end_s + 2.0
    assert apart.count("station") == 1 and apart.count("yellow") == 1

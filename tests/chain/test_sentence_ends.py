"""Sentence ends across pauses (issue #16) with the real whisper.cpp and the embedded default model: a sentence that
ends before a pause is typed with its end, a thinking pause inside a sentence is not, and how sure Whisper was of
the mark it wrote decides which (sttkb.chain.SURE_END_P)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from sttkb.audio.files import read_audio
from sttkb.audio.sources import ArraySource
from sttkb.audio.vad import Segmenter
from sttkb.chain import SURE_END_P, Transcriber
from sttkb.cli import bench
from sttkb.config import Config
from tests.speech import room

pytestmark = pytest.mark.slow

VOICES, _ = bench.SETS["voices"]


def streamed(engine, audio: np.ndarray) -> str:
    """What the chain types with the default settings, greedy throughout (beam decodes where there is time depend
    on this machine's speed: tests/chain/test_idle_beam.py)."""
    c = Config()
    config = dataclasses.replace(c, asr=dataclasses.replace(c.asr, beam_when_idle=False))
    return "".join(p.text for p in Transcriber(config, engine=engine).stream(ArraySource(audio))).strip()


def test_a_sentence_that_ends_before_a_pause_is_typed_with_its_end(engine):
    """Kennedy's sentence, 1.5 s of room, then the next speaker's sentence: two sentences, as said (before, the
    held mark became a comma in the next phrase's context and Whisper ran the two together in lower case)."""
    jfk, draft = (read_audio(VOICES / name) for name in ("01-jfk.wav", "02-en-us-165.flac"))
    typed = streamed(engine, np.concatenate([jfk, room(1.5), draft]))
    assert re.search(r"\bcountry[.!] Thanks for sending\b", typed), typed


def test_whisper_is_sure_of_the_real_sentence_end_and_not_of_the_thinking_pauses(engine):
    """On the real recording: the phrases that end at Kennedy's pauses get marks Whisper is not sure of (so the
    sentence is typed as one: tests/chain/test_bench_split.py), the end of his sentence one it is sure of."""
    seg = Segmenter(Config().vad)
    phrases = seg.feed(read_audio(VOICES / "01-jfk.wav")) + seg.flush()
    results = [engine.transcribe(p) for p in phrases]
    assert len(results) == 3 and all(r.text.endswith((".", "!", "?")) for r in results), [r.text for r in results]
    assert [r.end_mark_p >= SURE_END_P for r in results] == [False, False, True], \
        [(r.text, r.end_mark_p) for r in results]

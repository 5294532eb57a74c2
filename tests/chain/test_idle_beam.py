"""Beam search where there is time (``[asr] beam_when_idle``) with the real whisper.cpp: a phrase a pause ends while
the button is held is decoded once more with beam search and that text is typed; the phrase the release ends stays
greedy; hands-free, nothing is; a release during the beam decode abandons it and the greedy text is typed. The typed
text is exactly what the decodes the chain used wrote, each once, in speech order.

(Not "what a batch run types": whisper.cpp's beam search is not repeatable from call to call — the same segment with
the same prompt gave "walk in the plants" and "walk on the plants" in two calls, single-threaded too, as its
temperature fallback samples from a random generator that lives on between calls — so the test records what each
decode wrote.)

The speaker is patient (as in test_speculate.py): at a pause the source waits until the chain has done what the
test is about, so the test does not depend on how fast this machine is at the moment. The estimate of the beam
decode's time always fits here: the rule that compares it with the time there is is table-tested in
test_idle_beam_rule.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import sttkb
from sttkb.asr.idle_beam import BeamTimer
from sttkb.audio.files import read_audio
from sttkb.chain import Transcriber
from sttkb.config import Config
from sttkb.models.wer import normalize
from tests.chain.patient_speaker import PatientSpeaker
from tests.speech import room

pytestmark = pytest.mark.slow

BENCH = Path(sttkb.__file__).resolve().parent / "bench_data"
# Two clips of the built-in benchmark set, each longer than join_short_s (so each is its own phrase).
MID = "04-en-gb-scotland-140.flac"
LAST = "02-en-us-165.flac"


def clip(name: str) -> np.ndarray:
    """The clip without its own leading and trailing silence (the test sets the pauses)."""
    audio = read_audio(BENCH / name)
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[loud[0]:loud[-1] + 1]


class AlwaysFits(BeamTimer):
    def estimate(self, greedy_s: float) -> float:
        return 0.0


def config(beam_when_idle: bool) -> Config:
    c = Config()
    return dataclasses.replace(c, asr=dataclasses.replace(c.asr, beam_when_idle=beam_when_idle, idle_beam_size=5),
                               vad=dataclasses.replace(c.vad, speculate_ms=300, end_silence_ms=700))


class Calls(list):
    greedy_s: list[float]

    def __init__(self) -> None:
        super().__init__()
        self.greedy_s = []


@pytest.fixture
def calls(engine, monkeypatch):
    """Every decode the chain asks for, in order: ("greedy" | "beam", seconds of audio, prompt, text); the greedy
    decodes' times in ``seen.greedy_s``."""
    seen = Calls()
    recognize = engine.recognize     # (transcribe() calls recognize(): every decode passes here once)

    def spy(seg, prompt="", **kw):
        result = recognize(seg, prompt, **kw)
        kind = "beam" if kw.get("beam_size") else "greedy"
        seen.append((kind, round(seg.duration_s, 2), prompt, result.text))
        if kind == "greedy":
            seen.greedy_s.append(result.asr_s)
        return result

    monkeypatch.setattr(engine, "recognize", spy)
    return seen


def parts() -> list[np.ndarray]:
    # room, the mid phrase, a pause: 0.4 s (the early decode starts), 1.1 s more (the pause closes the phrase while
    # the button is held), the last phrase, released 0.2 s after it (too soon for a decode during that pause)
    return [room(0.4), clip(MID), room(0.4, seed=1), room(1.1, seed=2), clip(LAST), room(0.2, seed=3)]


def words(text: str) -> list[str]:
    return normalize(text).split()


def test_a_phrase_that_a_pause_ends_is_typed_from_a_beam_decode_and_the_release_phrase_greedy(engine, calls):
    t = Transcriber(config(True), engine=engine)
    t.beam_timer = AlwaysFits()
    source = PatientSpeaker(parts(), {2: lambda: t.stats.early_decodes == 1, 3: lambda: t.stats.segments == 1})
    pieces = list(t.stream(source))
    decoded = [p for p in pieces if not p.sentence_end]
    assert [p.beam for p in decoded] == [True, False]        # the mid phrase from beam, the release phrase greedy
    # the mid phrase greedy (during its pause), then with beam; the last phrase greedy at the release (and before
    # that, greedy guesses during its own short pauses, thrown away when the speech went on)
    (g_kind, g_s, g_prompt, greedy_mid), (b_kind, b_s, b_prompt, beam_mid), *_, (l_kind, _, l_prompt, greedy_last) = calls
    assert (g_kind, b_kind, l_kind) == ("greedy", "beam", "greedy")
    assert [c[0] for c in calls].count("beam") == 1
    assert g_s == b_s and g_prompt == b_prompt == ""         # the same segment, the same context
    assert t.stats.early_used == 1                           # its greedy text came from the decode during the pause
    assert t.stats.beam_decodes == t.stats.beam_used == 1 and t.stats.beam_abandoned == 0
    assert decoded[0].raw_text == beam_mid and decoded[1].raw_text == greedy_last
    assert words(beam_mid)[:4] == words(l_prompt)[:4]        # the last phrase's context is the beam text
    text = "".join(p.text for p in pieces)
    assert words(text) == words(beam_mid + " " + greedy_last)   # exactly those words: nothing twice, none lost
    assert words(text)[:3] == ["the", "river", "was"] and words(text)[-2:] == ["more", "detail"]
    assert decoded[0].asr_s > 0 and decoded[0].ready_at < decoded[1].ready_at


def test_hands_free_every_phrase_is_greedy(engine, calls):
    t = Transcriber(config(True), engine=engine)
    t.beam_timer = AlwaysFits()
    source = PatientSpeaker(parts(), {2: lambda: t.stats.early_decodes == 1, 3: lambda: t.stats.segments == 1})
    pieces = list(t.stream(source, awaited_at_pause=True))
    assert not any(p.beam for p in pieces) and t.stats.beam_decodes == 0
    assert {c[0] for c in calls} == {"greedy"}
    assert words("".join(p.text for p in pieces)) == words(calls[0][3] + " " + calls[-1][3])


def test_the_release_during_a_beam_decode_abandons_it_and_types_the_greedy_text(engine, calls):
    # the mid phrase, its pause closes it, and the button is released while its beam decode runs
    t = Transcriber(config(True), engine=engine)
    t.beam_timer = AlwaysFits()
    source = PatientSpeaker(parts()[:4], {2: lambda: t.stats.early_decodes == 1, 3: lambda: t.stats.beam_decodes == 1})
    pieces = list(t.stream(source))
    assert not any(p.beam for p in pieces)
    assert t.stats.beam_decodes == t.stats.beam_abandoned == 1 and t.stats.beam_used == 0
    assert [c[0] for c in calls] == ["greedy"]               # the abandoned beam decode returned nothing
    assert words("".join(p.text for p in pieces)) == words(calls[0][3])
    waited = max(p.ready_at for p in pieces) - t.stats.source_ended_at
    greedy_s = calls.greedy_s[0]
    print(f"the release waited {waited:.2f} s for the abandoned beam decode; its greedy decode took {greedy_s:.2f} s")

"""[text] wait_for_next_phrase: however Whisper reads a window, every phrase's words are typed once, none lost.

whisper.cpp is replaced by a scripted reader here ONLY because the real model cannot be made to misread on demand: it
answers each decode with the words of the phrases it was given (it tells them apart by their audio), beginning the
window as a new sentence and saying a phrase at the window's end twice, as Whisper does now and then. The VAD, the
chain, the engine's own logic and the text pipeline are the real ones, on the real JFK recording."""

from __future__ import annotations

import dataclasses

import numpy as np

from sttkb.asr.engine import WhisperEngine
from sttkb.audio.files import read_audio
from sttkb.audio.sources import ArraySource
from sttkb.audio.vad import Segmenter
from sttkb.chain import Transcriber
from sttkb.config import Config
from tests.speech import JFK_WAV

SAID = ["and so my fellow americans", "ask not",
        "what your country can do for you ask what you can do for your country"]


class Seg:
    def __init__(self, text):
        self.text = text


def blocks(audio: np.ndarray) -> list[int]:
    """The lengths of the speech blocks in a decode's audio: the chain joins phrases with digital silence between
    them (0.1 s or more of exact zeros here; the engine also pads short audio with it at the end)."""
    edges = np.diff(np.concatenate([[0], (audio == 0.0).astype(np.int8), [0]]))
    runs = [(a, b) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)) if b - a >= 1600]
    bounds = [0, *[x for run in runs for x in run], len(audio)]
    return [bounds[k + 1] - bounds[k] for k in range(0, len(bounds), 2) if bounds[k + 1] > bounds[k]]


class ScriptedReader:
    """Knows each JFK phrase by its number of samples; writes the window's phrases in order, the first word upper
    case, the last phrase (when it has three words or more) with its last three words said twice."""

    def __init__(self, sizes: dict[int, str]):
        self.sizes = sizes
        self.windows: list[list[str]] = []

    def transcribe(self, audio, **params):
        said = [self.phrase(n) for n in blocks(np.asarray(audio))]
        self.windows.append(said)
        words = " ".join(said).split()
        if len(said[-1].split()) >= 3:
            words += said[-1].split()[-3:]
        words[0] = words[0].capitalize()
        return [Seg(" ".join(words) + ".")]

    def phrase(self, samples: int) -> str:
        size = min(self.sizes, key=lambda s: abs(s - samples))
        assert abs(size - samples) < 800, (samples, sorted(self.sizes))
        return self.sizes[size]


def test_every_phrase_is_typed_once_however_the_window_reads_it(tmp_path):
    c = Config()
    config = dataclasses.replace(c, text=dataclasses.replace(c.text, wait_for_next_phrase=True),
                                 asr=dataclasses.replace(c.asr, beam_when_idle=False),
                                 vad=dataclasses.replace(c.vad, speculate_ms=0))
    audio = read_audio(JFK_WAV)
    segmenter = Segmenter(config.vad)
    phrases = segmenter.feed(audio) + segmenter.flush()
    assert len(phrases) == len(SAID)
    reader = ScriptedReader({len(p.samples): words for p, words in zip(phrases, SAID)})
    model_file = tmp_path / "tiny.en-q8_0.bin"
    model_file.write_bytes(b"lmgg")
    engine = WhisperEngine(model_file, config.asr, model_factory=lambda path, **init: reader)
    pieces = list(Transcriber(config, engine=engine, warm_up=False).stream(ArraySource(audio)))
    typed = "".join(p.text for p in pieces)
    assert reader.windows == [SAID[:1], SAID[:2], SAID[:3]]      # each decode heard the phrases before it
    assert typed.strip() == "And so my fellow americans ask not what your country can do for you ask what you can " \
                            "do for your country.", typed

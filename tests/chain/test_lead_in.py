"""The chain's punctuated lead-in (sttkb.chain.PUNCTUATED_CONTEXT) is put before a context with no punctuation; the
user never said it, so it must never be typed, even when Whisper writes its prompt out again.

whisper.cpp is replaced by a scripted stand-in here ONLY because the real model cannot be made to echo its prompt on
demand (it is rare); the VAD, the chain, the engine's own logic and the text pipeline are the real ones, on the real
JFK recording."""

from __future__ import annotations

import dataclasses

from sttkb.asr.engine import WhisperEngine
from sttkb.audio.files import read_audio
from sttkb.audio.sources import ArraySource
from sttkb.chain import PUNCTUATED_CONTEXT, Transcriber
from sttkb.config import Config
from tests.speech import JFK_WAV


class Seg:
    def __init__(self, text):
        self.text = text


class EchoingModel:
    """Answers each decode with unpunctuated words (so the next context gets the lead-in) and, whenever the lead-in
    is in its prompt, writes it out first, as Whisper sometimes does with its prompt."""

    def __init__(self, path, **init):
        self.prompts: list[str] = []

    def transcribe(self, audio, **params):
        prompt = params.get("initial_prompt", "")
        self.prompts.append(prompt)
        words = f"part {len(self.prompts)} of what was said"
        return [Seg(f"{PUNCTUATED_CONTEXT} {words}" if PUNCTUATED_CONTEXT in prompt else words)]


def test_the_lead_in_whisper_echoes_is_not_typed(tmp_path):
    model_file = tmp_path / "tiny.en-q8_0.bin"
    model_file.write_bytes(b"lmgg")
    models = []
    c = Config()
    config = dataclasses.replace(c, asr=dataclasses.replace(c.asr, beam_when_idle=False),
                                 vad=dataclasses.replace(c.vad, speculate_ms=0))
    engine = WhisperEngine(model_file, config.asr,
                           model_factory=lambda path, **init: models.append(EchoingModel(path)) or models[0])
    typed = "".join(p.text for p in Transcriber(config, engine=engine, warm_up=False)
                    .stream(ArraySource(read_audio(JFK_WAV))))
    prompts = models[0].prompts
    assert len(prompts) >= 2 and any(p.startswith(PUNCTUATED_CONTEXT) for p in prompts)   # the echo was offered
    assert "hello" not in typed.lower() and "welcome" not in typed.lower(), typed
    for n in range(1, len(prompts) + 1):
        assert f"part {n} of what was said" in typed.lower(), typed                         # nothing else was lost

"""[asr] and [models] settings."""

from __future__ import annotations

from dataclasses import dataclass

from sttkb.config.schema import setting


@dataclass(frozen=True)
class ModelSettings:
    store: str = setting("", "Model store directory; empty = /var/lib/sttkb/models as root/service, "
                             "else ~/.local/share/sttkb/models")
    name: str = setting("", "Model to use (see `sttkb model list`); empty = the one chosen with `sttkb model use`, else the embedded default tiny.en q8_0")


@dataclass(frozen=True)
class AsrSettings:
    language: str = setting("en", "Spoken language code (en, de, ...) or 'auto'; English-only models need 'en'")
    translate: bool = setting(False, "Translate to English (multilingual models only)")
    threads: int = setting(0, "whisper.cpp threads; 0 = all cores", min=0, max=64)
    beam_size: int = setting(1, "1 = greedy decoding (fast); 2..8 = beam search", min=1, max=8)
    beam_when_idle: bool = setting(True, "With beam_size 1: decode a phrase once more with beam search "
                                          "(idle_beam_size) when a pause ends it while the button is held and that "
                                          "should finish before the next phrase could end; the greedy text stands "
                                          "if anything needs the recognizer sooner. Never at the release or in "
                                          "hands-free listening (docs/audio-asr.md)")
    idle_beam_size: int = setting(5, "Beam size of beam_when_idle", min=2, max=8)
    temperature_fallback: bool = setting(True, "Retry with higher temperature when decoding fails its thresholds")
    no_speech_threshold: float = setting(0.6, "Drop a segment whose no-speech probability exceeds this",
                                         min=0.0, max=1.0)
    logprob_threshold: float = setting(-1.0, "Average log probability below which decoding is retried",
                                       min=-10.0, max=0.0)
    vocabulary: list[str] = setting([], "Words and names to bias recognition toward (goes into the prompt)")
    context_chars: int = setting(200, "Tail of the previous text passed as prompt context (characters)",
                                 min=0, max=1000)
    audio_ctx: int = setting(768, "Encoder window in 20 ms frames, the same for every segment (768 = 15.36 s; "
                                  "0 or 1500 = the full 30 s); segments are capped to fit it; see README benchmarks",
                             min=0, max=1500)
    tokens_per_second: float = setting(8.0, "Token budget per second of audio; a decode that uses it all is a "
                                                 "runaway: retried, then dropped (fast speech needs about 6)",
                                       min=1.0, max=30.0)

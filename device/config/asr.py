"""[asr] and [models] settings."""

from __future__ import annotations

from dataclasses import dataclass

from sttkb.config.engine_url import EngineUrl, EngineUrlError, check_engine, normalize_fingerprint, parse_engine_url
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
    engine: str = setting("local", "Who turns speech into text: \"local\" (this box's model; speech never leaves "
                                   "the box) or a speech server on your network — \"wyoming://HOST:PORT\" or "
                                   "\"https://HOST/v1/audio/transcriptions\" (OpenAI-compatible). With a server, "
                                   "SPEECH LEAVES THE BOX; the box's model takes over whenever the server fails "
                                   "(docs/remote.md)")
    remote_timeout_ms: int = setting(2000, "Longest wait for the server's text of a short phrase before the box's "
                                           "model decodes it instead (milliseconds)", min=100, max=60000)
    remote_timeout_per_s_ms: int = setting(100, "Added to remote_timeout_ms per second of the phrase's audio "
                                                "(milliseconds)", min=0, max=10000)
    remote_api_key_file: str = setting("", "File holding the API key (Bearer token) of an https:// or http:// "
                                           "server; owned by root (or you) and readable by no one else (chmod "
                                           "600); empty = no key")
    remote_tls_fingerprint: str = setting("", "SHA-256 fingerprint of the https:// server's certificate: the "
                                              "certificate must be exactly this one (a self-signed home server "
                                              "works); empty = the system's certificate authorities")
    remote_ca_file: str = setting("", "PEM file of extra certificate authorities to trust for the https:// server "
                                      "(a home CA); empty = the system's")
    remote_model: str = setting("whisper-1", "Model name sent to an OpenAI-compatible server")
    remote_allow_public_plain: bool = setting(False, "Allow http:// and wyoming:// (unencrypted) to a public "
                                                     "address; by default plain engines must be on loopback, "
                                                     "private or link-local addresses")

    def __post_init__(self) -> None:
        try:
            url = parse_engine_url(self.engine)
            if url is not None:
                check_engine(url, allow_public_plain=self.remote_allow_public_plain)
        except EngineUrlError as e:
            raise ValueError(f"engine: {e}") from e
        try:
            fingerprint = normalize_fingerprint(self.remote_tls_fingerprint)
        except EngineUrlError as e:
            raise ValueError(f"remote_tls_fingerprint: {e}") from e
        if fingerprint and (url is None or not url.encrypted):
            raise ValueError("asr.remote_tls_fingerprint pins an https:// server's certificate, but asr.engine is "
                             f"{self.engine!r}; remove the fingerprint or use an https:// engine")
        object.__setattr__(self, "remote_tls_fingerprint", fingerprint)

    @property
    def remote(self) -> EngineUrl | None:
        """The remote engine, or None for "local"."""
        return parse_engine_url(self.engine)

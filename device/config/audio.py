"""[audio] and [vad] settings."""

from __future__ import annotations

from dataclasses import dataclass

from sttkb.config.schema import setting


@dataclass(frozen=True)
class AudioSettings:
    device: str = setting("", "Microphone: a name (substring match) or an index; empty = the system default")
    rate: int = setting(16000, "Sample rate the model gets (hertz); capture resamples if the mic cannot do it",
                        choices=(16000,))
    capture_rate: int = setting(0, "Capture sample rate (hertz); 0 = 16000 if the mic supports it, else native",
                                min=0, max=192000)
    frames_per_buffer: int = setting(480, "Samples per capture callback at the capture rate", min=64, max=16384)
    queue_seconds: float = setting(120.0, "Audio buffered while the model is busy before overflow (seconds)",
                                   min=5.0, max=3600.0)


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = setting(2, "webrtcvad aggressiveness: 0 (keeps most) .. 3 (strictest)", min=0, max=3)
    frame_ms: int = setting(30, "VAD frame length (milliseconds)", choices=(10, 20, 30))
    pre_roll_ms: int = setting(300, "Audio kept before speech starts (milliseconds)", min=0, max=2000)
    end_silence_ms: int = setting(700, "Silence that ends a segment (milliseconds)", min=90, max=10000)
    speculate_ms: int = setting(240, "Start decoding a phrase after this much silence (never before the 240 ms "
                                     "post-roll is complete), and keep the result if the pause reaches "
                                     "end_silence_ms or the button is released; stopped if speech comes back; "
                                     "0 = off (milliseconds)", min=0, max=10000)
    join_short_s: float = setting(2.0, "A phrase shorter than this waits and is decoded together with the next one "
                                       "while you keep talking (more context: better words and punctuation); "
                                       "0 = off (seconds)", min=0.0, max=10.0)
    min_speech_ms: int = setting(250, "Shorter bursts of speech are dropped (milliseconds)", min=0, max=5000)
    max_segment_s: float = setting(14.0, "Longest segment; longer speech is cut at its quietest point; never more "
                                         "than the asr.audio_ctx window minus 1 s (seconds)",
                                   min=2.0, max=29.0)
    level_gate_dbfs: float = setting(-45.0, "Frames quieter than this never count as speech (dBFS)",
                                     min=-90.0, max=0.0)

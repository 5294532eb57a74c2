"""The unit of speech handed from the VAD to the recognizer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sttkb.audio import SAMPLE_RATE


@dataclass(frozen=True, eq=False)
class Segment:
    """One stretch of speech, cut by the VAD segmenter."""

    samples: np.ndarray
    """float32, 16 kHz mono, -1..1 (pre-roll included)."""
    start_s: float
    """Position of the first sample in the stream (seconds)."""
    end_s: float
    """Position just after the last sample in the stream (seconds)."""
    speech_rms_dbfs: float
    """RMS level of the frames the VAD called speech (dBFS; a full-scale square wave is 0)."""
    pause_before_s: float
    """Silence between the previous segment's last speech and this one's first speech (seconds); for the first
    segment, the time from the start of the stream. 0 when a long stretch of speech was cut in two."""
    speech_end_s: float = 0.0
    """Position where the last speech frame of this segment ends (seconds): "end of speech" for latency."""

    @property
    def duration_s(self) -> float:
        """Length of the audio (seconds)."""
        return len(self.samples) / SAMPLE_RATE


def joined(first: Segment, second: Segment) -> Segment:
    """``first`` and ``second`` as one segment, the pause between them as digital silence (the segmenter keeps no
    audio of a pause beyond its post-roll): a short phrase decoded together with the next one."""
    gap = max(0, int(round((second.start_s - first.end_s) * SAMPLE_RATE)))
    samples = np.concatenate([first.samples, np.zeros(gap, dtype=np.float32), second.samples])
    mean_power = (10.0 ** (first.speech_rms_dbfs / 10.0) + 10.0 ** (second.speech_rms_dbfs / 10.0)) / 2.0
    return Segment(samples=samples, start_s=first.start_s, end_s=first.start_s + len(samples) / SAMPLE_RATE,
                   speech_rms_dbfs=10.0 * float(np.log10(mean_power)), pause_before_s=first.pause_before_s,
                   speech_end_s=second.speech_end_s)

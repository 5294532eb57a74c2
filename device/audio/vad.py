"""The VAD segmenter: cuts a 16 kHz stream into :class:`Segment` objects that hold speech and little else.

Per frame (``frame_ms``, 30 ms by default) a frame counts as *voiced* only if all of these hold:

* webrtcvad (at ``aggressiveness``) calls it speech;
* its RMS level is at least ``level_gate_dbfs`` (quiet breath, far-away sounds);
* its level is at least :data:`SNR_DB` above the noise floor (webrtcvad calls any loud stationary noise — fan,
  white/pink noise — speech). The floor is the quietest smoothed frame level over the last
  :data:`FLOOR_WINDOW_S`; it is frozen while a segment is open, so long fluent speech never raises it; at the
  start of a stream it is ``level_gate_dbfs`` - :data:`SNR_DB` until that window has passed (speech that starts
  with the stream would otherwise set the floor itself and lose its first words);
* it is not impulsive: a click or key press puts most of a frame's energy into a few milliseconds
  (peak/mean energy of 2 ms sub-blocks above :data:`IMPULSE_RATIO`); voiced speech never does.

Voiced frames are also checked for a pitch (:data:`PERIODIC_MIN`): vowels have one, clicks and noise do not. Half
of the run that opens a segment, and :data:`MIN_PERIODIC_MS` of every segment, must be periodic, so fast typing
or a burst of noise that webrtcvad mistakes for speech cannot make a segment on its own.

A segment opens after an unbroken run of :data:`START_RUN_MS` of voiced frames (a click or a burst of typing
cannot open one), and takes ``pre_roll_ms`` of audio from before its first voiced frame. It ends after
``end_silence_ms`` without a voiced frame; up to :data:`POST_ROLL_MS` after the last voiced frame is kept, the rest
of the silence is not. A segment with less than ``min_speech_ms`` of voiced frames (counting only runs of at
least :data:`RUN_MIN_MS`) is dropped, and so is one whose "speech" does not stand :data:`SNR_DB` out from the
quietest frame of its own span (a noise that started suddenly: speech always has pauses, a fan has none). A segment
that reaches the maximum length is cut at its quietest point (in its second half) and the rest carries on as the
next segment. Silence therefore never reaches the model.

While a pause is still shorter than ``end_silence_ms``, :meth:`Segmenter.tentative` offers the segment that will
close if the pause lasts (once it is ``speculate_ms`` and :data:`POST_ROLL_MS` long): exactly the samples the closed
segment will hold, so the recognizer can decode it early and keep the result when the pause does last.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from sttkb.audio import SAMPLE_RATE
from sttkb.audio.levels import SILENCE_DBFS, rms_dbfs, to_int16_bytes
from sttkb.audio.segment import Segment
from sttkb.config.audio import VadSettings

log = logging.getLogger(__name__)

START_RUN_MS = 120
"""Unbroken run of voiced frames that opens a segment (milliseconds): syllables are longer, clicks shorter."""
RUN_MIN_MS = 90
"""Only voiced frames in unbroken runs at least this long count toward ``min_speech_ms`` (milliseconds)."""
POST_ROLL_MS = 240
"""Audio kept after the last voiced frame when a segment ends on silence (milliseconds)."""
SNR_DB = 9.0
"""A voiced frame is at least this much louder than the running noise floor (dB)."""
FLOOR_WINDOW_S = 3.0
"""The noise floor is the quietest smoothed level over this much recent audio (seconds)."""
FLOOR_SMOOTH_FRAMES = 3
"""Frames averaged (in energy) before the floor minimum is taken."""
IMPULSE_SUBBLOCK_MS = 2
"""Sub-block length for the click detector (milliseconds)."""
IMPULSE_RATIO = 10.0
"""A frame whose loudest sub-block has this many times the frame's mean energy is a click, not speech."""
PERIODIC_MIN = 0.5
"""A voiced frame is *periodic* (has a pitch) when its normalized autocorrelation peaks at least this high for a
lag of 2.5-20 ms (50-400 Hz). Measured: 75-85 % of speech frames (espeak, jfk.wav), 2-4 % of pink noise and
keyboard-click frames."""
PITCH_WINDOW = SAMPLE_RATE * 30 // 1000
"""Samples the pitch check looks at (the newest 30 ms, also when frames are 10 or 20 ms)."""
MIN_PERIODIC_MS = 120
"""A segment needs at least this much periodic speech (milliseconds); half of the opening run must be periodic."""


@dataclass
class SegmenterStats:
    """Counters since the segmenter was made."""

    frames: int = 0
    """Frames looked at."""
    voiced_frames: int = 0
    """Frames that counted as speech."""
    segments: int = 0
    """Segments handed out."""
    dropped_short: int = 0
    """Segments dropped for having less than ``min_speech_ms`` of speech (or none above the final noise floor)."""
    cuts_at_max: int = 0
    """Segments cut because they reached the maximum length."""


def impulsiveness(frame: np.ndarray, sub: int) -> float:
    """Energy of the loudest ``sub``-sample block divided by the frame's mean block energy (1 = even)."""
    n = len(frame) // sub * sub
    if n == 0:
        return 1.0
    energy = np.square(frame[:n].reshape(-1, sub), dtype=np.float64).mean(axis=1)
    mean = float(energy.mean())
    return float(energy.max()) / mean if mean > 0 else 1.0


def periodicity(frame: np.ndarray) -> float:
    """Peak normalized autocorrelation of ``frame`` (16 kHz) over lags of 2.5-20 ms (pitch 50-400 Hz): about 0.9
    for a vowel, 0.1-0.3 for noise and clicks."""
    x = frame.astype(np.float64) - float(frame.mean())
    n = len(x)
    hi = min(320, n // 2)
    if hi <= 40:
        return 0.0
    spec = np.fft.rfft(x, 2 * n)
    r = np.fft.irfft(spec.real ** 2 + spec.imag ** 2)[:n]
    if r[0] <= 0:
        return 0.0
    lags = np.arange(40, hi + 1)
    return float(np.max(r[lags] / r[0] * (n / (n - lags))))


def in_runs(flags: list[bool], min_run: int) -> list[bool]:
    """``flags`` with every True that is not part of an unbroken run of at least ``min_run`` set to False."""
    out = [False] * len(flags)
    i = 0
    while i < len(flags):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j < len(flags) and flags[j]:
            j += 1
        if j - i >= min_run:
            out[i:j] = [True] * (j - i)
        i = j
    return out


def quietest_cut(levels_db: list[float], lo: int, hi: int) -> int:
    """Index in ``[lo, hi)`` of the frame whose 3-frame neighbourhood is quietest (the cut goes after it)."""
    energy = np.power(10.0, np.asarray(levels_db, dtype=np.float64) / 10.0)
    smooth = np.convolve(energy, np.ones(3) / 3.0, mode="same")
    lo = max(0, min(lo, len(levels_db) - 1))
    hi = max(lo + 1, min(hi, len(levels_db)))
    return lo + int(np.argmin(smooth[lo:hi]))


class Segmenter:
    """Feed it 16 kHz float32 audio of any chunk size; it returns finished segments as they close.

    ``max_segment_s`` overrides the setting (the recognizer passes the length its encoder window can hold).
    Not thread-safe: one feeder.
    """

    def __init__(self, settings: VadSettings | None = None, *, max_segment_s: float | None = None) -> None:
        self.settings = s = settings or VadSettings()
        self.frame_len = SAMPLE_RATE * s.frame_ms // 1000
        self.frame_s = s.frame_ms / 1000.0
        self._vad = webrtcvad.Vad(s.aggressiveness)
        frames = lambda ms: max(1, int(math.ceil(ms / s.frame_ms)))  # noqa: E731
        self.pre_roll_frames = int(round(s.pre_roll_ms / s.frame_ms))
        self.post_roll_frames = int(round(POST_ROLL_MS / s.frame_ms))
        self.end_silence_frames = frames(s.end_silence_ms)
        # A tentative segment needs the whole post-roll behind the last voiced frame: then it holds exactly the
        # frames the closed one will (closing keeps last voiced + post-roll, at end_silence_ms or at release).
        self.speculate_frames = max(self.post_roll_frames, frames(s.speculate_ms)) if s.speculate_ms else 0
        self.min_speech_frames = int(math.ceil(s.min_speech_ms / s.frame_ms))
        self.start_run = frames(START_RUN_MS)
        self.run_min = frames(RUN_MIN_MS)
        self.min_periodic = frames(MIN_PERIODIC_MS)
        limit = s.max_segment_s if max_segment_s is None else min(max_segment_s, s.max_segment_s)
        self.max_segment_s = limit
        self.max_frames = max(self.start_run + self.pre_roll_frames + 1, int(limit / self.frame_s))
        self._impulse_sub = SAMPLE_RATE * IMPULSE_SUBBLOCK_MS // 1000
        self.stats = SegmenterStats()

        self._pending = np.zeros(0, dtype=np.float32)
        self._recent = np.zeros(0, dtype=np.float32)
        self._frame_index = 0                      # index of the next frame in the stream
        self._floor_energy: deque[float] = deque(maxlen=FLOOR_SMOOTH_FRAMES)
        self._floor_hist: deque[float] = deque(maxlen=max(1, int(FLOOR_WINDOW_S / self.frame_s)))
        # Until the room has been heard, the floor is where the level gate alone decides: someone who starts
        # talking the moment the button goes down must not have their first words taken for the room's noise
        # (the floor would be learned from the speech itself). The prior leaves the window after FLOOR_WINDOW_S.
        self._floor_hist.append(s.level_gate_dbfs - SNR_DB)
        self._idle: deque[tuple[np.ndarray, float, bool, bool]] = deque(maxlen=self.pre_roll_frames + self.start_run)
        # Open segment: frames, their levels and voiced flags; stream index of its first frame.
        self._frames: list[np.ndarray] = []
        self._levels: list[float] = []
        self._voiced: list[bool] = []
        self._periodic: list[bool] = []
        self._first_index = 0
        self._gate_floor = SILENCE_DBFS
        self._trailing_silence = 0
        self._continued = False                    # this segment continues one cut at the maximum length
        self._last_speech_end_s = 0.0
        self._offered: tuple[int, int] | None = None  # (first frame, length) of the last tentative segment

    # -- public ------------------------------------------------------------------------------------------
    @property
    def in_speech(self) -> bool:
        """True while a segment is open."""
        return bool(self._frames)

    @property
    def noise_floor_dbfs(self) -> float:
        """Current noise floor estimate from recent audio (dBFS)."""
        return min(self._floor_hist) if self._floor_hist else SILENCE_DBFS

    @property
    def gate_floor_dbfs(self) -> float:
        """The floor voiced frames must stand out from: frozen at the start of an open segment (dBFS)."""
        return self._gate_floor if self._frames else self.noise_floor_dbfs

    @property
    def position_s(self) -> float:
        """Stream position of the audio consumed so far, in whole frames (seconds)."""
        return self._frame_index * self.frame_s

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Add audio; return the segments that closed because of it (often none)."""
        if self._pending.size:
            samples = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        else:
            samples = np.asarray(samples, dtype=np.float32)
        n_frames = len(samples) // self.frame_len
        out: list[Segment] = []
        for i in range(n_frames):
            out.extend(self._frame(samples[i * self.frame_len:(i + 1) * self.frame_len]))
        self._pending = samples[n_frames * self.frame_len:].copy()
        return out

    def flush(self) -> list[Segment]:
        """End of stream (or the button was released): close the open segment, if it holds enough speech."""
        self._pending = np.zeros(0, dtype=np.float32)
        if not self._frames:
            return []
        last = self._last_voiced()
        return self._close(keep=len(self._frames) if last is None else min(len(self._frames),
                                                                            last + 1 + self.post_roll_frames))

    @property
    def offer_withdrawn(self) -> bool:
        """True when the open segment can no longer close as :meth:`tentative` last offered it: speech came back
        after the offer (or the segment was cut at its maximum length). Meaningful only until a segment closes:
        the caller stops asking once the offered segment, or another, has closed."""
        if self._offered is None or not self._frames:
            return False
        first, keep = self._offered
        return first != self._first_index or len(self._frames) - self._trailing_silence > keep - self.post_roll_frames

    def tentative(self) -> Segment | None:
        """The segment that closes if the current pause lasts, offered once per pause; else None.

        Offered when the open segment has been silent for ``speculate_ms`` (and at least the post-roll) but not yet
        for ``end_silence_ms``. If no voiced frame follows, the segment that :meth:`feed` or :meth:`flush` then
        closes has the same ``start_s``, ``end_s`` and samples; if speech resumes, it is never closed as offered."""
        if (not self._frames or not self.speculate_frames or self._trailing_silence < self.speculate_frames
                or self._trailing_silence >= self.end_silence_frames):
            return None
        keep = len(self._frames) - self._trailing_silence + self.post_roll_frames
        if self._offered == (self._first_index, keep):
            return None
        self._offered = (self._first_index, keep)
        return self._build_segment(keep)

    # -- per frame ---------------------------------------------------------------------------------------
    def _is_voiced(self, frame: np.ndarray, level: float) -> bool:
        s = self.settings
        if level < s.level_gate_dbfs or level < self.gate_floor_dbfs + SNR_DB:
            return False
        if impulsiveness(frame, self._impulse_sub) > IMPULSE_RATIO:
            return False
        return self._vad.is_speech(to_int16_bytes(frame), SAMPLE_RATE)

    def _update_floor(self, level: float) -> None:
        self._floor_energy.append(10.0 ** (level / 10.0))
        mean = sum(self._floor_energy) / len(self._floor_energy)
        self._floor_hist.append(10.0 * math.log10(mean) if mean > 0 else SILENCE_DBFS)

    def _frame(self, frame: np.ndarray) -> list[Segment]:
        level = rms_dbfs(frame)
        voiced = self._is_voiced(frame, level)
        # Pitch needs 30 ms of signal whatever the frame length (a 100 Hz voice has a 10 ms period).
        self._recent = np.concatenate([self._recent, frame])[-PITCH_WINDOW:]
        periodic = voiced and periodicity(self._recent) >= PERIODIC_MIN
        self._update_floor(level)
        self.stats.frames += 1
        self.stats.voiced_frames += voiced
        self._frame_index += 1
        if not self._frames:
            self._idle.append((frame, level, voiced, periodic))
            recent = list(self._idle)[-self.start_run:]
            if (len(recent) == self.start_run and all(item[2] for item in recent)
                    and 2 * sum(item[3] for item in recent) >= self.start_run):
                self._open()
            return []
        self._frames.append(frame)
        self._levels.append(level)
        self._voiced.append(voiced)
        self._periodic.append(periodic)
        self._trailing_silence = 0 if voiced else self._trailing_silence + 1
        if self._trailing_silence >= self.end_silence_frames:
            return self._close(keep=len(self._frames) - self._trailing_silence + self.post_roll_frames)
        if len(self._frames) >= self.max_frames:
            return self._cut()
        return []

    def _open(self) -> None:
        items = list(self._idle)
        first_voiced = len(items) - self.start_run
        self._gate_floor = self.noise_floor_dbfs
        start = max(0, first_voiced - self.pre_roll_frames)
        items = items[start:]
        self._frames = [item[0] for item in items]
        self._levels = [item[1] for item in items]
        self._voiced = [item[2] for item in items]
        self._periodic = [item[3] for item in items]
        self._first_index = self._frame_index - len(items)
        self._trailing_silence = 0
        self._continued = False
        self._idle.clear()

    def _last_voiced(self) -> int | None:
        for i in range(len(self._voiced) - 1, -1, -1):
            if self._voiced[i]:
                return i
        return None

    def _make_segment(self, n: int) -> Segment | None:
        """Close the first ``n`` open frames as a Segment (None if it holds too little speech), counting it."""
        seg = self._build_segment(n)
        if seg is None:
            self.stats.dropped_short += 1
            return None
        self._last_speech_end_s = seg.speech_end_s
        self.stats.segments += 1
        return seg

    def _build_segment(self, n: int) -> Segment | None:
        """A Segment of the first ``n`` open frames, or None if it holds too little speech. Changes nothing."""
        voiced = self._voiced[:n]
        levels = self._levels[:n]
        n_voiced = sum(in_runs(voiced, self.run_min))
        # Re-check against the quietest frame of the segment's own span (from its first voiced frame to the newest
        # frame): a noise that began suddenly looked like speech at first, but it has no pauses.
        first = voiced.index(True) if True in voiced else 0
        floor = min(self._levels[first:]) if self._levels[first:] else SILENCE_DBFS
        standing_out = sum(in_runs([v and lv >= floor + SNR_DB for v, lv in zip(voiced, levels)], self.run_min))
        n_periodic = sum(self._periodic[:n])
        if (n_voiced < max(1, self.min_speech_frames) or standing_out < max(1, self.min_speech_frames)
                or n_periodic < self.min_periodic):
            log.debug("not a segment: %d ms of speech (%d ms above the final floor %.1f dBFS)",
                      n_voiced * self.settings.frame_ms, standing_out * self.settings.frame_ms, floor)
            return None
        first_v = voiced.index(True)
        last_v = n - 1 - voiced[::-1].index(True)
        speech_start_s = (self._first_index + first_v) * self.frame_s
        speech_end_s = (self._first_index + last_v + 1) * self.frame_s
        energy = [10.0 ** (lv / 10.0) for lv, v in zip(levels, voiced) if v]
        speech_dbfs = 10.0 * math.log10(sum(energy) / len(energy))
        pause = 0.0 if self._continued else max(0.0, speech_start_s - self._last_speech_end_s)
        return Segment(samples=np.concatenate(self._frames[:n]), start_s=self._first_index * self.frame_s,
                       end_s=(self._first_index + n) * self.frame_s, speech_rms_dbfs=speech_dbfs,
                       pause_before_s=pause, speech_end_s=speech_end_s)

    def _close(self, keep: int) -> list[Segment]:
        keep = max(0, min(keep, len(self._frames)))
        seg = self._make_segment(keep)
        # Frames after the kept part are silence: they may serve as pre-roll for the next segment.
        self._idle.clear()
        for f, lv in zip(self._frames[keep:], self._levels[keep:]):
            self._idle.append((f, lv, False, False))
        self._frames, self._levels, self._voiced, self._periodic = [], [], [], []
        self._trailing_silence = 0
        self._continued = False
        return [seg] if seg is not None else []

    def _cut(self) -> list[Segment]:
        """The open segment reached the maximum length: send it up to its quietest frame, keep the rest open."""
        n = len(self._frames)
        first_v = self._voiced.index(True) if True in self._voiced else 0
        lo = max(n // 2, first_v + self.min_speech_frames)
        cut = quietest_cut(self._levels, lo, n - 1) + 1
        self.stats.cuts_at_max += 1
        seg = self._make_segment(cut)
        if seg is None:
            # Not speech after all (a noise that started suddenly): close it all and let the floor catch up.
            self._idle.clear()
            self._frames, self._levels, self._voiced, self._periodic = [], [], [], []
            self._trailing_silence = 0
            self._continued = False
            return []
        self._frames, self._levels, self._voiced = self._frames[cut:], self._levels[cut:], self._voiced[cut:]
        self._periodic = self._periodic[cut:]
        self._first_index += cut
        self._continued = seg is not None
        last = self._last_voiced()
        self._trailing_silence = len(self._voiced) if last is None else len(self._voiced) - 1 - last
        if last is None and self._trailing_silence >= self.end_silence_frames:
            self._frames, self._levels, self._voiced, self._periodic = [], [], [], []
        return [seg] if seg is not None else []

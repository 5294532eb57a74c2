"""Beam search where there is time (``[asr] beam_when_idle``): which phrases get a second, better decode.

Greedy decoding is what the user waits for; beam search gives better words for more time (whisper.cpp tiny.en q8_0,
audio_ctx 768, 2 threads: 0.29 s per utterance and WER 6.1 % greedy, 0.56 s and 5.3 % with beam 5, measured for issue
13; the encoder, the same for both and a fixed cost per call at a fixed audio_ctx, is most of a greedy decode). A
phrase that a pause ends while the button is still held is not waited for — the user waits at the release — and the
recognizer idles until the next phrase ends. Its greedy text is already in hand (usually from the decode during the
pause, ``[vad] speculate_ms``), so the chain may decode it once more with beam search and type that instead: only if
the beam decode is expected to end before the recognizer is needed again, and abandoned (the greedy text stands) the
moment anything else needs it — the release, the next phrase's pause. whisper.cpp looks at the abandon request after
the encoder and after each decoder step, so the release waits at most for the rest of one encoder pass: less than a
greedy decode.

When is the recognizer needed again? The next phrase cannot end sooner than :func:`next_phrase_end_s` after the
close (0.55 s with the defaults: too soon for a beam decode on a Pi or a busy 2-core machine), but people do not
talk that way: :class:`Horizons` remembers how long after a pause-closed phrase the recognizer was needed in this
user's recent dictation (the next phrase's pause, or the release) and takes the shortest — a user who often lets go
just after a pause gets no beam decodes.

:func:`decide` is the rule, :func:`budget_s` the time it is given, :class:`BeamTimer` the estimate.
"""

from __future__ import annotations

from collections import deque

from sttkb.audio.vad import POST_ROLL_MS, START_RUN_MS
from sttkb.config.audio import VadSettings

BEAM = "beam"
""":func:`decide`'s answer when the phrase gets a beam decode; every other answer says why its greedy text stands."""

START_RATIO = 2.0
"""Beam decode time / greedy decode time of the same segment assumed before any beam decode was measured (measured
on the development machine: 1.9 in issue 13, a median of 1.3 per segment of ``sttkb bench``'s speech)."""
RECENT = 5
"""Beam decodes the estimate averages; pause-to-need times the horizon is the shortest of."""


def decide(*, enabled: bool, beam_size: int, closed_by_pause: bool, awaited_at_pause: bool, others_waiting: bool,
           greedy_heard: bool, estimate_s: float, budget_s: float) -> str:
    """Decode this phrase once more with beam search? :data:`BEAM`, or why not.

    ``enabled``: ``[asr] beam_when_idle``; ``beam_size``: ``[asr] beam_size`` (above 1 every decode is beam already);
    ``closed_by_pause``: a pause ended the phrase while capture goes on (False: the release, the stream's end, the
    hands-free stop — the user waits for it now — or a batch run); ``awaited_at_pause``: the user waits for each
    phrase when its pause ends it (hands-free listening: only silence ends the dictation); ``others_waiting``:
    anything else is waiting for the recognizer; ``greedy_heard``: the greedy decode gave text (beam never adds text
    where greedy heard none: silence and noise stay nothing); ``estimate_s``: the beam decode's expected time;
    ``budget_s``: the time until the recognizer is expected to be needed again (:func:`budget_s`)."""
    if not enabled:
        return "off"
    if beam_size > 1:
        return "beam everywhere"
    if not closed_by_pause:
        return "awaited now"
    if awaited_at_pause:
        return "awaited at the pause"
    if others_waiting:
        return "busy"
    if not greedy_heard:
        return "nothing heard"
    if estimate_s > budget_s:
        return "no time"
    return BEAM


def next_phrase_end_s(vad: VadSettings) -> float:
    """The soonest the next phrase can end after a pause closed the last one (seconds): its speech must open a
    segment and last ``min_speech_ms``, then its pause must reach ``speculate_ms`` (the chain decodes it then) —
    ``end_silence_ms`` without speculation."""
    speech = max(START_RUN_MS, vad.min_speech_ms)
    pause = min(max(vad.speculate_ms, POST_ROLL_MS), vad.end_silence_ms) if vad.speculate_ms else vad.end_silence_ms
    return (speech + pause) / 1000


def budget_s(closed_at: float, now: float, horizon_s: float) -> float:
    """The time a beam decode starting ``now`` has (seconds): the recognizer is expected to be needed again
    ``horizon_s`` after the pause closed this phrase (``closed_at``; same clock as ``now``)."""
    return closed_at + horizon_s - now


class Horizons:
    """How long after a phrase that a pause ended the recognizer was needed again (the next phrase's pause, a
    closed segment, the release), in the last :data:`RECENT` cases: the shortest is the horizon; before any was
    seen, the soonest it can be (:func:`next_phrase_end_s`)."""

    def __init__(self, recent: int = RECENT) -> None:
        self._seen: deque[float] = deque(maxlen=recent)

    def observe(self, seconds: float) -> None:
        self._seen.append(max(0.0, seconds))

    def horizon_s(self, floor_s: float) -> float:
        return min(self._seen) if self._seen else floor_s


class BeamTimer:
    """How long a beam decode of a segment takes, learned from this engine's own decodes: as a multiple of the
    greedy decode of the same segment, timed just before. (Per audio second would be wrong: at a fixed
    ``audio_ctx`` the encoder costs the same for a 1 s and a 10 s segment. The greedy time of the same segment also
    carries the machine's load at the moment.) The mean of the last :data:`RECENT` ratios, :data:`START_RATIO`
    until one was measured; a decode abandoned later than its estimate raises it."""

    def __init__(self, start: float = START_RATIO, recent: int = RECENT) -> None:
        self.start = start
        self._ratios: deque[float] = deque(maxlen=recent)

    @property
    def ratio(self) -> float:
        return sum(self._ratios) / len(self._ratios) if self._ratios else self.start

    def estimate(self, greedy_s: float) -> float:
        """Expected seconds of a beam decode of a segment whose greedy decode took ``greedy_s``."""
        return greedy_s * self.ratio

    def learn(self, greedy_s: float, beam_s: float) -> None:
        """A finished beam decode: ``beam_s`` for a segment that took ``greedy_s`` greedy."""
        if greedy_s > 0:
            self._ratios.append(beam_s / greedy_s)

    def learn_at_least(self, greedy_s: float, beam_s: float) -> None:
        """An abandoned beam decode had run ``beam_s`` without finishing: if that is already more than expected,
        the estimate was low."""
        if greedy_s > 0 and beam_s / greedy_s > self.ratio:
            self._ratios.append(beam_s / greedy_s)

"""The chain: audio source → VAD segmenter → whisper.cpp → text pipeline, yielding :class:`TextPiece` objects.

Streaming (:meth:`Transcriber.stream`): a capture thread reads the source and runs the segmenter; each segment
is handed to the caller's thread and transcribed while audio keeps arriving, so when speech ends only the last
segment is left to decode. With ``[asr] beam_when_idle``, a phrase a pause ends while the button is held may be
decoded once more with beam search while the recognizer would idle (:mod:`sttkb.asr.idle_beam`). Batch
(:meth:`Transcriber.batch`): all audio first, then every segment — what a recorder that transcribes at button
release does; kept for the benchmark.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from sttkb.asr import idle_beam
from sttkb.asr.engine import AsrResult, WhisperEngine
from sttkb.asr.guard import without_repeated_tail
from sttkb.asr.errors import DecodeAborted
from sttkb.asr.prompt import build_prompt
from sttkb.audio.segment import Segment, joined
from sttkb.audio.sources import AudioSource
from sttkb.audio.vad import Segmenter
from sttkb.config import Config
from sttkb.text.boundary import split_after, words_after
from sttkb.text.hallucination import without_leading_phrase

log = logging.getLogger(__name__)

_END = object()
_QUIET = object()   # from the capture thread: hold_sentence_end_s of silence since the last segment's speech
_LAST = object()    # marks the segment the stream's end closed
QUIET_S = 2.0       # the same, when held sentence ends are off but short phrases wait (seconds)
SURE_END_P = 0.75
"""A phrase whose closing ". ! ?" Whisper wrote with at least this probability probably did end a sentence: while that
mark is held, the next phrase is decoded after the text so far as it stands (Whisper decides from its audio whether
a sentence starts); a less sure mark is replaced by a comma in that context (the next phrase reads as the rest of the
sentence unless its audio says otherwise). Measured: scripts/measure_sentence_ends.py, docs/benchmarks.md."""
SURE_CONTEXT = "bare"
"""What the next phrase's context ends with after a sure mark: "bare" (the text without the mark, as above) or "mark"
(the mark itself). "mark" typed every sentence end of the bench's voices set but broke sentences at thinking pauses
Whisper was sure of: kept for the measuring script."""
PUNCTUATED_CONTEXT = "Hello, welcome."
"""Put before a context that has no punctuation at all: Whisper copies its context's style, and after text with no
punctuation it stops writing any, for good (measured on `sttkb bench --set split`: see docs/benchmarks.md). The user
never said it: a decode that writes it out again at its start loses those words."""


@dataclass(frozen=True)
class _Pause:
    """From the capture thread: a pause began; ``segment`` is what closes if it lasts."""

    segment: Segment
    number: int = 0
    """Pauses are numbered from 1 in the order offered; the capture thread withdraws them by number."""
    at: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the pause was offered."""


@dataclass(frozen=True)
class _Read:
    """A phrase whisper.cpp has read ([text] wait_for_next_phrase): kept untyped until the next one is heard, then
    typed; the phrases typed last are heard again before the next decode's new audio."""

    seg: Segment
    result: AsrResult
    """Whisper's reading of it (``text``: its own words only); once typed, the reading it was typed from."""
    closed_at: float
    context: str = ""
    """Once typed: the text typed before it (held mark included), the context of a decode that starts with it."""


def _same_audio(a: Segment, b: Segment) -> bool:
    return a.start_s == b.start_s and a.end_s == b.end_s and len(a.samples) == len(b.samples)


@dataclass(frozen=True)
class TextPiece:
    """The text of one segment, ready to type, with its timings."""

    text: str
    """The exact string to append (joining space or paragraph break included); "" when nothing is to be typed."""
    raw_text: str
    """whisper.cpp's text after the repetition guard, before the text pipeline."""
    segment_start_s: float
    """Stream position where the segment's audio starts (seconds)."""
    segment_end_s: float | None
    """Stream position where the segment's audio ends (seconds)."""
    speech_end_s: float | None
    """Stream position where its last speech ends (seconds); None for a held sentence end typed after a long
    silence (it belongs to no speech that just ended)."""
    asr_s: float
    """Wall time whisper.cpp spent on it (seconds)."""
    closed_at: float
    """``time.monotonic()`` when the segmenter closed the segment."""
    ready_at: float
    """``time.monotonic()`` when the text was ready."""
    dropped_reason: str | None = None
    """Why the recognizer produced nothing ("loop", "empty"), or None."""
    sentence_end: bool = False
    """This piece only types a sentence end the text pipeline held back (no segment of its own)."""
    beam: bool = False
    """The text is from a beam decode (``[asr] beam_when_idle``); ``asr_s`` includes the greedy one before it."""
    after_silence: bool = False
    """Typed after a silence of ``[text] hold_sentence_end_s`` rather than when its speech ended: a phrase that
    waited for the next one (``[text] wait_for_next_phrase``) and none came. Its speech ended at ``speech_end_s``."""


@dataclass
class ChainStats:
    """Counters of one stream or batch run."""

    segments: int = 0
    pieces_with_text: int = 0
    audio_s: float = 0.0
    """Audio read from the source (seconds)."""
    speech_s: float = 0.0
    """Audio sent to the recognizer (seconds)."""
    asr_s: float = 0.0
    overflows: int = 0
    """Capture overflows reported by the source (events)."""
    max_backlog: int = 0
    """Most segments waiting for the recognizer at once."""
    source_ended_at: float | None = None
    """``time.monotonic()`` when the source's last chunk was read."""
    segments_list: list[Segment] = field(default_factory=list)
    early_decodes: int = 0
    """Segments decoded while their pause was still going on (speculatively: ``[vad] speculate_ms``)."""
    early_used: int = 0
    """Of those, the ones whose pause lasted, so the early result was typed (no decode after the segment ended)."""
    early_aborted: int = 0
    """Early decodes stopped part way because speech came back before they finished (their pause did not last)."""
    joined_short: int = 0
    """Short phrases held to be decoded with the next one (``[vad] join_short_s``)."""
    beam_decodes: int = 0
    """Beam decodes started where there was time (``[asr] beam_when_idle``)."""
    beam_used: int = 0
    """Of those, the ones whose text was typed (the others: abandoned, or dropped by a guard; greedy text typed)."""
    beam_abandoned: int = 0
    """Of those, the ones abandoned because something else needed the recognizer."""
    beam_no_time: int = 0
    """Phrases that could have had a beam decode but whose estimate did not fit the time there was."""


class Transcriber:
    """Turns an audio source into typed-ready text pieces with one loaded model.

    ``engine`` and ``pipeline`` may be given (tests, the daemon reusing a loaded model); otherwise they are built
    from ``config`` and ``model_path``.
    """

    def __init__(self, config: Config, model_path: str | Path | None = None, *, engine: WhisperEngine | None = None,
                 pipeline=None, warm_up: bool = True) -> None:
        self.config = config
        if engine is None:
            if model_path is None:
                raise ValueError("give a model_path or an engine")
            engine = WhisperEngine(model_path, config.asr)
        self.engine = engine
        if pipeline is None:
            from sttkb.text.pipeline import TextPipeline
            pipeline = TextPipeline(config.text)
        self.pipeline = pipeline
        if warm_up and not getattr(engine, "warmed_up", True):
            engine.warm_up()
        self.max_segment_s = min(config.vad.max_segment_s, engine.max_segment_s)
        if self.max_segment_s < config.vad.max_segment_s:
            log.info("segments capped at %.1f s to fit the encoder window (asr.audio_ctx %d)", self.max_segment_s,
                     config.asr.audio_ctx)
        self.stats = ChainStats()
        self._history = ""
        self._held_sure = False
        """The mark the pipeline holds (if any) is one Whisper was sure of (:data:`SURE_END_P`)."""
        self._previous: tuple[Segment, str, str] | None = None
        """The last phrase that typed words: its segment, its context (prompt) and Whisper's text of it."""
        self._pending: _Read | None = None
        """``[text] wait_for_next_phrase``: the phrase read last, not typed yet."""
        self._behind: list[_Read] = []
        """``[text] wait_for_next_phrase``: the phrases typed last (oldest first), heard again before the next."""
        self.beam_timer = idle_beam.BeamTimer()
        """How long this engine takes for a beam decode (learned; kept from one stream to the next)."""
        self.beam_horizons = idle_beam.Horizons()
        """How soon after a pause-closed phrase the recognizer was needed again (learned; kept likewise)."""
        self._awaited_at_pause = True    # set by each stream()

    def new_segmenter(self) -> Segmenter:
        return Segmenter(self.config.vad, max_segment_s=self.max_segment_s)

    # -- one segment ---------------------------------------------------------------------------------------
    @property
    def reads_ahead(self) -> bool:
        """``[text] wait_for_next_phrase``: each phrase is typed when the next one has been heard with it."""
        return self.config.text.wait_for_next_phrase

    @property
    def quiet_s(self) -> float:
        """The silence after which nothing waits any longer for the next phrase: a held sentence end is typed, a
        short phrase is decoded alone (seconds)."""
        return self.config.text.hold_sentence_end_s or QUIET_S

    def _one_train(self, before: Segment, after: Segment) -> bool:
        """``after`` follows ``before`` within :attr:`quiet_s` (the same train of thought): one may wait for the
        other, and they may be decoded together."""
        return after.start_s - before.end_s <= self.quiet_s

    def _held(self) -> str:
        """The sentence end the text pipeline holds back ("" when none)."""
        return getattr(self.pipeline, "held", "")

    def _prompt(self, history: str | None = None) -> str:
        """The context for the next phrase: ``history`` as given, or the text so far; a held closing mark Whisper was
        not sure of (:data:`SURE_END_P`) is replaced by a comma there (decode the next phrase as the rest of the
        sentence), a sure one is left out."""
        if history is None:
            history = self._history
            if self._held():
                if not self._held_sure:
                    history = history.rstrip().rstrip(".!?") + ","
                elif SURE_CONTEXT == "mark":
                    history = history.rstrip() + self.pipeline.held
        prompt = build_prompt(self.config.asr.vocabulary, history, self.config.asr.context_chars)
        if prompt and not any(ch in prompt for ch in ".,;:!?"):
            prompt = f"{PUNCTUATED_CONTEXT} {prompt}"
        return prompt

    def _recognize(self, seg: Segment, *, beam_size: int | None = None,
                   abort: Callable[[], bool] | None = None) -> tuple[AsrResult, bool | None, str | None]:
        """Decode ``seg``: (the result, whether it continues the sentence before it (None: the text pipeline's own
        rule decides), the phrase read before it read again (None: not read again; :meth:`_read_ahead`)).

        With ``[text] hold_sentence_end_s`` and ``decode_across_pause`` on, a phrase that follows the last one
        within that pause is decoded together with it, from the same context, so Whisper hears both sides of the
        pause (as on a whole recording): what it wrote at the seam decides whether the sentence ended, and only the
        new words are used (the last phrase's words are typed already; a sentence end Whisper now puts at the seam
        is typed before the new words). If the last phrase cannot be found in that text, ``seg`` is decoded alone
        with the text so far as its context (:meth:`_prompt`).

        ``beam_size``: this decode with beam search; None: the engine's own decoding. ``abort``: the decode is
        abandoned (:class:`DecodeAborted`) once ``abort()`` says so."""
        def decode(x: Segment, prompt: str) -> AsrResult:
            if beam_size is None and abort is None:
                result = self.engine.transcribe(x, prompt)
            else:
                result = self.engine.recognize(x, prompt, beam_size=beam_size, abort=abort)
            if prompt.startswith(PUNCTUATED_CONTEXT) and result.text:
                text = without_leading_phrase(result.text, PUNCTUATED_CONTEXT)
                if text != result.text:
                    log.info("whisper.cpp wrote out the context's lead-in: dropped")
                    result = replace(result, text=text)
            return result

        if self.reads_ahead:
            def decode_to_its_end(x: Segment, prompt: str) -> AsrResult:
                # Whisper often says the phrase at the end of a window twice; read ahead, that phrase is the one
                # typed next, and its doubled reading would also mislead the cut when it is read again
                result = decode(x, prompt)
                return replace(result, text=without_repeated_tail(result.text)) if result.text else result
            return self._read_ahead(seg, decode_to_its_end)
        across = self.config.text.hold_sentence_end_s > 0 and self.config.text.decode_across_pause
        previous = self._previous if across else None
        if previous is not None and self._one_train(previous[0], seg):
            both = joined(previous[0], seg)
            if both.duration_s <= self.max_segment_s:
                result = decode(both, previous[1])
                seam = split_after(previous[2], result.text) if result.text else None
                if seam is not None:
                    rest = seam.rest
                    ended = self._history.rstrip()[-1:] in (".", "!", "?")
                    if seam.mark and not self._held() and not ended:
                        rest = seam.mark + " " + rest      # Whisper heard a sentence end it had not written
                    return replace(result, text=rest), seam.continues, None
        return decode(seg, self._prompt()), None, None

    def _read_ahead(self, seg: Segment, decode: Callable[[Segment, str], AsrResult]
                    ) -> tuple[AsrResult, None, str | None]:
        """``[text] wait_for_next_phrase``: decode ``seg`` after the phrase waiting to be typed and as many of the
        phrases typed just before it as fit the encoder window (no pause longer than :attr:`quiet_s` inside), from
        the text typed before the first of them: Whisper reads the waiting phrase with the speech on both sides of
        its pauses. The words of the phrases typed already are cut off (:func:`words_after`: however Whisper heard
        them this time), then the waiting phrase's words (as it was read before) from ``seg``'s.

        Returns (``seg``'s own reading, None, the waiting phrase read again). With no phrase waiting, a pause too
        long between them, both too long for the window, or the decode dropped by a guard, ``seg`` is decoded alone
        and the waiting phrase keeps its reading (None)."""
        pending = self._pending
        alone = pending is None or not self._one_train(pending.seg, seg)
        audio = seg if alone else joined(pending.seg, seg)
        if alone or audio.duration_s > self.max_segment_s:
            return decode(seg, self._prompt()), None, None
        heard = [*self._behind, pending]
        first = len(heard) - 1
        while first > 0 and self._one_train(heard[first - 1].seg, heard[first].seg):
            longer = joined(heard[first - 1].seg, audio)
            if longer.duration_s > self.max_segment_s:
                break
            first, audio = first - 1, longer
        context = heard[first].context if first < len(heard) - 1 else self._history + self._held()
        result = decode(audio, self._prompt(context))
        if not result.text or result.dropped_reason is not None:
            log.debug("the decode across the pause was dropped (%s): the phrase alone",
                      result.dropped_reason or "empty")
            return decode(seg, self._prompt()), None, None
        known = [w for read in heard[first:-1] for w in read.result.text.split()]
        rest = words_after(result.text.split(), known)
        earlier = pending.result.text.split()
        mine = words_after(rest, earlier)
        again = rest[:len(rest) - len(mine)]
        if first == len(heard) - 1 and again and earlier and again[0][1:] == earlier[0][1:] \
                and again[0][:1].lower() == earlier[0][:1].lower():
            # the decode starts with the waiting phrase, so Whisper began it as a sentence: the case its first word
            # had when it was read after the phrase before it stands
            again[0] = earlier[0]
        return replace(result, text=" ".join(mine)), None, " ".join(again)

    def _held_mark(self, last: TextPiece | None, *, after_silence: bool = False) -> TextPiece | None:
        """A piece typing the sentence end the pipeline holds back (at the stream's end, or after a silence of
        ``[text] hold_sentence_end_s``); None when nothing is held."""
        flush = getattr(self.pipeline, "flush", None)
        text = flush() if flush else ""
        if not text:
            return None
        self._history = (self._history + text)[-2000:]
        self._previous = None
        now = time.monotonic()
        start = last.segment_start_s if last else 0.0
        end = None if after_silence or last is None else last.segment_end_s
        speech_end = None if after_silence or last is None else last.speech_end_s
        return TextPiece(text=text, raw_text="", segment_start_s=start, segment_end_s=end, speech_end_s=speech_end,
                         asr_s=0.0, closed_at=now, ready_at=now, sentence_end=True)

    def _context_key(self) -> tuple:
        """What :meth:`_recognize` would decode ``seg`` with now (an early result is used only if it matches)."""
        previous = self._previous[0].start_s if self._previous else None
        pending = self._pending.seg.start_s if self._pending else None
        behind = tuple(read.seg.start_s for read in self._behind)
        return (self._history, previous, self._held(), self._held_sure, pending, behind)

    def _transcribe(self, seg: Segment, is_first: bool, closed_at: float,
                    early: tuple[tuple, tuple[AsrResult, bool | None, str | None]] | None = None, *,
                    busy: Callable[[], bool] | None = None) -> TextPiece:
        """Decode ``seg`` (or take ``early``: :meth:`_recognize`'s answer for the same samples in the same context,
        decoded while its pause was still going on) and run it through the text pipeline.

        ``busy``: given when a pause closed ``seg`` while capture goes on; says whether anything else waits for the
        recognizer. Then ``seg`` may be decoded once more with beam search (:meth:`_beam`)."""
        if early is not None and early[0] == self._context_key():
            result, continues, again = early[1]
            self.stats.early_used += 1
        else:
            result, continues, again = self._recognize(seg)
        greedy_s, beamed = result.asr_s, False
        better, beam_s = self._beam(seg, result, closed_at, busy)
        if better is not None:
            result, continues, again = better
            beamed = True
        result = replace(result, asr_s=greedy_s + beam_s)
        self.stats.segments += 1
        self.stats.speech_s += seg.duration_s
        self.stats.asr_s += result.asr_s
        self.stats.segments_list.append(seg)
        if not self.reads_ahead:
            return self._typed(seg, result, continues, is_first, closed_at, beamed)
        pending = self._pending
        self._pending = _Read(seg, result, closed_at) if result.text and result.dropped_reason is None else None
        if pending is None:               # nothing to type yet: this phrase waits for the next one
            return TextPiece(text="", raw_text=result.text, segment_start_s=seg.start_s, segment_end_s=seg.end_s,
                             speech_end_s=seg.speech_end_s, asr_s=result.asr_s, closed_at=closed_at,
                             ready_at=time.monotonic(), dropped_reason=result.dropped_reason, beam=beamed)
        read = replace(pending.result, text=pending.result.text if again is None else again, asr_s=result.asr_s)
        return self._type_read(replace(pending, result=read), is_first, beamed=beamed)

    def _type_read(self, read: _Read, is_first: bool, *, beamed: bool = False,
                   after_silence: bool = False) -> TextPiece:
        """Type a phrase read ahead (``[text] wait_for_next_phrase``) and remember it to be heard before the next."""
        context = self._history + self._held()
        piece = self._typed(read.seg, read.result, None, is_first, read.closed_at, beamed, after_silence=after_silence)
        if not piece.text:
            self._behind = []             # (not heard again: its audio would come back into the text)
            return piece
        self._behind = [*self._behind, replace(read, context=context)]
        while self._behind[-1].seg.end_s - self._behind[0].seg.start_s > self.max_segment_s:
            self._behind.pop(0)
        return piece

    def _flush_read(self, is_first: bool, *, after_silence: bool) -> TextPiece | None:
        """The phrase waiting for the next one typed as it was read (no next phrase came); None when none waits."""
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        piece = self._type_read(pending, is_first, after_silence=after_silence)
        if after_silence:
            self._behind = []             # what comes after a long pause is not read with what came before
        return piece

    def _typed(self, seg: Segment, result: AsrResult, continues: bool | None, is_first: bool, closed_at: float,
               beamed: bool = False, *, after_silence: bool = False) -> TextPiece:
        """``result`` (Whisper's reading of ``seg``) through the text pipeline: the piece to type."""
        before = self._history
        text = self.pipeline.process(result.text, pause_before_s=seg.pause_before_s,
                                     speech_dbfs=seg.speech_rms_dbfs, is_first=is_first,
                                     continues=continues) if result.text else ""
        # The context of what comes next is the text as typed (the held mark as decided), not Whisper's raw text:
        # Whisper copies its context's style, and "Americans. ask not" would teach it lower-case sentences.
        typed_mark = text[:1] if text[:1] in (".", "!", "?") else ""      # a held or a seam's sentence end
        self._history = (before + text)[-2000:]
        if text:                          # (a dropped phrase leaves the mark held before it as it was)
            self._held_sure = result.end_mark_p is not None and result.end_mark_p >= SURE_END_P
        # The next phrase may be decoded together with this one, from this one's context; not across a dropped
        # phrase (its audio would come back into the text).
        self._previous = (seg, self._prompt(before + typed_mark), result.text) if text else None
        self.stats.pieces_with_text += bool(text)
        return TextPiece(text=text, raw_text=result.text, segment_start_s=seg.start_s, segment_end_s=seg.end_s,
                         speech_end_s=seg.speech_end_s, asr_s=result.asr_s, closed_at=closed_at,
                         ready_at=time.monotonic(), dropped_reason=result.dropped_reason, beam=beamed,
                         after_silence=after_silence)

    def _beam(self, seg: Segment, greedy: AsrResult, closed_at: float,
              busy: Callable[[], bool] | None) -> tuple[tuple[AsrResult, bool | None, str | None] | None, float]:
        """``seg`` decoded once more with beam search, if :func:`sttkb.asr.idle_beam.decide` says there is time:
        (:meth:`_recognize`'s answer, or None when the greedy ``greedy`` stands; seconds spent on the beam decode).

        The beam decode is abandoned the moment ``busy()`` says something else needs the recognizer, and its text
        is not used if a guard dropped it (loop, runaway, no speech): the greedy text, which passed the same guards,
        stands."""
        asr = self.config.asr
        if not asr.beam_when_idle:
            return None, 0.0
        estimate = self.beam_timer.estimate(greedy.asr_s)
        horizon = self.beam_horizons.horizon_s(idle_beam.next_phrase_end_s(self.config.vad))
        budget = idle_beam.budget_s(closed_at, time.monotonic(), horizon)
        verdict = idle_beam.decide(
            enabled=True, beam_size=asr.beam_size, closed_by_pause=busy is not None,
            awaited_at_pause=self._awaited_at_pause, others_waiting=busy is None or busy(),
            greedy_heard=bool(greedy.text) and greedy.dropped_reason is None, estimate_s=estimate,
            budget_s=budget)
        if verdict != idle_beam.BEAM:
            if verdict == "no time":
                self.stats.beam_no_time += 1
                log.debug("greedy: a beam decode would take %.2f s, there are %.2f s", estimate, budget)
            return None, 0.0
        self.stats.beam_decodes += 1
        try:
            answer = self._recognize(seg, beam_size=asr.idle_beam_size, abort=busy)
        except DecodeAborted as e:
            self.stats.beam_abandoned += 1
            self.beam_timer.learn_at_least(greedy.asr_s, e.spent_s)
            log.debug("beam decode abandoned after %.2f s (expected %.2f s): the greedy text stands", e.spent_s,
                      estimate)
            return None, e.spent_s
        except Exception as e:   # whisper.cpp failed on the beam decode: the greedy text is there, nothing is lost
            log.warning("a beam decode failed (%s): the greedy text stands", e)
            log.debug("beam decode failure", exc_info=True)
            return None, 0.0
        result = answer[0]
        self.beam_timer.learn(greedy.asr_s, result.asr_s)
        log.debug("beam decode %.2f s (expected %.2f s, greedy %.2f s)", result.asr_s, estimate, greedy.asr_s)
        if not result.text or result.dropped_reason is not None:
            return None, result.asr_s
        self.stats.beam_used += 1
        return answer, result.asr_s

    def _reset(self) -> None:
        self.stats = ChainStats()
        self._history = ""
        self._held_sure = False
        self._previous = None
        self._pending = None
        self._behind = []
        self.pipeline.reset()

    # -- streaming -----------------------------------------------------------------------------------------
    def stream(self, source: AudioSource, *, awaited_at_pause: bool = False) -> Iterator[TextPiece]:
        """Yield a piece per segment as soon as it is transcribed, while capture goes on in its own thread.

        Closing the generator (or an error) stops the source. The source's end (file end, button release via
        ``source.stop()``) closes the last segment.

        ``awaited_at_pause``: the text of each phrase is awaited as soon as a pause ends it — hands-free listening
        (only silence ends the dictation), a file read faster than real time — so no phrase waits for a beam
        decode (``[asr] beam_when_idle`` is for a held button, whose release is when the user waits).
        """
        self._reset()
        self._awaited_at_pause = awaited_at_pause
        segmenter = self.new_segmenter()
        segments: queue.Queue = queue.Queue()
        stop = threading.Event()
        withdrawn = [0]   # the number of the last pause speech came back from (written by the capture thread only)

        # After this much silence a held sentence end is typed and a short phrase waiting for company is decoded.
        holding = self.config.text.hold_sentence_end_s or self.config.vad.join_short_s or self.reads_ahead
        quiet_s = self.quiet_s if holding else 0.0

        def capture() -> None:
            quiet_since = None           # stream time the last closed segment's speech ended
            offered = 0                  # the number of the last pause offered
            watching = False             # whether that pause may still close as offered
            try:
                for chunk in source.chunks():
                    self.stats.audio_s += len(chunk) / 16000
                    for seg in segmenter.feed(chunk):
                        segments.put((seg, time.monotonic()))
                        quiet_since = seg.speech_end_s
                        watching = False
                    if watching and segmenter.offer_withdrawn:
                        withdrawn[0] = offered   # speech came back: an early decode of it is wasted work
                        watching = False
                    if (quiet_s and quiet_since is not None and not segmenter.in_speech
                            and segmenter.position_s - quiet_since >= quiet_s):
                        segments.put(_QUIET)
                        quiet_since = None
                    pending = segmenter.tentative()
                    if pending is not None:
                        offered += 1
                        watching = True
                        segments.put(_Pause(pending, offered))
                    if stop.is_set():
                        break
                self.stats.source_ended_at = time.monotonic()
                for seg in segmenter.flush():
                    segments.put((seg, time.monotonic(), _LAST))
                segments.put(_END)
            except BaseException as e:  # handed to the consumer, raised there
                segments.put(e)

        thread = threading.Thread(target=capture, name="sttkb-capture", daemon=True)
        thread.start()

        def items() -> Iterator[object]:
            while True:
                item = segments.get()
                if isinstance(item, BaseException):
                    raise item
                if not isinstance(item, _Pause):
                    self.stats.max_backlog = max(self.stats.max_backlog, segments.qsize() + 1)
                yield item
                if item is _END:
                    return

        try:
            yield from self._decode_all(items(), idle=segments.empty, capturing=True,
                                        withdrawn=lambda pause: withdrawn[0] >= pause.number)
        finally:
            stop.set()
            source.stop()
            thread.join(timeout=5.0)
            self.stats.overflows = source.overflows

    def _decode_all(self, items: Iterator[object], idle: Callable[[], bool], capturing: bool = False,
                    withdrawn: Callable[[_Pause], bool] | None = None) -> Iterator[TextPiece]:
        """Closed segments (and the capture's other news) in, text pieces out, in speech order.

        Items: ``(segment, closed_at)`` or ``(segment, closed_at, _LAST)`` for the one the stream's end closed;
        ``_Pause(segment)``: a pause began (decode it early if ``idle()``, i.e. nothing closed is waiting);
        ``_QUIET``: a long silence (type what is held); ``_END``. ``capturing``: the items come while capture goes
        on (streaming), so a segment a pause closed may get a beam decode while ``idle()`` (:meth:`_beam`).
        ``withdrawn(pause)``: whether speech came back after ``pause`` (its early decode stops part way).
        """
        busy = (lambda: not idle()) if capturing else None
        join_short_s = 0.0 if self.reads_ahead else self.config.vad.join_short_s   # (every phrase waits then)
        first = True
        last: TextPiece | None = None
        paused_at: float | None = None   # when a pause last closed a segment while capture went on
        early: tuple[Segment, tuple, tuple] | None = None   # decoded during the pause: (segment, context, answer)
        waiting: tuple[Segment, float, tuple[str, AsrResult] | None] | None = None  # a short phrase, held

        def decode(seg: Segment, closed_at: float, result: tuple[str, AsrResult] | None, *,
                   by_pause: bool = False) -> TextPiece:
            """``by_pause``: a pause closed ``seg`` while capture goes on, and nothing else is in hand."""
            nonlocal first, last
            piece = self._transcribe(seg, first, closed_at, result, busy=busy if by_pause else None)
            first = first and not piece.text
            last = piece
            return piece

        def flush_read(after_silence: bool) -> Iterator[TextPiece]:
            """The phrase waiting for the next one (``[text] wait_for_next_phrase``), typed as read."""
            nonlocal first, last
            piece = self._flush_read(first, after_silence=after_silence)
            if piece is not None:
                first = first and not piece.text
                last = piece
                yield piece

        def with_waiting(seg: Segment) -> Segment:
            """``seg`` after the short phrase that waits for it, when both fit the encoder window."""
            if waiting is None:
                return seg
            if not self._one_train(waiting[0], seg):
                return seg
            both = joined(waiting[0], seg)
            return both if both.duration_s <= self.max_segment_s else seg

        for item in items:
            if paused_at is not None and item is not _QUIET:
                # the recognizer is needed again (the next phrase's pause or segment, the release): how soon
                if isinstance(item, _Pause):
                    needed_at = item.at
                elif item is _END:
                    needed_at = self.stats.source_ended_at or time.monotonic()
                else:
                    needed_at = item[1]           # type: ignore[index]
                self.beam_horizons.observe(needed_at - paused_at)
                paused_at = None
            if item is _END or item is _QUIET:
                if waiting is not None:           # no next phrase to join: the short one goes alone
                    yield decode(*waiting, by_pause=item is _QUIET)
                    waiting = None
                yield from flush_read(after_silence=item is _QUIET)
                held = self._held_mark(last, after_silence=item is _QUIET)
                if held is not None:
                    yield held
                if item is _END:
                    return
                continue
            if isinstance(item, _Pause):
                # A pause has begun. Decode its segment now, while the user is silent, unless a closed segment
                # is waiting (then the work is behind); the result is kept only if the pause lasts.
                if idle():
                    target = with_waiting(item.segment)
                    pause = item
                    abort = (lambda: withdrawn(pause)) if withdrawn is not None else None
                    try:
                        early = (target, self._context_key(), self._recognize(target, abort=abort))
                    except DecodeAborted:
                        early = None
                        self.stats.early_aborted += 1
                        log.debug("early decode stopped: speech came back")
                    self.stats.early_decodes += 1
                continue
            seg, closed_at, *how = item          # type: ignore[misc]
            last_one = bool(how)                 # closed by the end of the stream (the release): nothing follows
            if self._pending is not None and not self._one_train(self._pending.seg, seg):
                yield from flush_read(after_silence=False)    # (a batch has no quiet news: the pause says it)
            if capturing and not last_one:
                paused_at = closed_at
            if waiting is not None:
                both = with_waiting(seg)
                if both is seg:
                    yield decode(*waiting)
                seg = both
                waiting = None
            result = (early[1], early[2]) if early is not None and _same_audio(early[0], seg) else None
            early = None
            if join_short_s and seg.duration_s < join_short_s and not last_one:
                waiting = (seg, closed_at, result)      # decoded with the next phrase, for its context
                self.stats.joined_short += 1
                continue
            yield decode(seg, closed_at, result, by_pause=not last_one)

    # -- batch ---------------------------------------------------------------------------------------------
    def batch(self, source: AudioSource, on_audio_end: Callable[[], None] | None = None) -> Iterator[TextPiece]:
        """Read the whole source, then transcribe every segment (the benchmark's "batch at release")."""
        self._reset()
        segmenter = self.new_segmenter()
        closed: list[object] = []
        for chunk in source.chunks():
            self.stats.audio_s += len(chunk) / 16000
            closed.extend((seg, time.monotonic()) for seg in segmenter.feed(chunk))
        self.stats.source_ended_at = time.monotonic()
        closed.extend((seg, time.monotonic(), _LAST) for seg in segmenter.flush())
        if on_audio_end:
            on_audio_end()
        yield from self._decode_all(iter([*closed, _END]), idle=lambda: False)
        self.stats.overflows = source.overflows

    def text_of(self, pieces: Iterator[TextPiece]) -> str:
        """All pieces' text joined (what the host would receive)."""
        return "".join(p.text for p in pieces)

    def close(self) -> None:
        self.engine.close()

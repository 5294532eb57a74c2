"""Hearing a Bluetooth pairing code said aloud: microphone chunks → VAD phrases → a quick private decode → six
digits, or None.

When a host pairs with LE Secure Connections passkey entry, it shows six digits and gives the keyboard 30 s to
enter them (the SMP timeout). The user says them; :func:`hear_passkey` listens with the whisper model the box has
already loaded and answers as soon as six digits are clear. It does not wait for the pause that ends a dictation
phrase: a phrase is decoded after :data:`SPECULATE_MS` of pause (the segmenter's tentative segment, as the chain
decodes early), and six digits in it are the answer. If speech goes on, the phrase is decoded again when it closes.
A listener running behind the microphone (a slow decode) skips the early decode: the rest of the pause is waiting
already, so the phrase closes as soon as it is read.

Each decode is short and fixed: no prompt (no vocabulary, no history: nothing may bias the digits), no temperature
fallback, at most :data:`MAX_TOKENS` tokens (:meth:`sttkb.asr.engine.WhisperEngine.decode_private`). What was
heard is a secret: it is never logged, not even at DEBUG, and never kept; the log gets counts and timings only.

One call is one attempt:

* a phrase that does not start like a code before any digit was heard (a noise whisper wrote as "Thank you.", a
  cough, "hmm") is ignored, and listening goes on;
* once digits were heard, phrases add up ("four seven two" ... "nine one three") until six digits are clear: the
  answer;
* more than six digits, or words that cannot be part of a code once digits began: None at once. The host then
  reports a failed pairing and the user can try again while the window is open, rather than wait out 30 s;
* some digits, then :data:`GIVE_UP_S` of silence without six: None (the user can say it again at once);
* the deadline, or the end of the chunks (the caller stopped listening): None.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable, Iterable, Protocol

import numpy as np

from sttkb.audio import SAMPLE_RATE
from sttkb.audio.segment import Segment
from sttkb.audio.vad import Segmenter
from sttkb.config.audio import VadSettings
from sttkb.text.passkey import PASSKEY_DIGITS, digits_heard, spoken_passkey

log = logging.getLogger(__name__)

SPECULATE_MS = 300
"""Pause after which a phrase is decoded to look for six digits, whatever ``[vad] speculate_ms`` says
(milliseconds)."""
BEHIND_S = 0.2
"""A pause is decoded early only if the listener is at most this far behind a live microphone (seconds): further
behind, the audio after the pause is waiting already, so the phrase's end (or more speech) is read at once and the
early decode would be wasted (a slow CPU, or a decode of the previous phrase still running)."""
GIVE_UP_S = 4.0
"""Once some digits were heard, this much silence without six (seconds of audio) ends the attempt: the user has
stopped talking, and failing now lets them say the code again at once instead of waiting out the host's 30 s.
Longer than any pause inside a code read aloud."""
MAX_TOKENS = 32
"""Token budget of one decode: "the code is four hundred and seventy two, nine hundred and thirteen" takes about
20 tokens."""


class PrivateDecoder(Protocol):
    """What the listener needs from :class:`sttkb.asr.engine.WhisperEngine`."""

    max_segment_s: float

    def decode_private(self, segment: Segment, *, max_tokens: int) -> str:
        """whisper.cpp's text of ``segment`` with no prompt and no log of the text."""


def hear_passkey(chunks: Iterable[np.ndarray], engine: PrivateDecoder, *, deadline: float,
                 vad: VadSettings | None = None, clock: Callable[[], float] = time.monotonic) -> str | None:
    """Listen to ``chunks`` (16 kHz mono float32, as a microphone delivers them) until six digits are said; return
    them as a string, or None (see the module docstring for what one attempt is).

    ``deadline`` is a ``clock()`` time (the request's, :attr:`sttkb.keyboard.PasskeyRequest.deadline`): checked
    after every chunk, so a live microphone (a chunk every few tens of milliseconds) ends the call in time. The
    caller stops it earlier by ending the chunks. ``vad``: the box's ``[vad]`` settings (levels, end of phrase).
    """
    settings = replace(vad or VadSettings(), speculate_ms=SPECULATE_MS)
    segmenter = Segmenter(settings, max_segment_s=min(settings.max_segment_s, engine.max_segment_s))
    heard = _Heard(engine)
    started = clock()
    taken_s = 0.0                 # audio read so far (seconds)
    origin = float("inf")         # earliest clock() time at which a live microphone could have begun this audio
    last_phrase_end_s = 0.0       # audio time at which the last closed phrase ended
    for chunk in chunks:
        now = clock()
        if now >= deadline:
            log.info("no pairing code heard before the deadline (%.0f s)", deadline - started)
            return None
        taken_s += len(chunk) / SAMPLE_RATE
        origin = min(origin, now - taken_s)
        for segment in segmenter.feed(chunk):
            if heard.phrase(segment, segmenter.position_s):
                return heard.answer
            last_phrase_end_s = segment.end_s
        if (heard.said and not segmenter.in_speech
                and segmenter.position_s - last_phrase_end_s > GIVE_UP_S):
            log.info("some digits, then %.0f s of silence: no code this time", GIVE_UP_S)
            return None
        pending = segmenter.tentative()
        if pending is None:
            continue
        behind_s = now - origin - taken_s
        if behind_s > BEHIND_S:   # the rest of the pause is here already: let the phrase close instead
            log.debug("%.2f s behind the microphone: the pause is not decoded early", behind_s)
            continue
        if heard.pause(pending, segmenter.position_s):
            return heard.answer
    if clock() < deadline:
        for segment in segmenter.flush():  # chunks ended mid-phrase: what was said so far still counts
            if heard.phrase(segment, segmenter.position_s):
                return heard.answer
    log.info("stopped listening for the pairing code: none heard")
    return None


def _joined(said: str, text: str) -> str:
    return f"{said} {text}".strip()


def starts_like_a_code(text: str) -> bool:
    """True when the first words of ``text`` already read as at least one passkey digit ("four seven two,
    please": yes; "Thank you for watching.": no, though "for" alone may be a 4)."""
    words = text.split()
    for n in range(1, len(words) + 1):
        count = digits_heard(" ".join(words[:n]))
        if count is None:
            return False
        if count > 0:
            return True
    return False


class _Heard:
    """What one attempt has heard so far; decides after each phrase. Never logs the text."""

    def __init__(self, engine: PrivateDecoder) -> None:
        self.engine = engine
        self.said = ""                       # text of the closed phrases that count (a secret)
        self.answer: str | None = None       # the verdict, once there is one
        self._early: tuple[tuple[float, float, int], str] | None = None  # a tentative phrase's decode, by audio

    def _decode(self, segment: Segment) -> str:
        key = (segment.start_s, segment.end_s, len(segment.samples))
        if self._early is not None and self._early[0] == key:
            return self._early[1]
        start = time.perf_counter()
        text = self.engine.decode_private(segment, max_tokens=MAX_TOKENS)
        log.debug("decoded a %.1f s phrase in %.2f s", segment.duration_s, time.perf_counter() - start)
        self._early = (key, text)
        return text

    def _decide(self, text: str, segment: Segment, position_s: float) -> bool:
        """Six digits or more in ``said`` + ``text``: the verdict is in :attr:`answer` (True)."""
        count = digits_heard(_joined(self.said, text))
        if count is None or count < PASSKEY_DIGITS:
            return False
        self.answer = spoken_passkey(_joined(self.said, text))
        if self.answer is None:
            log.info("heard more than six digits: no code this time")
        else:
            log.info("heard six digits, %.2f s of audio after the speech ended", position_s - segment.speech_end_s)
        return True

    def pause(self, segment: Segment, position_s: float) -> bool:
        """A phrase whose pause has just begun: the verdict if six digits are clear already."""
        return self._decide(self._decode(segment), segment, position_s)

    def phrase(self, segment: Segment, position_s: float) -> bool:
        """A closed phrase: the verdict (six digits, or not a code), or False to go on listening."""
        text = self._decode(segment)
        if not text:
            return False
        if self._decide(text, segment, position_s):
            return True
        if digits_heard(_joined(self.said, text)) is not None:
            self.said = _joined(self.said, text)   # fewer than six digits so far (or a lead-in): go on
            return False
        if not digits_heard(self.said) and not starts_like_a_code(text):  # no digit yet: noise, not a try
            log.debug("a %.1f s phrase that is not a code: ignored", segment.duration_s)
            return False
        log.info("heard something that is not a six-digit code: no code this time")
        self.answer = None
        return True

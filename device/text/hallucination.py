"""Hallucination filter: text Whisper makes up on silence, noise and music.

Three rules, applied to one segment's text:

1. Non-speech tags are removed wherever they appear: anything in square brackets (``[BLANK_AUDIO]``,
   ``[Music]``, ``[inaudible]`` — Whisper uses brackets only for these), parentheses or asterisks around a
   sound word (``(music)``, ``(upbeat music)``, ``*laughs*``) or making up the whole segment, and music notes
   with whatever they enclose (``♪ la la la ♪``, ``♪♪``).
2. Sentences that are a known video-subtitle phrase ("Thank you for watching.", "Please subscribe.",
   "Subtitles by the Amara.org community") are removed at any level. A segment that is only "you" (Whisper's
   favourite output for noise), only the user's own ``hallucination_phrases``, or that has no letters or digits
   left, is dropped at any level.
3. On near-silent audio (speech level below ``quiet_dbfs``) a segment is also dropped when its whole text is one
   of the short phrases Whisper produces from almost nothing ("Thank you.", "Bye.", "Okay.", "Hmm."). The same
   words spoken at a normal level are kept: "Thank you." is a real thing to dictate. Short quiet text that is not
   on the list is kept, because dropping what the user said is worse than a rare stray word.

Phrases compare case-insensitively, ignoring punctuation and extra spaces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sttkb.text.join import clean

ALWAYS_PHRASES: tuple[str, ...] = (
    "thank you for watching",
    "thanks for watching",
    "thank you so much for watching",
    "thank you very much for watching",
    "thank you for watching and see you next time",
    "thanks for watching and see you next time",
    "please subscribe",
    "please subscribe to my channel",
    "subscribe to my channel",
    "please like and subscribe",
    "like and subscribe",
    "don't forget to like and subscribe",
    "don't forget to subscribe",
    "please like share and subscribe",
    "see you in the next video",
)
"""Whole sentences dropped at any speech level (English; lower case, no punctuation)."""

ALWAYS_WHOLE: tuple[str, ...] = ("you", "you you")
"""Whole-segment texts dropped at any level: Whisper's most common output for noise. A sentence "You." inside
longer text is kept."""

ALWAYS_PREFIXES: tuple[str, ...] = (
    "subtitles by",
    "subtitled by",
    "subtitles made by",
    "captions by",
    "captioning by",
    "closed captioning by",
    "transcription by",
    "transcribed by",
    "translated by",
    "english subtitles",
    "amara org",
)
"""A sentence starting with one of these is a subtitle credit: dropped at any level."""

QUIET_PHRASES: tuple[str, ...] = (
    "thank you",
    "thank you very much",
    "thank you so much",
    "thanks",
    "bye",
    "bye bye",
    "goodbye",
    "okay",
    "ok",
    "oh",
    "so",
    "hmm",
    "mm",
    "uh",
    "um",
    "ah",
    "the end",
    "i'm sorry",
    "yeah",
    "you know",
    "silence",
)
"""Whole-segment texts dropped only when the audio was near-silent."""

SOUND_WORDS: frozenset[str] = frozenset({
    "music", "musical", "singing", "sings", "laugh", "laughs", "laughing", "laughter", "chuckles", "chuckling",
    "giggles", "giggling", "applause", "clapping", "cheering", "silence", "silent", "noise", "noises", "static",
    "beep", "beeping", "cough", "coughs", "coughing", "sigh", "sighs", "sighing", "breath", "breathing",
    "breathes", "inaudible", "indistinct", "unintelligible", "mumbling", "mumbles", "whispers", "whispering",
    "sniff", "sniffs", "sniffles", "blank", "audio", "ringing", "buzzing", "footsteps", "instrumental", "foreign",
    "blank_audio", "crosstalk", "groans", "gasps", "screams", "humming", "hums", "whistling",
})
"""Words that mark a parenthesised or starred span as a sound tag rather than dictated text."""

_BRACKETS = re.compile(r"\[[^\[\]\n]*\]")
_PARENS = re.compile(r"\(([^()\n]*)\)")
_STARS = re.compile(r"\*([^*\n]+)\*")
_NOTES = "♪♫♬🎵🎶"
_NOTE_SPAN = re.compile(rf"[{_NOTES}][^{_NOTES}\n]*[{_NOTES}]|[{_NOTES}]+")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+")
_NON_WORD = re.compile(r"[^\w']+")


def normalize_phrase(text: str) -> str:
    """Lower case, punctuation removed, single spaces: how phrases are compared ("Thank you!" -> "thank you")."""
    return " ".join(_NON_WORD.sub(" ", text.casefold().replace("’", "'")).split())


def without_leading_phrase(text: str, phrase: str) -> str:
    """``text`` without a copy of ``phrase`` at its start, compared as phrases are (:func:`normalize_phrase`): e.g.
    words of Whisper's prompt it wrote out again instead of hearing them. Text that only begins like ``phrase``
    ("Hello, welcomed guests" for "Hello, welcome") is kept whole."""
    target = normalize_phrase(phrase)
    words = text.split()
    for n in range(1, len(words) + 1) if target else ():
        got = normalize_phrase(" ".join(words[:n]))
        if got == target:
            return " ".join(words[n:])
        if got and not target.startswith(got + " "):
            break
    return text


def _is_sound_tag(inner: str) -> bool:
    words = normalize_phrase(inner).split()
    return bool(words) and len(words) <= 5 and any(w in SOUND_WORDS for w in words)


def strip_tags(text: str) -> str:
    """Remove non-speech tags: [anything], (sound words), *sound words*, ♪ ... ♪ and lone notes."""
    text = _BRACKETS.sub(" ", text)
    text = _NOTE_SPAN.sub(" ", text)
    whole = text.strip()
    for pattern in (_PARENS, _STARS):
        match = pattern.fullmatch(whole)
        if match:  # a segment that is nothing but one (…) or *…* is never dictation
            return ""
        text = pattern.sub(lambda m: " " if _is_sound_tag(m.group(1)) else m.group(0), text)
    return text


@dataclass(frozen=True)
class HallucinationFilter:
    """The filter with its settings: user phrases and the near-silence level."""

    extra_phrases: tuple[str, ...] = ()
    """User phrases dropped when they are a segment's whole text."""
    quiet_dbfs: float = -40.0
    """Speech level below which short stock phrases are treated as made up (dBFS)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_extra", frozenset(normalize_phrase(p) for p in self.extra_phrases if p.strip()))

    def apply(self, text: str, speech_dbfs: float) -> str:
        """``text`` without tags and made-up phrases, cleaned (see :func:`sttkb.text.join.clean`); "" when the
        whole segment is dropped."""
        text = strip_tags(text)
        key = normalize_phrase(text)
        if not key or key in ALWAYS_WHOLE or key in self._extra:  # type: ignore[attr-defined]
            return ""
        if speech_dbfs < self.quiet_dbfs and key in QUIET_PHRASES:
            return ""
        return clean(drop_stock_sentences(text))


def is_stock_sentence(sentence: str) -> bool:
    """True for a video-subtitle phrase or credit ("Thanks for watching!", "Subtitles by ...")."""
    key = normalize_phrase(sentence)
    return key in ALWAYS_PHRASES or any(key == p or key.startswith(p + " ") for p in ALWAYS_PREFIXES)


def drop_stock_sentences(text: str) -> str:
    """Remove whole sentences that are stock subtitle phrases; other sentences are kept untouched."""
    if is_stock_sentence(text):
        return ""
    sentences = _SENTENCE_BREAK.split(text.strip())
    if not any(is_stock_sentence(s) for s in sentences):
        return text
    return " ".join(s for s in sentences if not is_stock_sentence(s))


def filter_text(text: str, speech_dbfs: float, *, extra_phrases: Iterable[str] = (),
                quiet_dbfs: float = -40.0) -> str:
    """One-call form of :class:`HallucinationFilter` (see the module docstring for the rules)."""
    return HallucinationFilter(tuple(extra_phrases), quiet_dbfs).apply(text, speech_dbfs)

"""The text pipeline: one segment's raw Whisper text in, exactly the text to type out.

Steps, in this order, for each segment:

1. ``clean``: control characters removed (only line break and tab ever leave the pipeline), spaces tidied.
2. Hallucination filter: sound tags removed; stock subtitle phrases, a lone "you" and the user's phrases
   dropped; on near-silent audio (below ``quiet_dbfs``) stock short phrases ("Thank you.") dropped too.
3. Filler removal (``remove_fillers``), before anything else looks at the words.
4. Replacements (``replacements``) on Whisper's words — before numbers, so a key like "one drive" still matches.
5. Spoken commands (``spoken_commands``), with the ``literal_word`` escape.
6. Numbers to digits (``numbers_to_digits``), line by line so command line breaks survive.
7. ``clean`` again; a segment with nothing but punctuation left is dropped ("Um." -> "").
8. Join: a paragraph break when the pause before the segment is longer than ``paragraph_pause_s``, else one
   space (see :mod:`sttkb.text.join`); with ``trailing_space`` the space goes after each segment instead of
   before the next, so the next transcript joins cleanly even after the user moved the cursor.

9. Sentence ends held back (``hold_sentence_end_s``): Whisper ends every phrase it hears as a sentence, but people
   pause mid-sentence. A segment's closing ``.``, ``!`` or ``?`` (and the space after it) is kept back; the next
   segment decides: if it continues the sentence (starts in lower case, or with a comma-like mark or "..."), the
   mark is dropped and the words join with a space; anything else (upper case, a digit, a paragraph break) types
   the mark first. :meth:`TextPipeline.flush` types a held mark (the caller calls it at the button release, at
   hands-free stop, and after ``hold_sentence_end_s`` of silence). A mark that a spoken command produced is never
   held, and nothing already typed is ever taken back.

The pipeline remembers only the tail of what it produced (for the join) and the held mark; :meth:`TextPipeline.reset`
forgets both.
"""

from __future__ import annotations

import logging
import unicodedata

from sttkb.config.text import TextSettings
from sttkb.text.commands import SpokenCommands
from sttkb.text.fillers import FillerRemover
from sttkb.text.hallucination import HallucinationFilter
from sttkb.text.join import clean, join_pair
from sttkb.text.numbers import numbers_to_digits
from sttkb.text.paragraphs import paragraph_separator, starts_paragraph
from sttkb.text.replacements import Replacements

log = logging.getLogger(__name__)

_TAIL_CHARS = 4
_SENTENCE_END = ".!?"


def has_content(text: str) -> bool:
    """True when ``text`` has something worth typing: a letter, digit, symbol, line break or tab.
    Punctuation and spaces alone ("." left over from "Um.") are not."""
    return any(ch in "\n\t" or unicodedata.category(ch)[0] in "LNSM" for ch in text)


class TextPipeline:
    """Turns each segment's text into the string to append to what was already typed."""

    def __init__(self, settings: TextSettings | None = None) -> None:
        self.settings = settings = settings or TextSettings()
        self._hallucinations = HallucinationFilter(tuple(settings.hallucination_phrases), settings.quiet_dbfs)
        self._fillers = FillerRemover(settings.fillers) if settings.remove_fillers else None
        self._replacements = Replacements(settings.replacements)
        self._commands = (SpokenCommands(settings.commands, settings.literal_word)
                          if settings.spoken_commands else None)
        self._tail = ""
        self._held = ""
        self._last_used_command = False

    def reset(self) -> None:
        """Start a new transcript: the next segment gets no joining space or paragraph break (a held mark is
        forgotten: call :meth:`flush` first to type it)."""
        self._tail = ""
        self._held = ""

    @property
    def held(self) -> str:
        """The closing mark kept back from the last segment ("" when none): not typed yet."""
        return self._held

    def flush(self) -> str:
        """The held mark to type now (with the trailing space, if on); "" when none is held."""
        if not self._held:
            return ""
        out = self._held + (" " if self.settings.trailing_space else "")
        self._held = ""
        self._tail = (self._tail + out)[-_TAIL_CHARS:]
        return out

    def transform(self, segment_text: str, *, speech_dbfs: float = 0.0) -> str:
        """Steps 1-7 on one segment, without the join: the cleaned text, or "" when the segment is dropped."""
        s = self.settings
        text = clean(segment_text)
        text = self._hallucinations.apply(text, speech_dbfs)
        if not text:
            return ""
        if self._fillers:
            text = self._fillers.apply(text)
        if self._replacements:
            text = self._replacements.apply(text)
        self._last_used_command = False
        if self._commands:
            commanded = self._commands.apply(text)
            self._last_used_command = commanded != text
            text = commanded
        if s.numbers_to_digits:
            text = numbers_to_digits(text, s.numbers_language, s.numbers_min)
        text = clean(text)
        return text if has_content(text) else ""

    def process(self, segment_text: str, *, pause_before_s: float = 0.0, speech_dbfs: float = 0.0,
                is_first: bool = False, continues: bool | None = None) -> str:
        """The exact string to append for one segment (joining space or paragraph break included), "" when the
        segment is dropped.

        ``pause_before_s``: silence since the previous segment ended (seconds). ``speech_dbfs``: the segment's
        speech level (dBFS; 0.0 = loud, i.e. no near-silence rule). ``is_first``: first segment of a new
        transcript (same as calling :meth:`reset` first). ``continues``: whether the segment goes on with the
        sentence before it, when the caller knows (Whisper heard both sides of the pause); None: the segment's first
        letter decides (:func:`continues_sentence`).
        """
        if is_first:
            self.reset()
        text = self.transform(segment_text, speech_dbfs=speech_dbfs)
        if not text:
            if segment_text.strip():
                log.debug("segment dropped: %r", segment_text)
            return ""
        done = self._tail
        paragraph = starts_paragraph(pause_before_s, self.settings.paragraph_pause_s, is_first=not done)
        held, self._held = self._held, ""
        if continues is None:
            continues = continues_sentence(text)
        if held and (paragraph or not continues):
            done = (done + held)[-_TAIL_CHARS:]     # the sentence did end: type its mark first
        else:
            if held:
                log.debug("a pause, not a sentence end: %r dropped before the next words", held)
            held = ""
        if paragraph:
            sep = paragraph_separator(done)
            text = text.lstrip("\n")
            sep_after, text = join_pair(done + sep, text)
            sep += sep_after
        else:
            sep, text = join_pair(done, text)
        out = held + sep + text
        if not out:
            return ""
        if (self.settings.hold_sentence_end_s > 0 and not self._last_used_command and len(out) > 1
                and out[-1] in _SENTENCE_END and out[-2] not in _SENTENCE_END):
            out, self._held = out[:-1], out[-1]
        elif self.settings.trailing_space and not out[-1].isspace():
            out += " "
        self._tail = (self._tail + out)[-_TAIL_CHARS:]
        return out


def continues_sentence(text: str) -> bool:
    """True when a segment's cleaned text reads as the rest of the sentence before it: its first letter is lower
    case, or it starts with a comma-like mark or a continuation marker ("...", "…"). "I" and names start upper case:
    they count as a new sentence (the held mark is typed; a wrong guess leaves Whisper's own punctuation)."""
    stripped = text.lstrip(" ")
    if not stripped:
        return False
    if stripped[0] in ",;:" or stripped.startswith(("..", "…")):
        return True
    for ch in stripped:
        if ch.isalpha():
            return ch.islower()
        if not (ch in "\"'“‘(" or ch.isspace()):
            return False
    return False

"""Repetition guard: find and cut the loops Whisper falls into ("the the the the ...", "I'm going to I'm going to
..."), and size the token budget of a segment to its duration.

Pure functions, no whisper.cpp here.

Rules (chosen so that ordinary speech with repetition is never cut):

* Word loops: a unit of ``n`` words (1 <= n <= :data:`MAX_UNIT_WORDS`) repeated back to back. Words are compared
  case-insensitively with punctuation at their ends ignored, so "Thank you. Thank you. Thank you." is a loop of
  "thank you". A single word must occur at least :data:`MIN_WORD_REPEATS` (4) times in a row ("no, no, no" and
  "very very good" stay); a unit of two or more words at least :data:`MIN_PHRASE_REPEATS` (3) times ("New York,
  New York" stays).
* Character loops inside one word, or in text without spaces (Chinese, Japanese): a unit of 1..12 characters
  repeated back to back. One character needs :data:`MIN_CHAR_RUN` (8) in a row ("!!!!!!!!", "aaaaaaaa"; "Sooo"
  and "!!!" stay); a longer unit needs 4 repeats covering at least 8 characters ("hahahaha", "我们我们我们我们").
  Units made only of digits are never loops ("1000000000" is a number).
* The trimmed text keeps the FIRST occurrence of the unit and everything before and after the loop; the other
  occurrences are removed, and so is a cut-off partial repetition at the very end (decoding often stops mid-unit
  when it runs out of tokens). The first occurrence is kept (not two) because the loop itself is the bug: one
  copy is what was most likely said.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

MAX_UNIT_WORDS = 16
"""Longest word unit searched for (words)."""
MIN_WORD_REPEATS = 4
"""A single word is a loop from this many consecutive occurrences."""
MIN_PHRASE_REPEATS = 3
"""A unit of two or more words is a loop from this many consecutive occurrences."""
MAX_UNIT_CHARS = 12
"""Longest character unit searched for inside a word (characters)."""
MIN_CHAR_RUN = 8
"""One character repeated this many times in a row is a loop; longer units need 4 repeats and 8 characters."""
MIN_CHAR_UNIT_REPEATS = 4
"""A character unit longer than one character is a loop from this many repeats (and ``MIN_CHAR_RUN`` chars)."""

WHISPER_MAX_TOKENS = 224
"""whisper.cpp never samples more than half its 448-token text context per segment."""


@dataclass(frozen=True)
class LoopInfo:
    """What :func:`detect_loop` found."""

    trimmed: str
    """The text with every loop cut to its first occurrence; equal to the input when there is no loop."""
    loop_fraction: float
    """Share of the text's non-space characters that were removed as loop repetitions (0.0 = no loop, close to
    1.0 = almost all loop). For words of equal length this is the share of the words."""
    unit: str | None
    """The repeated unit of the largest loop, as it first appears in the text (None = no loop)."""

    @property
    def found(self) -> bool:
        """True when at least one loop was cut."""
        return self.unit is not None


_WORD = re.compile(r"\S+")


def _norm(word: str) -> str:
    """Compare words case-insensitively, ignoring punctuation and symbols at their ends."""
    lo, hi = 0, len(word)
    while lo < hi and unicodedata.category(word[lo])[0] in "PS":
        lo += 1
    while hi > lo and unicodedata.category(word[hi - 1])[0] in "PS":
        hi -= 1
    core = word[lo:hi].casefold()
    return core or word  # a token that is all punctuation compares as itself


def _find_word_loop(keys: list[str], start: int) -> tuple[int, int, int] | None:
    """The smallest unit that loops from ``start``: (unit length n, end of the last full repeat, end of loop)."""
    total = len(keys)
    for n in range(1, MAX_UNIT_WORDS + 1):
        need = MIN_WORD_REPEATS if n == 1 else MIN_PHRASE_REPEATS
        if start + n * need > total:
            if n == 1:
                continue
            break
        if keys[start + n] != keys[start]:  # cheap test first: a repeat starts with the same word
            continue
        unit = keys[start:start + n]
        end = start + n
        count = 1
        while end + n <= total and keys[end:end + n] == unit:
            count += 1
            end += n
        if count < need:
            continue
        loop_end = end
        rest = keys[end:]
        if rest and len(rest) <= n and _is_cut_off_copy(rest, unit):
            loop_end = total  # a repetition cut off by the token limit at the very end
        return n, end, loop_end
    return None


def _is_cut_off_copy(rest: list[str], unit: list[str]) -> bool:
    """True when ``rest`` is the start of ``unit``, its last word possibly cut mid-word ("I'm go")."""
    k = len(rest)
    if rest[:-1] != unit[:k - 1]:
        return False
    last, full = rest[-1], unit[k - 1]
    return last != full and full.startswith(last) if k == len(unit) else full.startswith(last)


def _cut_word_loops(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Cut word loops; returns the new text and (removed non-space chars, unit text) per loop."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    keys = [_norm(text[a:b]) for a, b in spans]
    pieces: list[str] = []
    loops: list[tuple[int, str]] = []
    pos = 0  # next character of ``text`` not yet copied
    i = 0
    while i < len(spans):
        found = _find_word_loop(keys, i)
        if found is None:
            i += 1
            continue
        n, full_end, loop_end = found
        keep_end = spans[i + n - 1][1]  # end of the first occurrence
        unit_text = text[spans[i][0]:keep_end]
        removed = sum(b - a for a, b in spans[i + n:loop_end])
        loops.append((removed, unit_text))
        pieces.append(text[pos:keep_end])
        last_word = text[spans[loop_end - 1][0]:spans[loop_end - 1][1]] if loop_end == full_end else ""
        pieces.append(_trailing_punct(last_word, unit_text))
        pos = spans[loop_end - 1][1]
        i = loop_end
    pieces.append(text[pos:])
    return "".join(pieces), loops


def _trailing_punct(last_word: str, kept: str) -> str:
    """Sentence punctuation that ended the loop ("the the the the.") moves onto the kept copy if it has none."""
    tail = last_word[len(last_word.rstrip(".!?…")):]
    if tail and not kept.endswith(tuple(".!?…,;:")):
        return tail
    return ""


def _char_loop_at(word: str, start: int) -> tuple[int, int] | None:
    """(unit length, loop end) of the smallest character unit that loops from ``start``, or None."""
    for size in range(1, MAX_UNIT_CHARS + 1):
        unit = word[start:start + size]
        if len(unit) < size:
            break
        if unit.isdigit() or any(c.isspace() for c in unit):
            continue
        end = start + size
        count = 1
        while word.startswith(unit, end):
            count += 1
            end += size
        if size == 1:
            ok = count >= MIN_CHAR_RUN
        else:
            ok = count >= MIN_CHAR_UNIT_REPEATS and count * size >= MIN_CHAR_RUN
        if ok:
            rest = word[end:]
            if rest and len(rest) < size and unit.startswith(rest):
                end = len(word)
            return size, end
    return None


def _cut_char_loops(text: str) -> tuple[str, list[tuple[int, str]]]:
    """Cut character loops inside each whitespace-separated token."""
    out: list[str] = []
    loops: list[tuple[int, str]] = []
    pos = 0
    for m in _WORD.finditer(text):
        word = m.group()
        kept: list[str] = []
        j = 0
        while j < len(word):
            found = _char_loop_at(word, j)
            if found is None:
                kept.append(word[j])
                j += 1
                continue
            size, end = found
            unit = word[j:j + size]
            kept.append(unit)
            loops.append((end - j - size, unit))
            j = end
        out.append(text[pos:m.start()])
        out.append("".join(kept))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), loops


def _visible(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def detect_loop(text: str) -> LoopInfo:
    """Find repetition loops in one segment's text and cut each to its first occurrence.

    >>> detect_loop("I'm going to I'm going to I'm going to I'm go").trimmed
    "I'm going to"
    >>> detect_loop("very very good").found
    False
    """
    total = _visible(text)
    if total == 0:
        return LoopInfo(trimmed=text, loop_fraction=0.0, unit=None)
    after_words, word_loops = _cut_word_loops(text)
    after_chars, char_loops = _cut_char_loops(after_words)
    loops = word_loops + char_loops
    if not loops:
        return LoopInfo(trimmed=text, loop_fraction=0.0, unit=None)
    removed = total - _visible(after_chars)
    biggest = max(loops, key=lambda item: item[0])
    return LoopInfo(trimmed=after_chars, loop_fraction=max(0.0, min(1.0, removed / total)), unit=biggest[1])


MIN_TAIL_UNIT_WORDS = 3
"""A decode's text ending in a phrase of at least this many words said twice in a row loses the second copy."""


def without_repeated_tail(text: str, min_words: int = MIN_TAIL_UNIT_WORDS) -> str:
    """``text`` without a second copy of its last phrase when it ends in one said twice back to back ("... the castle.
    Walking around the castle." -> "... the castle."): Whisper's way of filling the end of a window it has run out of
    speech for. A phrase of fewer than ``min_words`` words stays doubled ("I'm sorry, I'm sorry")."""
    words = _WORD.findall(text)
    keys = [_norm(w) for w in words]
    for n in range(len(words) // 2, min_words - 1, -1):
        if keys[-n:] == keys[-2 * n:-n]:
            kept = " ".join(words[:-n])
            return kept + _trailing_punct(words[-1], kept)
    return text


def max_tokens_for(duration_s: float, tokens_per_second: float, floor: int = 16,
                   ceiling: int = WHISPER_MAX_TOKENS) -> int:
    """Token budget for a segment of ``duration_s`` seconds: ``tokens_per_second`` per second, at least ``floor``
    (so a short word with punctuation and timestamps fits), at most ``ceiling`` (whisper.cpp's own limit).

    Fast speech is about 3-4 words (4-5 tokens) per second, so the default 8 tokens/s leaves headroom (espeak at 320 wpm needed more than 6) while a loop is stopped
    long before it fills the window.
    """
    if duration_s < 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s!r}")
    if tokens_per_second <= 0:
        raise ValueError(f"tokens_per_second must be > 0, got {tokens_per_second!r}")
    budget = math.ceil(duration_s * tokens_per_second)
    return int(max(floor, min(ceiling, budget)))

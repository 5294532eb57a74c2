"""Word error rate with a small, documented normalizer (no jiwer needed on the device).

Normalizer: Unicode NFKC, lower case, curly apostrophes → ', every character that is not a letter, a digit or an
apostrophe inside a word becomes a space, then split on whitespace. So "Hello, World!" and "hello world" match;
"don't" stays one word; numbers are NOT spelled out ("10" ≠ "ten").

Used by ``sttkb model import --check``, ``sttkb bench`` and the tests (one WER for all of them).

The **formatted error rate** (:func:`formatted_error_rate`) is the same edit distance over tokens that keep their
case and the punctuation attached to them: Unicode NFKC, curly quotes and apostrophes made straight, split on
whitespace, nothing else. "Ask not! What" against "ask not what" is 3 errors in 3 words (every token differs); "Americans," against
"Americans" is one. It measures how the text reads — sentence breaks, capitals, commas — as well as its words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_NON_WORD = re.compile(r"[^\w']+|_")
_EDGE_APOSTROPHES = re.compile(r"(?<!\w)'|'(?!\w)")


def normalize_words(text: str) -> list[str]:
    """Text → the list of words WER compares (see module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    text = _EDGE_APOSTROPHES.sub(" ", _NON_WORD.sub(" ", text))
    return text.split()


def normalize(text: str) -> str:
    """The text as WER sees it: :func:`normalize_words` joined by single spaces (for "phrase in text" checks)."""
    return " ".join(normalize_words(text))


@dataclass(frozen=True)
class WerResult:
    errors: int
    """Substitutions + deletions + insertions (words)."""
    reference_words: int

    @property
    def wer(self) -> float:
        """errors / reference words (0.0 = perfect; can exceed 1.0). Empty reference: 0.0 or 1.0 per errors."""
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.reference_words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists (unit costs)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(reference: str, hypothesis: str) -> WerResult:
    """WER of ``hypothesis`` against ``reference`` after :func:`normalize_words`."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    return WerResult(edit_distance(ref, hyp), len(ref))


def wer(reference: str, hypothesis: str) -> float:
    """Shorthand for ``word_error_rate(reference, hypothesis).wer``."""
    return word_error_rate(reference, hypothesis).wer


_STRAIGHT = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"'})


def formatted_tokens(text: str) -> list[str]:
    """Text → the tokens the formatted error rate compares (case and attached punctuation kept)."""
    return unicodedata.normalize("NFKC", text).translate(_STRAIGHT).split()


def formatted_error_rate(reference: str, hypothesis: str) -> WerResult:
    """Edit distance over :func:`formatted_tokens` (see the module docstring), with the reference's token count."""
    ref, hyp = formatted_tokens(reference), formatted_tokens(hypothesis)
    return WerResult(edit_distance(ref, hyp), len(ref))

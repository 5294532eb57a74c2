"""Filler-word removal: "Um, I think, uh, we should go." -> "I think, we should go."

* Fillers match whole words, case-insensitively, also with repeated letters Whisper writes ("ummm", "uhh");
  multi-word fillers ("you know") work too, but none are in the default list.
* Commas Whisper puts around a filler go with it. When the filler sat between two commas, one comma stays, because
  it may separate list items ("apples, um, pears" -> "apples, pears").
* A filler that started a sentence hands its capital to the next word ("Um, so we go." -> "So we go.").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sttkb.text.join import clean


def _filler_pattern(word: str) -> str:
    parts = []
    for token in word.split():
        # "um" also matches "umm", "ummm"; "uh" also "uhh": repeat the last letter.
        parts.append(re.escape(token) + (re.escape(token[-1]) + "*" if token[-1].isalpha() else ""))
    return r"\s+".join(parts)


class FillerRemover:
    """A compiled filler list (build once, apply per segment)."""

    def __init__(self, fillers: Iterable[str]) -> None:
        words = sorted({" ".join(f.casefold().split()) for f in fillers if f.strip()}, key=lambda w: (-len(w), w))
        if not words:
            self._pattern = None
            return
        alternation = "|".join(_filler_pattern(w) for w in words)
        self._pattern = re.compile(
            rf"(?P<pre>\s*,)?\s*(?<!\w)(?P<word>{alternation})(?!\w)(?P<post>\s*[,…]|\s*\.\.\.)?", re.IGNORECASE)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _replace(self, m: re.Match) -> str:
        if m.group("pre") and m.group("post"):
            return ", "
        return " "

    def apply(self, text: str) -> str:
        """``text`` without fillers, commas tidied, sentence-start capital kept."""
        if self._pattern is None:
            return text
        out: list[str] = []
        pos = 0
        capitalize_next = False
        for m in self._pattern.finditer(text):
            out.append(text[pos:m.start()])
            word = m.group("word")
            head = "".join(out).rstrip()
            at_sentence_start = not head or head.endswith((".", "!", "?", "\n"))
            if at_sentence_start and word[:1].isupper():
                capitalize_next = True
            out.append((" " if head else "") if at_sentence_start else self._replace(m))
            pos = m.end()
            if capitalize_next:
                rest = text[pos:].lstrip(" ,")
                skipped = len(text) - pos - len(rest)
                follow = self._pattern.match(rest)
                if rest and not (follow and follow.start() == 0 and follow.group("word")):
                    out.append(rest[:1].upper())
                    pos += skipped + 1
                    capitalize_next = False
        out.append(text[pos:])
        result = clean("".join(out))
        result = re.sub(r"\s+([,.;:!?])", r"\1", result)
        return re.sub(r",(?=[,.;:!?])", "", result)


def remove_fillers(text: str, fillers: Iterable[str]) -> str:
    """One-call form of :class:`FillerRemover`."""
    return FillerRemover(fillers).apply(text)

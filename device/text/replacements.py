"""User dictionary: whole words or phrases, matched case-insensitively, replaced by exactly the text given.

``{"chat gpt": "ChatGPT", "sttkb": "STT-KB"}``: keys match whole words only ("chat gptx" is not a match), any
run of spaces in the text matches a space in a key, longer keys win over shorter ones that overlap, and a
replacement is never replaced again. Text outside matches is kept exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class Replacements:
    """A compiled replacement table (build once, apply per segment)."""

    def __init__(self, table: Mapping[str, str]) -> None:
        self._table: dict[str, str] = {}
        for key, value in table.items():
            norm = " ".join(key.casefold().split())
            if norm:
                self._table[norm] = value
        if not self._table:
            self._pattern = None
            return
        keys = sorted(self._table, key=lambda k: (-len(k), k))
        alternation = "|".join(r"\s+".join(re.escape(word) for word in key.split()) for key in keys)
        # (?<!\w)/(?!\w) rather than \b so keys that start or end with punctuation ("c++") still match whole.
        self._pattern = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def apply(self, text: str) -> str:
        """``text`` with every whole-word match replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._table[" ".join(m.group().casefold().split())], text)


def replace_words(text: str, table: Mapping[str, str]) -> str:
    """One-call form of :class:`Replacements`."""
    return Replacements(table).apply(text)

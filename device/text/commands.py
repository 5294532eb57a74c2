"""Spoken commands: "new line" -> a line break, "new paragraph" -> an empty line, from a configurable table.

Off by default, because the command words are also ordinary words. When on:

* Commands match whole words, case-insensitively, also when Whisper hyphenates or joins them ("New-line",
  "newline"). Longer commands win ("new paragraph" over a user's "new").
* Whisper's punctuation around a command is tidied: a mark right after the command belongs to the command and is
  dropped ("Dear John, new line. How are you?" -> "Dear John,\\nHow are you?"); a mark before it is kept. Spaces
  next to a command whose output starts/ends with whitespace or punctuation are dropped.
* To type the words themselves, say the literal word first: "literal new line" -> "new line" (also
  "Literal, new line."). The literal word is only special right before a command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

DEFAULT_COMMANDS: dict[str, str] = {"new line": "\n", "new paragraph": "\n\n"}
"""The built-in table; the ``[text] commands`` setting replaces it."""

_AFTER_MARKS = ".,;:!?…"


def _key_pattern(key: str) -> str:
    return r"[\s-]*".join(re.escape(word) for word in key.split())


class SpokenCommands:
    """A compiled command table (build once, apply per segment)."""

    def __init__(self, table: Mapping[str, str] = DEFAULT_COMMANDS, literal_word: str = "literal") -> None:
        self._table = {" ".join(k.casefold().split()): v for k, v in table.items() if k.strip()}
        if not self._table:
            self._pattern = None
            return
        keys = sorted(self._table, key=lambda k: (-len(k), k))
        alternation = "|".join(_key_pattern(k) for k in keys)
        literal = _key_pattern(literal_word) if literal_word.strip() else None
        literal_part = rf"(?P<literal>(?<!\w){literal}[,:.]?\s+)?" if literal else ""
        self._pattern = re.compile(
            rf"(?P<before>\s*){literal_part}(?<!\w)(?P<cmd>{alternation})(?!\w)(?P<after>[{re.escape(_AFTER_MARKS)}]*)"
            rf"(?P<trail>\s*)",
            re.IGNORECASE)
        self._keys = keys

    def __bool__(self) -> bool:
        return self._pattern is not None

    def _lookup(self, spoken: str) -> str:
        flat = re.sub(r"[\s-]+", "", spoken.casefold())
        for key in self._keys:
            if key.replace(" ", "") == flat:
                return self._table[key]
        raise KeyError(spoken)  # pragma: no cover - the pattern only matches keys

    def _replace(self, m: re.Match) -> str:
        before, trail = m.group("before"), m.group("trail")
        if m.groupdict().get("literal"):
            return before + m.group("cmd") + m.group("after") + trail
        value = self._lookup(m.group("cmd"))
        if value[:1].isalnum():
            before = before or (" " if m.start() > 0 else "")
        else:
            before = ""
        if value[-1:].isalnum() or value[-1:] in _AFTER_MARKS:
            trail = trail or (" " if m.end() < len(m.string) else "")
            trail = " " if trail else ""
        else:
            trail = ""
        return before + value + trail

    def apply(self, text: str) -> str:
        """``text`` with commands carried out and literal commands turned back into words."""
        if self._pattern is None:
            return text
        return self._pattern.sub(self._replace, text)


def apply_commands(text: str, table: Mapping[str, str] = DEFAULT_COMMANDS, literal_word: str = "literal") -> str:
    """One-call form of :class:`SpokenCommands`."""
    return SpokenCommands(table, literal_word).apply(text)

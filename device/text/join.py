"""Clean one segment's text and join segments: one space between, no doubled spaces or punctuation.

Whisper's own casing and punctuation inside a segment are kept. What changes:

* leading/trailing whitespace Whisper adds is stripped; runs of spaces become one space;
* no space before or after a line break ("Hello \\n world" -> "Hello\\nworld");
* control characters other than line break and tab are removed (the output goes to a keyboard);
* at a join: a continuation marker Whisper puts at the start of a segment ("...and then", "…and then") is
  dropped; a segment starting with a comma/period/colon/semicolon attaches to the previous word without a space
  ("Hello" + ", world" -> "Hello, world"), or loses that mark when the previous text already ends in
  punctuation or whitespace ("Hello." + ". World" -> "Hello. World");
* no separator after a line break, tab or space, or before a line break.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

ALLOWED_CONTROLS = frozenset("\n\t")
"""The only control characters the text pipeline ever outputs."""

_SPACES = re.compile(r"[^\S\n\t]+")  # whitespace other than line break and tab
_SPACE_AROUND_BREAK = re.compile(r" *\n *")
_SPACE_AROUND_TAB = re.compile(r" *\t *")
_LEADING_CONTINUATION = re.compile(r"^(?:\.{2,}|…)+\s*")
_LEADING_MARKS = ",.;:"
_END_PUNCT = tuple(".,;:!?…")


def sanitize(text: str) -> str:
    """NFC-normalize and remove control characters other than line break and tab.

    Carriage returns become line breaks; other line/paragraph separators (U+2028, U+2029, form feed, vertical
    tab) become line breaks; zero-width and format characters (category Cf) are removed.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
    out = []
    for ch in text:
        if ch in ALLOWED_CONTROLS:
            out.append(ch)
        elif ch in "\r\v\f\u2028\u2029\x85":
            out.append("\n")
        elif ch in "\u00a0\u2007\u202f":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    return "".join(out)


def clean(text: str) -> str:
    """One segment's text, tidy: sanitized, single spaces, no spaces at the ends or around line breaks/tabs."""
    text = _SPACES.sub(" ", sanitize(text))
    text = _SPACE_AROUND_BREAK.sub("\n", text)
    text = _SPACE_AROUND_TAB.sub("\t", text)
    return text.strip(" ")


def join_pair(done: str, text: str) -> tuple[str, str]:
    """How to append cleaned ``text`` after ``done`` (what was already produced).

    Returns ``(separator, text)``: the separator is "" or " ", and ``text`` may lose a leading continuation
    marker or a doubled punctuation mark. Both empty when nothing is left to append.
    """
    if not done:
        return "", text
    stripped = _LEADING_CONTINUATION.sub("", text)
    if stripped != text:
        text = stripped.lstrip(" ")
    if text and text[0] in _LEADING_MARKS:
        if done[-1].isspace() or done.endswith(_END_PUNCT):
            text = text.lstrip(_LEADING_MARKS + " ")
        else:
            return "", text
    if not text:
        return "", ""
    if done[-1].isspace() or text[0] in "\n\t ":
        return "", text
    return " ", text


def join(texts: Iterable[str]) -> str:
    """Join segment texts the way the pipeline does (no paragraph breaks, no trailing space)."""
    done = ""
    for raw in texts:
        sep, text = join_pair(done, clean(raw))
        done += sep + text
    return done

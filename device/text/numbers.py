"""Spoken numbers -> digits with text2num (``alpha2digit``): "twenty one apples" -> "21 apples".

Choices (``numbers_min`` and ``numbers_language`` settings):

* A number word standing alone that is below ``numbers_min`` (default 3) stays a word, so "one of them",
  "the two of us" and "I ate one" keep their words, while "three apples", "twenty one" and "one hundred" become
  digits. This is text2num's own ``threshold``; 0 converts every number.
* "hundreds of", "thousands of", ... and "a hundred", "a million" ("thanks a million") are left as words:
  text2num would turn them into "100 of" and "a 1000000"; "a hundred and twenty" is a number (120).
* Years 19xx and 20xx said in two halves become one number: "nineteen eighty four" -> "1984" (text2num gives
  "19 84"). Other pairs stay two numbers ("fifteen fifty" -> "15 50"), since they are as often prices or times.
* Line breaks and tabs are kept (text2num alone would fold them into spaces): each line is converted on its own.
* Languages: text2num's — en, fr, es, pt, de, nl, da, it.
"""

from __future__ import annotations

import re

from text_to_num import alpha2digit

LANGUAGES = ("en", "fr", "es", "pt", "de", "nl", "da", "it")
"""Languages text2num converts."""

_SCALES = r"(?:hundred|thousand|million|billion|trillion|dozen)"
# English spans that must stay words (see module docstring). Case-insensitive.
_PROTECT_EN = re.compile(rf"(?<!\w)(?:(?:a|an)\s+{_SCALES}|{_SCALES}s)(?!\w)", re.IGNORECASE)
_A_SCALE_AND = re.compile(r"(?<!\w)an?(\s+(?:hundred|thousand)\s+and\s+)(?=\w)", re.IGNORECASE)
_SPLIT_YEAR = re.compile(r"(?<![\d.,])(19|20) ([1-9]\d)(?!\d|[.,]\d|\s*(?:%|percent))")
_BREAKS = re.compile(r"([\n\t])")


def _convert_run(text: str, language: str, threshold: float) -> str:
    if not text.strip():
        return text
    # alpha2digit strips the ends; keep the original leading/trailing spaces so joins stay as they were.
    lead = text[:len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()):]
    out = alpha2digit(text, language, threshold=threshold)
    if language == "en":
        before = set(_SPLIT_YEAR.findall(text))
        out = _SPLIT_YEAR.sub(lambda m: m.group(0) if m.groups() in before else m.group(1) + m.group(2), out)
    return lead + out.strip() + trail


def _convert_line(line: str, language: str, threshold: float) -> str:
    if language != "en":
        return _convert_run(line, language, threshold)
    line = _A_SCALE_AND.sub(r"one\1", line)  # "a hundred and twenty" is a number: 120
    pieces = []
    pos = 0
    for m in _PROTECT_EN.finditer(line):
        pieces.append(_convert_run(line[pos:m.start()], language, threshold))
        pieces.append(m.group())
        pos = m.end()
    pieces.append(_convert_run(line[pos:], language, threshold))
    return "".join(pieces)


def numbers_to_digits(text: str, language: str = "en", min_value: float = 3) -> str:
    """``text`` with spoken numbers written as digits (see the module docstring for what stays a word).

    ``min_value``: lone numbers below this stay words. ``language``: one of :data:`LANGUAGES`.
    """
    if language not in LANGUAGES:
        raise ValueError(f"numbers: language {language!r} is not supported; choose one of {', '.join(LANGUAGES)}")
    parts = _BREAKS.split(text)
    return "".join(part if part in ("\n", "\t") else _convert_line(part, language, min_value) for part in parts)

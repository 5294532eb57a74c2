"""Paragraph breaks after long pauses: a pause longer than ``paragraph_pause_s`` starts a new paragraph."""

from __future__ import annotations

PARAGRAPH = "\n\n"


def starts_paragraph(pause_before_s: float, paragraph_pause_s: float, *, is_first: bool) -> bool:
    """True when a segment that follows ``pause_before_s`` seconds of silence starts a new paragraph.

    ``paragraph_pause_s`` 0 turns the rule off; the first segment of a transcript never starts one (there is
    nothing to separate it from).
    """
    return not is_first and paragraph_pause_s > 0 and pause_before_s > paragraph_pause_s


def paragraph_separator(done: str) -> str:
    """What to add after ``done`` so that the next text starts a paragraph: up to two line breaks, minus those
    already there ("" at the very start)."""
    if not done:
        return ""
    trailing = len(done) - len(done.rstrip("\n"))
    return PARAGRAPH[min(trailing, 2):]

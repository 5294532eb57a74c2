"""The initial prompt whisper.cpp gets with each segment: the user's vocabulary plus the tail of what was said
before. Whisper continues the prompt's style (spelling of names, casing, punctuation), so both help.

Pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_VOCABULARY_CHARS = 400
"""Longest vocabulary part of the prompt (characters ≈ 100 tokens); whisper.cpp keeps at most 224 prompt tokens
and a long prompt slows every decode."""


def vocabulary_part(vocabulary: Sequence[str], limit: int = MAX_VOCABULARY_CHARS) -> str:
    """``"Kubernetes, Ansible, Dr. Okafor."`` — the words in the user's order, cut to whole entries within
    ``limit`` characters; empty for no words."""
    words = [w.strip() for w in vocabulary if w and w.strip()]
    out: list[str] = []
    used = 0
    for word in words:
        cost = len(word) + 2
        if used + cost > limit:
            break
        out.append(word)
        used += cost
    if not out:
        return ""
    text = ", ".join(out)
    return text if text.endswith((".", "!", "?")) else text + "."


def context_tail(previous_text: str, max_chars: int) -> str:
    """The last ``max_chars`` characters of ``previous_text``, starting at a word boundary; empty for 0."""
    text = " ".join(previous_text.split())
    if max_chars <= 0 or not text:
        return ""
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    cut = tail.find(" ")
    return tail[cut + 1:] if 0 <= cut < len(tail) - 1 else tail


def build_prompt(vocabulary: Sequence[str], previous_text: str, context_chars: int) -> str:
    """Vocabulary first, then the recent text (closest to the audio, where it matters most)."""
    parts = [vocabulary_part(vocabulary), context_tail(previous_text, context_chars)]
    return " ".join(p for p in parts if p)

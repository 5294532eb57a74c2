"""The initial prompt: the user's vocabulary, then the tail of what came before."""

from __future__ import annotations

import pytest

from sttkb.asr.prompt import MAX_VOCABULARY_CHARS, build_prompt, context_tail, vocabulary_part


@pytest.mark.parametrize(("words", "expected"), [
    ((), ""),
    (("Kubernetes",), "Kubernetes."),
    (("Kubernetes", " Ansible ", ""), "Kubernetes, Ansible."),
    (("Dr. Okafor", "St."), "Dr. Okafor, St."),
])
def test_vocabulary_part(words, expected):
    assert vocabulary_part(words) == expected


def test_vocabulary_is_cut_to_whole_entries():
    words = [f"word{i:03d}" for i in range(200)]
    part = vocabulary_part(words)
    assert len(part) <= MAX_VOCABULARY_CHARS + 1
    assert part.endswith(".") and part.startswith("word000, word001")
    assert all(w in words for w in part.rstrip(".").split(", "))


@pytest.mark.parametrize(("text", "n", "expected"), [
    ("", 50, ""),
    ("short text", 0, ""),
    ("short   text\n", 50, "short text"),
    ("the quick brown fox jumps", 12, "fox jumps"),        # starts at a word boundary
    ("abcdefghijklmnop", 5, "lmnop"),                      # one long word: cut inside it
])
def test_context_tail(text, n, expected):
    assert context_tail(text, n) == expected


def test_prompt_puts_context_last():
    assert build_prompt(["Ansible"], "we deployed it yesterday", 100) == "Ansible. we deployed it yesterday"
    assert build_prompt([], "", 100) == ""
    assert build_prompt([], "hello there", 0) == ""

"""Filler-word removal keeps the sentence readable."""

from __future__ import annotations

import pytest

from sttkb.text.fillers import FillerRemover, remove_fillers

DEFAULT = ["um", "umm", "uh", "uhm", "er", "erm", "hmm", "mm"]


@pytest.mark.parametrize(("text", "expected"), [
    ("Um, I think we should go.", "I think we should go."),
    ("um, I think we should go.", "I think we should go."),
    ("Um, so we go.", "So we go."),
    ("Uh, um, so we go.", "So we go."),
    ("I think, um, we should go.", "I think, we should go."),
    ("apples, um, pears and plums", "apples, pears and plums"),
    ("So uh we went home.", "So we went home."),
    ("We went home, uh.", "We went home."),
    ("We went home. Um, then we ate.", "We went home. Then we ate."),
    ("Ummm, okay.", "Okay."),
    ("I was, uhh... thinking.", "I was, thinking."),
    ("Um.", "."),
    ("The umbrella is under the errand.", "The umbrella is under the errand."),  # whole words only
    ("Hmm, interesting.", "Interesting."),
    ("", ""),
])
def test_default_fillers(text, expected):
    assert remove_fillers(text, DEFAULT) == expected


def test_multi_word_fillers():
    assert remove_fillers("It was, you know, fine.", ["you know"]) == "It was, fine."


def test_empty_list_is_off():
    remover = FillerRemover([])
    assert not remover
    assert remover.apply("Um, hi.") == "Um, hi."

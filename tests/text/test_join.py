"""Joining segment texts: what the host receives reads as one text with single spaces."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from sttkb.text.join import clean, join, join_pair, sanitize


@pytest.mark.parametrize(("raw", "expected"), [
    (" Hello world.", "Hello world."),
    ("Hello   world. ", "Hello world."),
    ("Hello \n world", "Hello\nworld"),
    ("Hello\t\tworld", "Hello\t\tworld"),
    ("a \t b", "a\tb"),
    ("Bell\x07 and\x1b[31m escape", "Bell and[31m escape"),
    ("zero\u200bwidth", "zerowidth"),
    ("no\u00a0break", "no break"),
    ("line\r\nend", "line\nend"),
    ("Café", "Café"),
    ("   ", ""),
])
def test_clean(raw, expected):
    assert clean(raw) == expected


def test_sanitize_composes_accents():
    assert sanitize("Cafe\u0301") == "Café"


@pytest.mark.parametrize(("segments", "expected"), [
    ([" Hello world.", " How are you?"], "Hello world. How are you?"),
    (["Hello", ", world."], "Hello, world."),
    (["Hello.", ". World."], "Hello. World."),
    (["I went to the", "...shop."], "I went to the shop."),
    (["I went to the...", "…shop."], "I went to the... shop."),
    (["First line\n", "second line"], "First line\nsecond line"),
    (["First line", "\nsecond line"], "First line\nsecond line"),
    (["Keep Whisper's CASE", "and, its: punctuation!"], "Keep Whisper's CASE and, its: punctuation!"),
    (["", "  ", "Hello"], "Hello"),
    (["Hello", "", "there"], "Hello there"),
    (["Done.", "."], "Done."),
    (["你好。", "世界。"], "你好。 世界。"),
])
def test_join(segments, expected):
    assert join(segments) == expected


def test_join_pair_returns_separator_and_text():
    assert join_pair("", "Hello") == ("", "Hello")
    assert join_pair("Hello", "there") == (" ", "there")
    assert join_pair("Hello ", "there") == ("", "there")
    assert join_pair("Hello\n", "there") == ("", "there")


segment_text = st.text(alphabet=st.sampled_from(list("ab .,?!\n\t…\x00\u200b\u00a0\r")),
                       max_size=20)


@given(st.lists(segment_text, max_size=6))
def test_join_never_doubles_spaces_and_is_stable(segments):
    out = join(segments)
    assert "  " not in out
    assert " \n" not in out and "\n " not in out
    assert out == out.strip(" ")
    assert all(ch >= " " or ch in "\n\t" for ch in out)
    assert join([out]) == out
    assert clean(out) == out

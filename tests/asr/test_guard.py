"""The repetition guard: Whisper's decoding loops are cut, ordinary repetition in speech is kept."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from sttkb.asr.guard import LoopInfo, detect_loop, max_tokens_for, without_repeated_tail

LOOPS = [
    # (text, trimmed, unit)
    ("the the the the", "the", "the"),
    ("the the the the.", "the.", "the"),
    ("He said the the the the cat sat.", "He said the cat sat.", "the"),
    ("I'm going to I'm going to I'm going to", "I'm going to", "I'm going to"),
    ("I'm going to I'm going to I'm going to I'm go", "I'm going to", "I'm going to"),  # cut off mid-word
    ("I'm going to, I'm going to, I'm going to, I'm going to", "I'm going to,", "I'm going to,"),
    ("Thank you. Thank you. Thank you. Thank you. Thank you.", "Thank you.", "Thank you."),
    ("So we went to the shop and then we went to the shop and then we went to the shop and then we",
     "So we went to the shop and then", "we went to the shop and then"),
    ("ha ha ha ha", "ha", "ha"),
    ("THE The the the end", "THE end", "THE"),
    ("!!!!!!!!", "!", "!"),
    ("Wow!!!!!!!!!!", "Wow!", "!"),
    ("hahahahaha", "ha", "ha"),
    ("我们我们我们我们", "我们", "我们"),
    ("谢谢谢谢谢谢谢谢谢谢", "谢", "谢"),
    ("ああああああああああ", "あ", "あ"),
    ("one two three four five six seven eight nine ten eleven twelve " * 3,
     "one two three four five six seven eight nine ten eleven twelve ",
     "one two three four five six seven eight nine ten eleven twelve"),
]

NOT_LOOPS = [
    "very very good",
    "no, no, no",
    "No no no.",
    "that that you mentioned",
    "New York, New York",
    "bye bye",
    "ha ha ha",
    "Sooooo good!!!",
    "Hmmmm.",
    "1000000000 dollars",
    "I said it and I said it again.",
    "hahaha",
    "哈哈哈哈",
    "",
    "   ",
    "We had had enough.",
    "Buffalo buffalo buffalo",
]


@pytest.mark.parametrize(("text", "trimmed", "unit"), LOOPS)
def test_loops_are_cut_to_first_occurrence(text, trimmed, unit):
    info = detect_loop(text)
    assert info.trimmed == trimmed
    assert info.unit == unit
    assert info.found
    assert 0.0 < info.loop_fraction < 1.0


@pytest.mark.parametrize("text", NOT_LOOPS)
def test_ordinary_repetition_is_kept(text):
    assert detect_loop(text) == LoopInfo(trimmed=text, loop_fraction=0.0, unit=None)


def test_loop_fraction_tells_mostly_loop_from_a_short_stutter():
    mostly = detect_loop("I'm going to " * 20)
    stutter = detect_loop("Today I want to talk about the the the the weather in the north of the country.")
    assert mostly.loop_fraction > 0.9
    assert stutter.loop_fraction < 0.2
    assert stutter.trimmed == "Today I want to talk about the weather in the north of the country."


def test_several_loops_in_one_text_are_all_cut():
    info = detect_loop("the the the the cat and the dog the dog the dog")
    assert info.trimmed == "the cat and the dog"


words = st.sampled_from(["a", "the", "cat", "going", "to", "I'm", "no,", "very", "Hello.", "ok"])


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(word == other for other in it) for word in small)


@given(st.lists(words, max_size=30))
def test_trimming_only_removes_words(tokens):
    """The guard never types anything that was not in the text: its words are a subsequence of the input's."""
    text = " ".join(tokens)
    info = detect_loop(text)
    assert _is_subsequence(info.trimmed.split(), tokens)
    assert info.found == (info.trimmed != text)
    assert info.found == (info.loop_fraction > 0)


@given(st.lists(words, min_size=1, max_size=3, unique=True), st.integers(min_value=4, max_value=12))
def test_any_unit_repeated_many_times_is_found(unit, repeats):
    text = " ".join(unit * repeats)
    info = detect_loop(text)
    assert info.found
    assert len(info.trimmed.split()) <= len(unit) * 2


@pytest.mark.parametrize(("duration_s", "tps", "expected"), [
    (0.0, 6.0, 16),       # floor
    (1.0, 6.0, 16),
    (5.0, 6.0, 30),
    (5.1, 6.0, 31),       # rounds up
    (14.0, 6.0, 84),
    (29.0, 10.0, 224),    # whisper.cpp's limit
])
def test_max_tokens_is_proportional_to_duration(duration_s, tps, expected):
    assert max_tokens_for(duration_s, tps) == expected


def test_max_tokens_floor_is_configurable_and_bad_input_refused():
    assert max_tokens_for(1.0, 6.0, floor=4) == 6
    with pytest.raises(ValueError):
        max_tokens_for(-1.0, 6.0)
    with pytest.raises(ValueError):
        max_tokens_for(1.0, 0.0)


@pytest.mark.parametrize("text, kept", [
    # Whisper filling the end of a window (seen reading ahead on the split-sentence set)
    ("in Edinburgh walking around the castle. Walking around the castle.", "in Edinburgh walking around the castle."),
    ("much And eating far too much And eating far too much", "much And eating far too much"),
    ("ask what you can do for your country for your country.", "ask what you can do for your country."),
    # what people do say twice stays: short phrases, a repeat that does not end the text, no repeat at all
    ("I'm sorry, I'm sorry", "I'm sorry, I'm sorry"),
    ("New York, New York", "New York, New York"),
    ("no, no, no", "no, no, no"),
    ("over and over and over again", "over and over and over again"),
    ("let it be, let it be, and then", "let it be, let it be, and then"),
    ("ask not what your country can do for you", "ask not what your country can do for you"),
    ("", ""),
])
def test_without_repeated_tail_drops_only_a_doubled_closing_phrase(text, kept):
    assert without_repeated_tail(text) == kept

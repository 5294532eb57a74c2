"""Numbers to digits (text2num), with the cases where words must stay words."""

from __future__ import annotations

import pytest

from sttkb.text.numbers import LANGUAGES, numbers_to_digits


@pytest.mark.parametrize(("text", "expected"), [
    ("I have twenty one apples.", "I have 21 apples."),
    ("Three.", "3."),
    ("one hundred and twenty three", "123"),
    ("a hundred and twenty people", "120 people"),
    ("Two thousand twenty six", "2026"),
    ("I was born in nineteen eighty four.", "I was born in 1984."),
    ("The year twenty twenty six.", "The year 2026."),
    ("Page nineteen, line twenty.", "Page 19, line 20."),
    ("It costs fifteen fifty.", "It costs 15 50."),                    # not a year: no guess
    ("twenty-five percent", "25 percent"),
    ("three point one four", "3.14"),
    ("one of them", "one of them"),                    # lone small numbers stay words
    ("I ate one. He ate two.", "I ate one. He ate two."),
    ("hundreds of people", "hundreds of people"),
    ("thanks a million", "thanks a million"),
    ("I have a hundred problems", "I have a hundred problems"),
    ("I want to go to the store", "I want to go to the store"),
    ("twenty one apples\nand three pears", "21 apples\nand 3 pears"),   # line breaks survive
    ("twenty\tthree", "20\t3"),
    ("", ""),
])
def test_english(text, expected):
    assert numbers_to_digits(text) == expected


@pytest.mark.parametrize(("min_value", "text", "expected"), [
    (0, "one of them", "1 of them"),
    (0, "zero", "0"),
    (10, "I saw three cats and twelve dogs", "I saw three cats and 12 dogs"),
])
def test_min_value(min_value, text, expected):
    assert numbers_to_digits(text, min_value=min_value) == expected


@pytest.mark.parametrize(("language", "text", "expected"), [
    ("de", "Ich habe zweiundzwanzig Äpfel.", "Ich habe 22 Äpfel."),
    ("fr", "vingt-deux pommes", "22 pommes"),
    ("es", "veintidós manzanas", "22 manzanas"),
    ("de", "twenty one", "twenty one"),                 # the language matters
])
def test_other_languages(language, text, expected):
    assert numbers_to_digits(text, language) == expected


def test_unsupported_language_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        numbers_to_digits("one", "xx")
    assert "en" in LANGUAGES

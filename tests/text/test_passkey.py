"""A spoken Bluetooth passkey becomes exactly the six digits the person said, or None: never a guess."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sttkb.text.passkey import digits_heard, spoken_passkey

WORDS = "zero one two three four five six seven eight nine".split()


@pytest.mark.parametrize(("text", "expected"), [
    # digit words, as Whisper capitalises and punctuates them
    ("four seven two nine one three", "472913"),
    ("Four, seven, two, nine, one, three.", "472913"),
    ("Four seven two. Nine one three.", "472913"),
    ("four-seven-two-nine-one-three", "472913"),
    ("Four seven two... nine one three!", "472913"),
    ("FOUR SEVEN TWO NINE ONE THREE", "472913"),
    ("zero four seven two nine one", "047291"),
    ("Oh, four, seven, two, nine, one.", "047291"),        # "oh" among digits is 0
    ("O four seven two nine one", "047291"),
    ("four seven two nought nine one", "472091"),
    ("four seven two naught nine one", "472091"),
    ("oh five oh five oh five", "050505"),
    # double / triple
    ("double four seven two nine one", "447291"),
    ("Double-four, seven, two, nine, one.", "447291"),
    ("triple seven nine one three", "777913"),
    ("four double oh nine one three", "400913"),
    ("double 4 7 2 9 1", "447291"),
    ("triple seven triple three", "777333"),
    # figures in any grouping
    ("472913", "472913"),
    ("472 913", "472913"),
    ("472913.", "472913"),
    ("4 7 2 9 1 3", "472913"),
    ("472-913", "472913"),
    # points and colons between figures, as Whisper writes digits read out one by one (seen with tiny.en)
    ("0.2.9. 7.24.", "029724"),
    ("8.00, 8.75", "800875"),
    ("47.2913", "472913"),
    ("47:29:13", "472913"),
    ("4-7-2-9-1-3.", "472913"),
    ("4, 7, 2, 9, 1, 3.", "472913"),
    ("47 29 13", "472913"),
    ("47, 29, 13.", "472913"),
    ("472,913", "472913"),
    ("4. 7. 2. 9. 1. 3.", "472913"),
    ("047291", "047291"),
    # pairs, teens and tens
    ("forty seven twenty nine thirteen", "472913"),
    ("Forty-seven, twenty-nine, thirteen.", "472913"),
    ("four seventy two nine thirteen", "472913"),
    ("forty twenty thirteen", "402013"),                   # a tens word alone is X0
    ("ten eleven twelve", "101112"),
    ("oh five nineteen ninety", "051990"),
    ("forty oh five nine one", "400591"),                  # "oh" does not join a tens word
    ("ninety nine ninety nine ninety nine", "999999"),
    # hundreds
    ("four hundred seventy two nine hundred thirteen", "472913"),
    ("Four hundred and seventy-two, nine hundred and thirteen.", "472913"),
    ("four hundred seven nine hundred", "407900"),
    ("one hundred twelve three hundred", "112300"),
    ("nine hundred ninety, 456", "990456"),
    # mixed
    ("472 nine one three", "472913"),
    ("four seven two 913", "472913"),
    ("47 twenty nine 13", "472913"),
    # Whisper's sound-alikes among digits
    ("four seven to nine one three", "472913"),
    ("for seven too nine won three", "472913"),
    ("ate ate ate one two three", "888123"),
    ("forty to nine one three six", "429136"),             # "forty to" joins like "forty two"
    ("double to four seven nine one", "224791"),
    # lead-ins and hesitations
    ("The code is 472913.", "472913"),
    ("The code is: 4 7 2 9 1 3.", "472913"),
    ("Code is four seven two nine one three.", "472913"),
    ("The code's 472 913.", "472913"),
    ("The number is 472913", "472913"),
    ("It's four seven two nine one three.", "472913"),
    ("It\u2019s 472913.", "472913"),
    ("it is 472913", "472913"),
    ("Okay, 472913.", "472913"),
    ("OK so the code is 472913", "472913"),
    ("Um, four seven two, uh, nine one three.", "472913"),
    ("Uh, okay, um, it's 472913. Um.", "472913"),
    ("  four  seven  two  nine  one  three  ", "472913"),
])
def test_accepted(text, expected):
    assert spoken_passkey(text) == expected


@pytest.mark.parametrize("text", [
    # not six digits
    "",
    "   ",
    ".",
    "four seven two",
    "one two three four five six seven",
    "four seven two nine one three four",
    "1234567",
    "12345",
    "4 7 2 9 1 3 4 7 2 9 1 3",                           # said twice: no guess at which one
    "472913 472913",
    "Four seven two nine one three. Four seven two nine one three.",
    "The code is.",
    "Okay.",
    "Um.",
    # other words or signs
    "hello",
    "Thank you.",                                        # Whisper on silence
    "you",
    "[BLANK_AUDIO]",
    "(music)",
    "four seven two nine one three please type hello",
    "please four seven two nine one three",
    "four seven two and nine one three",
    "four seven two nil nine one",
    "the code for 47291",
    "forty to 9 1 3",                                    # 42 9 1 3: five digits
    "four seven to nine one three six",                  # a "to" among six digits makes seven
    "472913th",
    "#472913",
    "$472,913",
    "\"472913\"",
    "four seven two nine one three?!  hello",
    "Oh, 472913.",                                       # "oh" is a digit at the start: seven digits
    "Oh, okay, 472913.",                                 # ... and "okay" is not a lead-in after a digit
    "four seven two nine one three, okay",               # lead-ins only at the start
    "it 472913",
    "\u0664\u0667\u0662\u0669\u0661\u0663",              # non-ASCII digits
    "\uff14\uff17\uff12\uff19\uff11\uff13",
    "forty seven point two nine one three",             # "point" is a word, not a digit
    # thousands: refused (see the module docstring)
    "four hundred seventy two thousand nine hundred thirteen",
    "472 thousand 913",
    # ambiguous readings
    "forty, seven twenty nine thirteen",                 # 47 or 40 7?
    "forty um seven twenty nine thirteen",
    "forty 7 29 13",
    "forty 7 2 9 1",
    "nine hundred ninety 4 5 6",                         # 990 4 or 994?
    "four hundred, seventy two nine one",                # 400 or 470 / 472?
    "four hundred 72 913",
    "four hundred oh two nine one",
    "forty four hundred 13",
    "twelve hundred 13",
    "a hundred 913",
    "hundred 472",
    "four hundred and",
    "four hundred and 913",
    "for hundred 913",
    # double / triple without one digit right after
    "double",
    "four seven two nine one three double",
    "double forty seven nine one",
    "double 47 29 13",
    "double, four seven two nine one",
    "quadruple four seven nine",
])
def test_refused(text):
    assert spoken_passkey(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0),
    ("Um,", 0),
    ("The code", 0),                                     # a lead-in being said
    ("The code is", 0),
    ("It", 0),
    ("four", 1),
    ("Four, seven,", 2),
    ("four seven double", 2),                            # waiting for the doubled digit
    ("four seven double four", 4),
    ("472", 3),
    ("472 nine", 4),
    ("four seven two nine one three", 6),
    ("four seven two nine one three four", 7),           # too many: spoken_passkey refuses it
    ("forty", 0),                                        # may still become "forty seven"
    ("forty seven", 2),
    ("forty,", 0),
    ("four seven two nine forty", 4),
    ("forty twenty", 2),                                 # "forty" is settled once "twenty" follows
    ("four hundred", 0),                                 # may still become "four hundred seventy two"
    ("four hundred and", 0),
    ("four hundred seventy", 0),
    ("four hundred seventy two", 3),
    ("four hundred thirteen", 3),
    ("four hundred seventy two nine hundred", 3),
    ("Okay, the code is 47", 2),
    ("hello", None),
    ("four seven hello", None),
    ("Thank you.", None),
    ("[BLANK_AUDIO]", None),
    ("47.2", 3),                                        # a point is a separator between figures
    ("forty, seven", None),
    ("forty 7", None),
    ("four hundred, 7", None),
])
def test_digits_heard(text, expected):
    assert digits_heard(text) == expected


@pytest.mark.parametrize("text", [
    "four seven two nine one three", "Forty-seven, twenty-nine, thirteen.", "The code is 472 913.",
    "four hundred seventy two nine hundred thirteen", "Um, double four seven two nine one.",
])
def test_a_listener_stops_at_the_end(text):
    """Every word-prefix of an accepted text is a clean prefix, and only the whole text counts six digits."""
    words = text.split()
    counts = [digits_heard(" ".join(words[:n])) for n in range(len(words) + 1)]
    assert None not in counts
    assert max(counts[:-1]) < 6
    assert counts[-1] == 6


@given(st.text(alphabet="0123456789", min_size=6, max_size=6), st.sampled_from([" ", ", ", "-", "  "]))
def test_any_code_read_digit_by_digit(code, separator):
    spoken = separator.join(WORDS[int(d)] for d in code)
    assert spoken_passkey(spoken) == code
    assert spoken_passkey(spoken.capitalize() + ".") == code
    assert spoken_passkey(code) == code
    assert digits_heard(spoken) == 6


@given(st.text(max_size=60))
def test_answer_is_six_ascii_digits_or_none(text):
    answer = spoken_passkey(text)
    assert answer is None or (len(answer) == 6 and answer.isascii() and answer.isdigit())
    if answer is not None:
        assert digits_heard(text) is not None

"""Hallucination filter: made-up subtitle phrases and sound tags never get typed; real speech does."""

from __future__ import annotations

import pytest

from sttkb.text.hallucination import (HallucinationFilter, filter_text, normalize_phrase, strip_tags,
                                      without_leading_phrase)

LOUD = -20.0   # dBFS: ordinary speech into the mic
QUIET = -50.0  # dBFS: near silence that got past the VAD

CASES = [
    # (text, speech level dBFS, expected)
    ("Thank you for watching.", LOUD, ""),
    ("Thanks for watching!", QUIET, ""),
    ("THANK YOU FOR WATCHING", LOUD, ""),
    ("Please subscribe to my channel.", LOUD, ""),
    ("Subtitles by the Amara.org community", LOUD, ""),
    ("Subtitles by Steve", LOUD, ""),
    ("Send the report today. Thank you for watching.", LOUD, "Send the report today."),
    ("Thanks for watching! Send the report today.", LOUD, "Send the report today."),
    (" you", LOUD, ""),
    ("You.", QUIET, ""),
    ("Who won? You.", LOUD, "Who won? You."),
    ("Thank you.", QUIET, ""),
    ("Thank you.", LOUD, "Thank you."),
    ("Bye.", QUIET, ""),
    ("Bye.", LOUD, "Bye."),
    ("Okay.", QUIET, ""),
    ("Yes.", QUIET, "Yes."),           # quiet but not a stock phrase: kept
    ("Thank you, Anna.", QUIET, "Thank you, Anna."),
    ("[BLANK_AUDIO]", LOUD, ""),
    ("[Music]", QUIET, ""),
    ("(music)", LOUD, ""),
    ("(upbeat music)", LOUD, ""),
    ("*laughs*", LOUD, ""),
    ("♪♪", LOUD, ""),
    ("♪ la la la ♪", LOUD, ""),
    ("♪ Thank you for the music ♪", LOUD, ""),
    ("...", LOUD, ""),
    ("So that was funny (laughs) and then we left.", LOUD, "So that was funny and then we left."),
    ("Buy milk [inaudible] and bread.", LOUD, "Buy milk and bread."),
    ("Meet me at noon (see the invite).", LOUD, "Meet me at noon (see the invite)."),
    ("It was *really* good.", LOUD, "It was *really* good."),
    ("I will subscribe to the newsletter.", LOUD, "I will subscribe to the newsletter."),
    ("Thank you for listening.", LOUD, "Thank you for listening."),   # a real way to end a talk
    ("Thank you for watching the kids yesterday, Sam.", LOUD, "Thank you for watching the kids yesterday, Sam."),
]


@pytest.mark.parametrize(("text", "dbfs", "expected"), CASES)
def test_filter(text, dbfs, expected):
    assert filter_text(text, dbfs) == expected


@pytest.mark.parametrize(("extras", "text", "expected"), [
    (["Copyright WDR 2021"], "Copyright WDR 2021.", ""),
    (["Copyright WDR 2021"], "copyright wdr 2021", ""),
    (["Copyright WDR 2021"], "Copyright WDR 2021 was a good year.", "Copyright WDR 2021 was a good year."),
    (["  "], "Hello.", "Hello."),
])
def test_user_phrases_drop_whole_segments(extras, text, expected):
    assert filter_text(text, LOUD, extra_phrases=extras) == expected


def test_quiet_threshold_is_a_setting():
    strict = HallucinationFilter(quiet_dbfs=-10.0)
    lenient = HallucinationFilter(quiet_dbfs=-60.0)
    assert strict.apply("Thank you.", -20.0) == ""
    assert lenient.apply("Thank you.", -50.0) == "Thank you."


@pytest.mark.parametrize(("text", "expected"), [
    ("Thank you!", "thank you"),
    ("  Don’t   forget, to  SUBSCRIBE.", "don't forget to subscribe"),
    ("Amara.org", "amara org"),
])
def test_normalize_phrase(text, expected):
    assert normalize_phrase(text) == expected


def test_strip_tags_keeps_words_outside_tags():
    assert strip_tags("[Music] Hello there ♪").split() == ["Hello", "there"]


@pytest.mark.parametrize("decoded, kept", [
    ("Hello, welcome. Ask not what your country can do for you.", "Ask not what your country can do for you."),
    ("hello welcome ask not", "ask not"),                          # case and punctuation do not hide the copy
    ("Hello - welcome! Ask not", "Ask not"),
    ("Hello, welcome.", ""),                                       # nothing but the copy: nothing to type
    ("Hello, welcomed guests.", "Hello, welcomed guests."),       # only begins like it: what the user said
    ("Hello, everyone. Welcome.", "Hello, everyone. Welcome."),
    ("Ask not. Hello, welcome.", "Ask not. Hello, welcome."),     # not at the start
    ("Hello", "Hello"),
    ("", ""),
])
def test_a_copy_of_the_lead_in_at_the_start_is_dropped(decoded, kept):
    assert without_leading_phrase(decoded, "Hello, welcome.") == kept

"""sttkb.text.boundary.split_after: what Whisper wrote at the seam between a held phrase and the next one."""

from __future__ import annotations

import pytest

from sttkb.text.boundary import Seam, split_after, words_after


@pytest.mark.parametrize("held, joint, seam", [
    # a comma at the seam: the sentence goes on, and the comma is typed with the new words
    ("And so my fellow Americans.", "And so my fellow Americans, ask not what your country",
     Seam(True, ", ask not what your country")),
    # nothing at the seam: the sentence goes on
    ("I was thinking that we could.", "I was thinking that we could maybe paint the kitchen.",
     Seam(True, "maybe paint the kitchen.")),
    ("Can you tell me?", "Can you tell me where the nearest pharmacy is?", Seam(True, "where the nearest pharmacy is?")),
    # a name right after the seam still continues the sentence (no mark there)
    ("My sister Margaret moved to.", "My sister Margaret moved to Lisbon after her degree.",
     Seam(True, "Lisbon after her degree.")),
    # Whisper ends the sentence at the seam
    ("My sister Margaret moved to Lisbon.", "My sister Margaret moved to Lisbon. After she finished",
     Seam(False, "After she finished", ".")),
    ("What a surprise!", "What a surprise! See you tonight.", Seam(False, "See you tonight.", "!")),
    ('He said "stop."', 'He said "stop." Then he left.', Seam(False, "Then he left.", ".")),
    # trailing off is not a sentence end
    ("So we went.", "So we went... and came back.", Seam(True, "and came back.")),
    # the joint text heard the held phrase a little differently: the seam is after its last word
    ("When the trainer I've met the station.", "When the train arrives at the station, please stand",
     Seam(True, ", please stand")),
    ("Don't forget.", "Don\u2019t forget, the keys.", Seam(True, ", the keys.")),
    ("The quick brown fox jumps over the lazy dog.", "The quick brown fox jumps over the lazy nard. Please send",
     Seam(False, "Please send", ".")),                      # its last word heard differently
])
def test_the_seam(held, joint, seam):
    assert split_after(held, joint) == seam


@pytest.mark.parametrize("held, joint", [
    ("hello there.", "Goodbye."),                                    # not found at all
    ("Ask not.", "Ask not."),                                        # nothing follows it
    ("We met at the station now.", "We met at the stadium and then"),    # its last words are not there
    ("Call me.", "Well, so, anyway, call me tomorrow."),             # the joint text starts with other words
    ("one two three four five six.", "one nine eight seven six and more"),  # too few of its words
    ("Moved to Lisbon.", "Moved to Lisbon, moved to Lisbon after her degree."),  # said twice: typed twice
    ("", "Anything."),
    ("Anything.", ""),
])
def test_no_seam_when_the_held_phrase_is_not_at_the_start(held, joint):
    assert split_after(held, joint) is None


def test_words_after_keeps_only_the_new_audio_s_words():
    """A decode that heard phrases already typed, then new audio: the new words are kept even when Whisper heard the
    typed ones differently this time (words heard otherwise or added there are not the new audio's)."""
    typed = "And so am I fellow Americans.".split()
    assert words_after("And so my fellow Americans, ask not".split(), typed) == ["ask", "not"]
    assert words_after("And so my dear fellow Americans ask not".split(), typed) == ["ask", "not"]   # one more
    assert words_after("ask not".split(), []) == ["ask", "not"]
    assert words_after("And so am I fellow Americans.".split(), typed) == []                  # nothing new heard
    assert words_after("And so fellow Americans ask not what".split(), typed) == ["ask", "not", "what"]  # one fewer

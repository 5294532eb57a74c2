"""The whole text pipeline: segment texts in, exactly what the host receives out."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from sttkb.config import parse_config
from sttkb.config.text import TextSettings
from sttkb.text.pipeline import TextPipeline, has_content

LOUD = -20.0
QUIET = -55.0

PLAIN = TextSettings(trailing_space=False)
ALL_ON = TextSettings(trailing_space=False, spoken_commands=True, numbers_to_digits=True, remove_fillers=True,
                      paragraph_pause_s=5.0, replacements={"chat gpt": "ChatGPT", "one drive": "OneDrive"})


def run(settings: TextSettings, segments: list[tuple[str, float, float]]) -> tuple[str, list[str]]:
    """Feed (text, pause_before_s, speech_dbfs) segments, then end the transcript (the release: a held sentence end
    is typed); return the typed text and the pieces."""
    pipeline = TextPipeline(settings)
    pieces = [pipeline.process(text, pause_before_s=pause, speech_dbfs=dbfs, is_first=(i == 0))
              for i, (text, pause, dbfs) in enumerate(segments)]
    pieces.append(pipeline.flush())
    return "".join(pieces), pieces


CASES = [
    # (id, settings, segments, typed)
    ("joins with one space", PLAIN,
     [(" Hello world.", 0, LOUD), (" How are you?", 1.0, LOUD)], "Hello world. How are you?"),
    ("drops hallucinated segments", PLAIN,
     [(" Hello.", 0, LOUD), (" Thank you for watching!", 2.0, QUIET), ("[BLANK_AUDIO]", 1.0, QUIET),
      (" Thank you.", 1.0, QUIET), (" Bye.", 1.0, LOUD)], "Hello. Bye."),
    ("trailing space after each segment", TextSettings(),
     [(" Hello.", 0, LOUD), (" Bye.", 1.0, LOUD)], "Hello. Bye. "),
    ("features off by default", TextSettings(trailing_space=False),
     [(" Um, new line, twenty one chat gpt.", 0, LOUD)], "Um, new line, twenty one chat gpt."),
    ("everything on", ALL_ON,
     [(" Um, I asked chat gpt for twenty one ideas.", 0, LOUD), (" New line.", 1.0, LOUD),
      (" Save them to one drive.", 1.0, LOUD), (" Next topic.", 8.0, LOUD)],
     "I asked ChatGPT for 21 ideas.\nSave them to OneDrive.\n\nNext topic."),
    ("literal command", ALL_ON,
     [(" Say literal new line to break a line.", 0, LOUD)], "Say new line to break a line."),
    ("paragraph after a long pause", TextSettings(trailing_space=False, paragraph_pause_s=3.0),
     [("First.", 0, LOUD), ("Second.", 2.0, LOUD), ("Third.", 4.0, LOUD)], "First. Second.\n\nThird."),
    ("paragraph not before the first segment", TextSettings(trailing_space=False, paragraph_pause_s=3.0),
     [("First.", 30.0, LOUD)], "First."),
    ("command and paragraph do not stack up", ALL_ON,
     [("First. New paragraph.", 0, LOUD), ("Second.", 9.0, LOUD)], "First.\n\nSecond."),
    ("filler-only segment is dropped", ALL_ON,
     [("Hello.", 0, LOUD), (" Um.", 1.0, LOUD), (" Bye.", 1.0, LOUD)], "Hello. Bye."),
    ("continuation marker and doubled punctuation", PLAIN,
     [("I went to the", 0, LOUD), ("...shop.", 1.0, LOUD), (". Then home.", 1.0, LOUD)],
     "I went to the shop. Then home."),
    ("control characters never typed", PLAIN, [("Bell\x07 and \x1b[1m escape\x00.", 0, LOUD)],
     "Bell and [1m escape."),
]


@pytest.mark.parametrize(("settings", "segments", "typed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pipeline(settings, segments, typed):
    assert run(settings, segments)[0] == typed


def test_dropped_segment_returns_empty_string_and_keeps_the_join():
    pipeline = TextPipeline(PLAIN)
    assert pipeline.process("Hello.", pause_before_s=0, speech_dbfs=LOUD, is_first=True) == "Hello"
    assert pipeline.process("[Music]", pause_before_s=1, speech_dbfs=LOUD, is_first=False) == ""
    assert pipeline.held == "."                       # a dropped segment decides nothing
    assert pipeline.process("Bye.", pause_before_s=1, speech_dbfs=LOUD, is_first=False) == ". Bye"
    assert pipeline.flush() == "."


def test_reset_and_is_first_start_a_new_transcript():
    pipeline = TextPipeline(PLAIN)
    pipeline.process("Hello.", pause_before_s=0, speech_dbfs=LOUD, is_first=True)
    pipeline.reset()
    assert pipeline.held == ""
    assert pipeline.process("again.", pause_before_s=0, speech_dbfs=LOUD, is_first=False) == "again"
    assert pipeline.process("New.", pause_before_s=0, speech_dbfs=LOUD, is_first=True) == "New"


# --- sentence ends held back (hold_sentence_end_s) ----------------------------------------------------------
SPACED = TextSettings()            # trailing_space on, as shipped
COMMANDS = TextSettings(trailing_space=False, spoken_commands=True, commands={"period": ".", "full stop": "."})


@pytest.mark.parametrize(("settings", "segments", "pieces"), [
    # a thinking pause: the next phrase starts in lower case, so the first one's period was not a sentence end
    (PLAIN, ["And so my fellow Americans.", "ask not what your country can do for you."],
     ["And so my fellow Americans", " ask not what your country can do for you", "."]),
    # a new sentence: the held mark is typed first, then the space and the words
    (PLAIN, ["The meeting is at noon.", "Please bring the report."],
     ["The meeting is at noon", ". Please bring the report", "."]),
    # "?" and "!" confirmed by the next sentence are typed, never swallowed
    (PLAIN, ["Are you there?", "Hello!", "Good."], ["Are you there", "? Hello", "! Good", "."]),
    # "I" starts upper case: counted as a new sentence (Whisper's own mark stays)
    (PLAIN, ["I think so.", "I will."], ["I think so", ". I will", "."]),
    # with the trailing space: it is held with the mark
    (SPACED, ["One.", "two.", "Three."], ["One", " two", ". Three", ". "]),
    # a comma-like start or "..." continues the sentence
    (PLAIN, ["We went home.", ", then we slept."], ["We went home", ", then we slept", "."]),
    (PLAIN, ["I went to the shop.", "...and then home."], ["I went to the shop", " and then home", "."]),
    # a digit is not a continuation we can tell: the mark is typed
    (PLAIN, ["Call me at.", "5 o'clock."], ["Call me at", ". 5 o'clock", "."]),
    # spoken punctuation is the user's own: typed at once, never held
    (COMMANDS, ["It works period", "next"], ["It works.", " next", ""]),
    # off
    (TextSettings(trailing_space=False, hold_sentence_end_s=0), ["One.", "two."], ["One.", " two.", ""]),
    # "..." and "?!" at the end are typed as they are
    (PLAIN, ["Well...", "maybe?!"], ["Well...", " maybe?!", ""]),
])
def test_sentence_ends_wait_for_the_next_phrase(settings, segments, pieces):
    assert run(settings, [(text, 1.0, LOUD) for text in segments])[1] == pieces


def test_a_paragraph_break_types_the_held_mark_before_it():
    settings = TextSettings(trailing_space=False, paragraph_pause_s=3.0)
    assert run(settings, [("First part.", 0, LOUD), ("second part.", 5.0, LOUD)])[1] == [
        "First part", ".\n\nsecond part", "."]


def test_what_is_typed_is_never_taken_back():
    """Every piece only appends: the whole text is the pieces in order, and each held mark appears at most once."""
    pipeline = TextPipeline(PLAIN)
    typed = ""
    for i, text in enumerate(["Hello.", "world.", "How are you?", "fine!", "Bye."]):
        piece = pipeline.process(text, pause_before_s=1.0, speech_dbfs=LOUD, is_first=i == 0)
        assert "\b" not in piece and "\x7f" not in piece
        typed += piece
    typed += pipeline.flush()
    assert typed == "Hello world. How are you fine! Bye."


def test_settings_from_toml_drive_the_pipeline():
    config = parse_config('[text]\nspoken_commands = true\ntrailing_space = false\n'
                          '[text.commands]\n"next line" = "\\n"\n"tab key" = "\\t"\n', "test")
    pipeline = TextPipeline(config.text)
    out = pipeline.process("Name tab key value next line done", pause_before_s=0, speech_dbfs=LOUD,
                           is_first=True)
    assert out == "Name\tvalue\ndone"


@pytest.mark.parametrize(("text", "expected"), [
    ("", False), (" . , ", False), ("a", True), ("7", True), ("\n", True), ("👍", True), ("¿?", False),
])
def test_has_content(text, expected):
    assert has_content(text) is expected


# --- properties -----------------------------------------------------------------------------------------------

words = st.sampled_from(["Hello", "world", "new line", "new paragraph", "literal", "um", "twenty one", "you",
                         "[Music]", "♪", ",", ".", "...", "\x00", "\x1b", "\t", "\n", "  ", "\u200b", "Thank you",
                         "chat gpt", "é", "ß", "日本"])
segment = st.lists(words, max_size=8).map(" ".join)
flags = st.fixed_dictionaries({
    "spoken_commands": st.booleans(), "numbers_to_digits": st.booleans(), "remove_fillers": st.booleans(),
    "trailing_space": st.booleans(), "paragraph_pause_s": st.sampled_from([0.0, 2.0]),
})


@hyp_settings(max_examples=150, deadline=None)
@given(flags, st.lists(st.tuples(segment, st.floats(0, 5), st.sampled_from([LOUD, QUIET])), max_size=6))
def test_output_is_plain_text_with_single_spaces(options, segments):
    settings = dataclasses.replace(TextSettings(replacements={"chat gpt": "ChatGPT"}), **options)
    typed, pieces = run(settings, segments)
    assert all(ch >= " " and ch != "\x7f" or ch in "\n\t" for ch in typed), repr(typed)
    assert "  " not in typed, repr(typed)
    assert "\n " not in typed, repr(typed)
    assert not typed.startswith(" ")
    if not options["trailing_space"]:
        assert " \n" not in typed, repr(typed)
        assert not typed.endswith(" ")
    assert all(piece == "" or piece.strip(" \n\t") or "\n" in piece or "\t" in piece for piece in pieces)

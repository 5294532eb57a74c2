"""Spoken commands: "new line" breaks the line, "literal new line" types the words."""

from __future__ import annotations

import pytest

from sttkb.text.commands import DEFAULT_COMMANDS, SpokenCommands, apply_commands


@pytest.mark.parametrize(("text", "expected"), [
    ("Dear John, new line. How are you?", "Dear John,\nHow are you?"),
    ("Dear John new line how are you", "Dear John\nhow are you"),
    ("New line.", "\n"),
    ("New Line", "\n"),
    ("new-line", "\n"),
    ("Newline. Next.", "\nNext."),
    ("First point. New paragraph. Second point.", "First point.\n\nSecond point."),
    ("one new line two new line three", "one\ntwo\nthree"),
    ("Type literal new line please.", "Type new line please."),
    ("Literal, new line.", "new line."),
    ("literal new paragraph", "new paragraph"),
    ("the new lines are here", "the new lines are here"),       # whole words only
    ("renew line items", "renew line items"),
    ("a new linear model", "a new linear model"),
    ("a literal translation", "a literal translation"),          # literal alone is just a word
    ("", ""),
])
def test_default_commands(text, expected):
    assert apply_commands(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello comma world", "Hello, world"),
    ("Hello world full stop", "Hello world."),
    ("Name tab key tab value", "Name\tkey\tvalue"),
    ("verbatim comma", "comma"),
    ("Hello smiley face.", "Hello :-)"),
])
def test_user_table_and_literal_word(text, expected):
    table = {"comma": ",", "full stop": ".", "tab": "\t", "smiley face": " :-)"}
    assert apply_commands(text, table, literal_word="verbatim") == expected


def test_empty_table_is_off():
    commands = SpokenCommands({})
    assert not commands
    assert commands.apply("new line") == "new line"


def test_default_table_is_line_and_paragraph_only():
    assert DEFAULT_COMMANDS == {"new line": "\n", "new paragraph": "\n\n"}

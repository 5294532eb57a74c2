"""Replacements dictionary: the user's fixes for words Whisper gets wrong."""

from __future__ import annotations

import pytest

from sttkb.text.replacements import Replacements, replace_words

TABLE = {
    "chat gpt": "ChatGPT",
    "chat": "talk",
    "sttkb": "STT-KB",
    "new york city": "NYC",
    "c++": "C plus plus",
    "Jon": "John",
    "  ": "ignored",
}


@pytest.mark.parametrize(("text", "expected"), [
    ("I asked chat gpt today.", "I asked ChatGPT today."),
    ("I asked Chat GPT today.", "I asked ChatGPT today."),           # case-insensitive
    ("I asked CHAT   GPT today.", "I asked ChatGPT today."),        # any spacing
    ("Let's chat later.", "Let's talk later."),                      # shorter key where the longer doesn't match
    ("chatter and chatbots", "chatter and chatbots"),                # whole words only
    ("Chat, chat GPT and chat.", "talk, ChatGPT and talk."),
    ("sttkb types.", "STT-KB types."),
    ("I love New York City!", "I love NYC!"),
    ("I love New York.", "I love New York."),
    ("I write c++ code", "I write C plus plus code"),
    ("jon, Jon and JON", "John, John and John"),
    ("Jonathan", "Jonathan"),
    ("", ""),
])
def test_replacements(text, expected):
    assert replace_words(text, TABLE) == expected


def test_replacement_text_is_not_replaced_again():
    assert replace_words("a b", {"a": "b", "b": "c"}) == "b c"


def test_empty_table_changes_nothing():
    table = Replacements({})
    assert not table
    assert table.apply("Hello  there") == "Hello  there"

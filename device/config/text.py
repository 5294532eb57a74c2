"""[text] settings: what happens to the transcript between whisper.cpp and the keyboard.

See docs/text.md for examples of each option.
"""

from __future__ import annotations

from dataclasses import dataclass

from sttkb.config.schema import setting

NUMBER_LANGUAGES = ("en", "fr", "es", "pt", "de", "nl", "da", "it")
"""Languages text2num converts (kept here so loading the config does not import text2num)."""


@dataclass(frozen=True)
class TextSettings:
    replacements: dict[str, str] = setting({}, "Whole-word, case-insensitive replacements: heard = typed")
    spoken_commands: bool = setting(False, "Turn 'new line', 'new paragraph', ... into line breaks")
    commands: dict[str, str] = setting({"new line": "\n", "new paragraph": "\n\n"},
                                       "Spoken commands (used when spoken_commands is on): words = text typed")
    literal_word: str = setting("literal", "Say this before a command word to type the words themselves")
    numbers_to_digits: bool = setting(False, "Write spoken numbers as digits (text2num)")
    numbers_language: str = setting("en", "Language of the number words", choices=NUMBER_LANGUAGES)
    numbers_min: int = setting(3, "A lone number below this stays a word ('one of them'); 0 = convert all",
                               min=0, max=1_000_000)
    remove_fillers: bool = setting(False, "Drop filler words (um, uh, er, ...)")
    fillers: list[str] = setting(["um", "umm", "uh", "uhm", "er", "erm", "hmm", "mm"], "Filler words to drop")
    paragraph_pause_s: float = setting(0.0, "Start a new paragraph after a pause longer than this; 0 = never",
                                       min=0.0, max=600.0)
    hallucination_phrases: list[str] = setting([], "Extra phrases to drop when they are a segment's whole text")
    quiet_dbfs: float = setting(-40.0, "Below this speech level, stock phrases ('Thank you.', 'Bye.') are "
                                       "dropped as made up (dBFS)", min=-90.0, max=0.0)
    trailing_space: bool = setting(True, "Type a space after each transcript so the next one joins cleanly")
    hold_sentence_end_s: float = setting(2.0, "Keep a phrase's closing . ! ? back until the next phrase shows "
                                              "whether the sentence goes on (a thinking pause must not end it), "
                                              "at most this long after the speech; 0 = type it at once (seconds)",
                                         min=0.0, max=30.0)
    decode_across_pause: bool = setting(False, "While holding sentence ends, decode a phrase that follows the last one "
                                               "within hold_sentence_end_s together with it, so Whisper hears both "
                                               "sides of the pause and decides the sentence break (fewer false "
                                               "breaks, better words; about twice the whisper.cpp CPU: worth it on "
                                               "a Pi 5 or a desktop, not on a Zero 2 W)")
    wait_for_next_phrase: bool = setting(False, "Type each phrase when the next one has been heard too (or after "
                                                "hold_sentence_end_s of silence, or at the release): Whisper reads "
                                                "every phrase with the speech on both sides of its pauses, as in a "
                                                "whole recording, so a sentence with thinking pauses reads as one; "
                                                "text comes one phrase later, for about 1.3-1.8x the whisper.cpp "
                                                "CPU (a Pi 5 or a desktop). Replaces decode_across_pause")

    def __post_init__(self) -> None:
        for table in ("commands", "replacements"):
            for words, typed in getattr(self, table).items():
                if not words.strip():
                    raise ValueError(f"{table}: an empty key never matches anything; remove it")
                if any(c < " " and c not in "\n\t" or c == "\x7f" for c in typed):
                    raise ValueError(f"{table}.{words}: {typed!r} contains a control character; only line breaks "
                                     f"(\\n) and tabs (\\t) can be typed")

"""[text] settings: what happens to the transcript between whisper.cpp and the keyboard."""

from __future__ import annotations

from dataclasses import dataclass

from device.config.schema import setting


@dataclass(frozen=True)
class TextSettings:
    replacements: dict[str, str] = setting({}, "Whole-word, case-insensitive replacements: heard = typed")
    spoken_commands: bool = setting(False, "Turn 'new line', 'new paragraph', ... into line breaks")
    literal_word: str = setting("literal", "Say this before a command word to type the words themselves")
    numbers_to_digits: bool = setting(False, "Write spoken numbers as digits (text2num)")
    remove_fillers: bool = setting(False, "Drop filler words (um, uh, er, ...)")
    fillers: list[str] = setting(["um", "umm", "uh", "uhm", "er", "erm", "hmm", "mm"], "Filler words to drop")
    paragraph_pause_s: float = setting(0.0, "Start a new paragraph after a pause longer than this; 0 = never",
                                       min=0.0, max=600.0)
    hallucination_phrases: list[str] = setting([], "Extra phrases to drop when they are a segment's whole text")
    trailing_space: bool = setting(True, "Type a space after each transcript so the next one joins cleanly")

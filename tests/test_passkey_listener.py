"""Hearing a spoken pairing code (sttkb.passkey_listener) with the real parts: whisper.cpp on the embedded default
model, the project's VAD segmenter and espeak-ng speech.

Only the physical microphone cannot exist here: its stand-in is :class:`sttkb.audio.sources.ArraySource` replaying
the recording in real time, 30 ms chunks (a microphone's pace, so the printed timings are the box's, minus its
slower CPU). The recordings are room noise, the code, and room noise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pytest

from sttkb.audio.sources import ArraySource
from sttkb.passkey_listener import GIVE_UP_S, hear_passkey, starts_like_a_code
from tests.speech import RATE, concat, have_espeak, keyboard_clicks, pink_noise, room, speak

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_espeak(), reason="espeak-ng missing")]

LEAD_S = 1.0


class Said:
    """A recording of ``text`` after :data:`LEAD_S` of room noise, and where its speech ends (seconds)."""

    def __init__(self, text: str, voice: str = "en-us", wpm: int = 160, *, tail_s: float = 3.0) -> None:
        speech = speak(text, voice, wpm)
        self.audio = concat(room(LEAD_S), speech + room(len(speech) / RATE, seed=5)[:len(speech)], room(tail_s))
        self.speech_end_s = LEAD_S + len(speech) / RATE


@dataclass
class Heard:
    answer: str | None
    taken_s: float
    """Audio the listener had taken from the microphone when it returned (seconds): where in the recording it
    decided, whatever the CPU's speed."""
    after_speech_s: float
    """Wall time from the end of speech to the answer (seconds): on this loaded 2-core machine, not the box."""


def listen(engine, said: Said, *, timeout_s: float = 25.0) -> Heard:
    """Run the listener on the recording as a live microphone."""
    mic = ArraySource(said.audio, realtime=True)
    taken = 0

    def chunks():
        nonlocal taken
        for chunk in mic.chunks():
            taken += len(chunk)
            yield chunk

    answer = hear_passkey(chunks(), engine, deadline=time.monotonic() + timeout_s)
    return Heard(answer, taken / RATE, time.monotonic() - mic.wall_time_of(said.speech_end_s))


CODES = [
    # (what is said, voice, words per minute, the code)
    ("four seven two nine one three", "en-us", 160, "472913"),
    ("four seventy two, nine thirteen", "en-gb", 150, "472913"),      # "472 913" read as two numbers
    ("five oh three, eight two one", "en-gb", 150, "503821"),         # "oh" for zero
    ("three oh five eight two one", "en-us+m3", 170, "305821"),
    ("double four, seven one three five", "en-gb-x-rp", 155, "447135"),
    ("the code is five three eight, two one six", "en-us", 150, "538216"),
    ("it's nine one five, two six four", "en-us", 160, "915264"),
    ("zero four seven, one one six", "en-us+f3", 160, "047116"),
]


@pytest.mark.parametrize("text,voice,wpm,code", CODES, ids=[f"{c[3]}-{c[1]}" for c in CODES])
def test_the_code_is_heard_soon_after_the_speech_ends(engine, text, voice, wpm, code):
    said = Said(text, voice, wpm)
    heard = listen(engine, said)
    assert heard.answer == code
    print(f"\n{code} ({voice}, {text!r}): answered {heard.after_speech_s:.2f} s after the end of speech "
          f"(decided {heard.taken_s - said.speech_end_s:.2f} s of audio after it)")
    # Decided during the pause, before the phrase would have closed ([vad] end_silence_ms, 0.7 s).
    assert heard.taken_s < said.speech_end_s + 0.7


def test_a_sentence_before_the_code_is_ignored(engine):
    code = Said("four seven two nine one three", "en-us", 160)
    hello = speak("hello, can you hear me", "en-us", 160)
    code.audio = concat(room(0.5), hello, room(1.5), code.audio)
    code.speech_end_s += 0.5 + len(hello) / RATE + 1.5
    assert listen(engine, code).answer == "472913"


def test_seven_digits_are_no_code_and_end_the_attempt_at_once(engine):
    said = Said("one two three four five six seven", "en-us", 160, tail_s=6.0)
    heard = listen(engine, said)
    assert heard.answer is None
    assert heard.taken_s < said.speech_end_s + 1.0  # long before the 25 s deadline


def test_some_digits_then_silence_end_the_attempt_without_waiting_for_the_deadline(engine):
    """The user said part of the code and stopped (or the rest was not heard): after GIVE_UP_S of silence the
    attempt ends with no code, so they can say it again at once rather than wait out the host's 30 s."""
    said = Said("four seven two", "en-us", 150, tail_s=GIVE_UP_S + 3.0)
    heard = listen(engine, said)
    assert heard.answer is None
    assert said.speech_end_s + GIVE_UP_S <= heard.taken_s < said.speech_end_s + GIVE_UP_S + 1.5


def test_digits_then_other_words_are_no_code(engine):
    said = Said("four seven two, banana bread", "en-us", 150, tail_s=4.0)
    heard = listen(engine, said)
    assert heard.answer is None
    assert heard.taken_s < said.speech_end_s + 1.0


@pytest.mark.parametrize("name,audio", [
    ("silence", np.zeros(6 * RATE, dtype=np.float32)),
    ("room", room(6.0)),
    ("noise and typing", concat(room(1.0), pink_noise(1.5, -30.0), keyboard_clicks(2.0), room(1.5))),
], ids=["silence", "room", "noise"])
def test_no_speech_gives_none_at_the_deadline(engine, name, audio, caplog):
    mic = ArraySource(audio, realtime=True)
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="sttkb.passkey_listener"):
        answer = hear_passkey(mic.chunks(), engine, deadline=start + 3.0)
    spent = time.monotonic() - start
    assert answer is None
    assert 3.0 <= spent < 6.0  # a decode under way when the deadline passes finishes first
    assert "before the deadline" in caplog.text


def test_the_end_of_the_chunks_ends_listening(engine):
    """The caller stops listening by ending the stream (the daemon ends its capture session)."""
    said = Said("four seven two", "en-us", 160, tail_s=0.5)
    answer = hear_passkey(ArraySource(said.audio).chunks(), engine, deadline=time.monotonic() + 25)
    assert answer is None


def test_nothing_heard_is_logged_even_at_debug(engine, caplog):
    said = Said("four seven two nine one three", "en-us", 160)
    decoded: list[str] = []
    real = engine.decode_private

    class Spy:
        max_segment_s = engine.max_segment_s

        def decode_private(self, segment, *, max_tokens):
            decoded.append(real(segment, max_tokens=max_tokens))
            return decoded[-1]

    with caplog.at_level(logging.DEBUG):
        answer = hear_passkey(ArraySource(said.audio).chunks(), Spy(), deadline=time.monotonic() + 25)
    assert answer == "472913"
    assert decoded and all(text not in caplog.text for text in decoded)
    for secret in ("472913", "472 913", "four seven"):
        assert secret not in caplog.text


@pytest.mark.parametrize("text,expected", [
    ("472, please", True), ("The code is 5", True), ("Double 4", True),
    ("Thank you for watching.", False), ("Hello, can you hear me?", False), ("", False), ("the code is", False),
])
def test_a_phrase_starts_like_a_code_when_its_first_words_are_digits(text, expected):
    assert starts_like_a_code(text) is expected

"""A spoken 6-digit Bluetooth pairing passkey -> exactly six ASCII digits, or None.

The person reads aloud the code their computer shows; the speech recognizer (Whisper) writes it in many ways.
The answer authenticates a Bluetooth pairing, so the rule is: never guess. A refused answer only makes the user
say the code again; a wrong one pairs (or fails to pair) with a code the user never said. The text is a secret:
nothing here logs it.

Accepted, in any mix, case-insensitively:

* figures, in any grouping: "472913", "472 913", "47 29 13", "4 7 2 9 1 3", "472-913", "4, 7, 2, 9, 1, 3.", and
  with points or colons between them, as Whisper often writes digits read out one by one ("0.2.9. 7.24.",
  "8.00, 8.75"): only the digits and their order count, and those are what was said;
* digit words: "zero", "oh", "o", "nought", "naught", "one" ... "nine" ("oh five" -> "05");
* Whisper's sound-alikes of digit words: "to"/"too" -> 2, "for"/"fore" -> 4, "won" -> 1, "ate" -> 8. They can
  only ever be digits here because no other word is allowed beside the digits: "please type it to me" is refused
  for its other words, and a stray "to" between six real digits makes seven digits, which is refused too;
* "double X" / "triple X" with X one digit (word or figure): "double four" -> "44", "triple-seven" -> "777";
* teens and tens as two digits: "thirteen" -> "13", "forty seven" or "forty-seven" -> "47", "forty to" -> "42",
  "forty" alone -> "40";
* hundreds: "four hundred [and] seventy two" -> "472", "four hundred thirteen" -> "413", "four hundred seven"
  -> "407", "four hundred" -> "400". Only "one" ... "nine" may come before "hundred", and after it only its own
  tens and units or the end of the text;
* a lead-in at the start: "the code is", "code is", "the code's", "the number is", "it's", "it is", "okay", "ok",
  "so"; hesitations anywhere ("um", "uh", "er", "hmm", ...); the punctuation , . : ; ! ? and hyphens between words.

Refused (None):

* fewer or more than six digits, including a code said twice ("472913 472913");
* any other word or sign: "please", "thousand", "point", "nil", "[BLANK_AUDIO]", "Thank you.", quotes, "$", "%";
  "nil" is not needed to read a code, and "thousand" would make "four hundred seventy two thousand ..." a
  second way to say the same thing, not worth its ambiguities (Whisper writes such a number as "472,913" anyway);
* readings that could mean two codes: a tens word and a unit separated by a pause or hesitation ("forty, seven",
  "forty um seven": 47 or 40 7?), a tens word before a one-figure number ("forty 7"), and anything after "hundred"
  but its own tens/units ("four hundred, 72", "four hundred oh two", "forty four hundred");
* "double"/"triple" without one digit right after it.

``digits_heard`` lets a listener stop as soon as six digits are heard: the number of digits a text fixes so far,
or None when it holds something that cannot be part of a passkey. A trailing "forty" or "four hundred" is not
counted yet ("forty seven" and "four hundred seventy two" keep the count but change the digits), and a trailing
"double" or "hundred and" adds nothing until its digit comes.
"""

from __future__ import annotations

import re

PASSKEY_DIGITS = 6

_ONES = {w: n for n, w in enumerate("one two three four five six seven eight nine".split(), start=1)}
_SOUNDALIKES = {"to": 2, "too": 2, "for": 4, "fore": 4, "won": 1, "ate": 8}
_JOINABLE = _ONES | _SOUNDALIKES  # a unit that joins a tens word: "forty seven", "forty to" -> 47, 42
_DIGIT_WORDS = dict.fromkeys(("zero", "oh", "o", "nought", "naught"), 0) | _JOINABLE
_TEENS = {w: n for n, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split(), start=10)}
_TENS = {w: n for n, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
_REPEATS = {"double": 2, "triple": 3}
_FIGURES = set("0123456789")
_HESITATIONS = {"um", "umm", "uh", "uhm", "er", "erm", "hmm", "mm"}
_LEAD_INS = (("the", "code", "is"), ("code", "is"), ("the", "code's"), ("the", "number", "is"),
             ("it's",), ("it", "is"), ("okay",), ("ok",), ("so",))

PAUSE = ","
"""Token for punctuation and hesitations: skipped between numbers, but it separates "forty" from "seven"."""

_SCAN = re.compile(r"(?P<word>[a-z]+(?:'[a-z]+)*)|(?P<figures>[0-9]+)|(?P<pause>[,.:;!?\u2026]+)"
                   r"|(?P<space>[\s\-\u2010-\u2013]+)|(?P<other>.)", re.DOTALL)

Reading = tuple[str, int, int]
"""Digits of one number, index of the token after it, and how many of its digits may still change."""


def _tokens(text: str) -> list[str] | None:
    """Lower-case words, figure runs and PAUSE marks (never first, last or doubled); None on any other sign."""
    text = text.lower().replace("\u2019", "'")
    tokens: list[str] = []
    for match in _SCAN.finditer(text):
        kind, token = match.lastgroup, match.group()
        if kind == "other":
            return None
        if kind == "space":
            continue
        if kind == "pause" or token in _HESITATIONS:
            if tokens and tokens[-1] != PAUSE:
                tokens.append(PAUSE)
        else:
            tokens.append(token)
    if tokens and tokens[-1] == PAUSE:
        tokens.pop()
    return tokens


def _at(tokens: list[str], i: int) -> str | None:
    return tokens[i] if i < len(tokens) else None


def _after_lead_in(tokens: list[str]) -> int:
    """Index of the first token after the lead-in phrases; all of them if the rest only begins a lead-in."""
    i = 0
    while True:
        i += _at(tokens, i) == PAUSE
        rest = tuple(tokens[i:])
        phrase = next((p for p in _LEAD_INS if rest[:len(p)] == p or p[:len(rest)] == rest), None)
        if not rest or phrase is None:
            return i
        i += min(len(phrase), len(rest))


def _tens(tokens: list[str], i: int, tens: int) -> Reading | None:
    """The number that starts with a tens word; tokens[i] follows the tens word."""
    following = _at(tokens, i)
    if following in _JOINABLE:
        return f"{tens}{_JOINABLE[following]}", i + 1, 0
    after_pause = _at(tokens, i + 1) if following == PAUSE else following
    if after_pause in _JOINABLE or (after_pause in _FIGURES and after_pause != "0"):
        return None  # "forty, seven", "forty 7": 47 or 40 7?
    return f"{tens}0", i, 2 if following is None else 0


def _hundreds(tokens: list[str], i: int, hundreds: int) -> Reading | None:
    """The rest of "four hundred [and] ..."; tokens[i] follows "hundred"."""
    has_and = _at(tokens, i) == "and"
    i += has_and
    following = _at(tokens, i)
    if following in _TEENS:
        return f"{hundreds}{_TEENS[following]}", i + 1, 0
    if following in _ONES:
        return f"{hundreds}0{_ONES[following]}", i + 1, 0
    if following in _TENS:
        rest = _tens(tokens, i + 1, _TENS[following])
        return None if rest is None else (f"{hundreds}{rest[0]}", rest[1], 3 if rest[2] else 0)
    if following is None and not has_and:
        return f"{hundreds}00", i, 3
    return None  # "four hundred, 72", "four hundred oh two", "four hundred and": not one clear number


def _number(tokens: list[str], i: int) -> Reading | None:
    """The number that starts at tokens[i], or None if it is not one clear digit phrase."""
    token, following = tokens[i], _at(tokens, i + 1)
    if token.isdigit():
        return token, i + 1, 0
    if token in _ONES and following == "hundred":
        return _hundreds(tokens, i + 2, _ONES[token])
    if token in _DIGIT_WORDS:
        return str(_DIGIT_WORDS[token]), i + 1, 0
    if token in _TEENS:
        return str(_TEENS[token]), i + 1, 0
    if token in _TENS:
        return _tens(tokens, i + 1, _TENS[token])
    if token in _REPEATS and following is not None and (following in _DIGIT_WORDS or following in _FIGURES):
        digit = str(_DIGIT_WORDS.get(following, following))
        return digit * _REPEATS[token], i + 2, 0
    return None


def _read(tokens: list[str]) -> tuple[str, int] | None:
    """All digits the tokens spell and how many of the last ones may still change; None if not a digit phrase."""
    digits, unsettled = "", 0
    i = _after_lead_in(tokens)
    while i < len(tokens):
        if tokens[i] == PAUSE:
            i += 1
            continue
        number = _number(tokens, i)
        if number is None:
            return None
        part, i, unsettled = number
        digits += part
    return digits, unsettled


def spoken_passkey(text: str) -> str | None:
    """The six digits a person clearly said in ``text`` (recognizer output), or None (see the module docstring)."""
    tokens = _tokens(text)
    reading = None if tokens is None else _read(tokens)
    if reading is None or len(reading[0]) != PASSKEY_DIGITS:
        return None
    return reading[0]


def digits_heard(text: str) -> int | None:
    """How many passkey digits ``text`` already fixes, or None if it cannot be the start of a spoken passkey.

    A listener may stop once this reaches six and then call ``spoken_passkey`` on the same text.
    """
    tokens = _tokens(text)
    if tokens is None:
        return None
    if tokens and (tokens[-1] in _REPEATS or tokens[-2:] == ["hundred", "and"]):
        tokens.pop()  # "four double", "four hundred and": waiting for the next word
    reading = _read(tokens)
    return None if reading is None else len(reading[0]) - reading[1]

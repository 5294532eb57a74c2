"""Where a phrase ends inside Whisper's text of that phrase and the next one, decoded together.

A phrase's closing mark is held back until the next phrase shows whether the sentence goes on. Whisper decides
that best when it hears both sides of the pause, as it does on a whole recording: the chain decodes the held
phrase and the next one as one segment and asks :func:`split_after` what Whisper wrote at the seam. The held
phrase's words are already typed; only the seam's mark and the new words are used.

Pure functions.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from sttkb.text.hallucination import normalize_phrase

_WORD = re.compile(r"[\w']+")
_CLOSERS = "\"')]\u201d\u2019"
MIN_MATCHED = 0.5
"""At least this share of the held phrase's words must be found at the start of the joint text (else no split)."""


@dataclass(frozen=True)
class Seam:
    """What follows the held phrase in the joint text."""

    continues: bool
    """False when Whisper ended a sentence at the seam (. ! ?), True otherwise."""
    rest: str
    """The new phrase's text; starts with the seam's comma-like mark (", ...") when Whisper put one there."""
    mark: str = ""
    """The sentence end Whisper wrote at the seam (".", "!", "?"); "" when the sentence goes on."""


def _words(token: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", token).lower().replace("\u2019", "'"))


def split_after(held: str, joint: str) -> Seam | None:
    """The seam after ``held`` (the held phrase's text) in ``joint`` (Whisper's text of it and the next phrase).

    None when the held phrase cannot be found at the start of ``joint`` (its last two words unmatched, or fewer
    than :data:`MIN_MATCHED` of its words in order), nothing follows it, or it follows itself.
    """
    want = [w for token in held.split() for w in _words(token)]
    tokens = joint.split()
    flat = [(w, i) for i, token in enumerate(tokens) for w in _words(token)]
    if not want or not flat:
        return None
    matcher = difflib.SequenceMatcher(None, want, [w for w, _ in flat], autojunk=False)
    blocks = [b for b in matcher.get_matching_blocks() if b.size]
    if not blocks:
        return None
    end_a, end_b = blocks[-1].a + blocks[-1].size, blocks[-1].b + blocks[-1].size
    if end_a == len(want) - 1 and end_b < len(flat):
        end_b += 1                           # its last word heard differently ("dog" / "nard"): the next one
    elif end_a != len(want):
        return None                          # the held phrase's end is not in Whisper's text
    if sum(b.size for b in blocks) < MIN_MATCHED * len(want):
        return None
    last = flat[end_b - 1][1]
    if blocks[0].b > 2:                      # the joint text starts with words the held phrase does not have
        return None
    rest = tokens[last + 1:]
    if not rest:
        return None
    again = [w for token in rest for w in _words(token)][:len(want)]
    if len(want) >= 2 and again == want:
        return None                          # Whisper said the held phrase twice: its words would be typed again
    seam = tokens[last].rstrip(_CLOSERS)
    if seam.endswith(("..", "\u2026")):       # trailing off: the sentence goes on
        return Seam(True, " ".join(rest))
    if seam.endswith((".", "!", "?")):
        return Seam(False, " ".join(rest), seam[-1])
    if seam.endswith((",", ";", ":")):
        return Seam(True, seam[-1] + " " + " ".join(rest))
    return Seam(True, " ".join(rest))


def words_after(decoded: list[str], before: list[str]) -> list[str]:
    """The words of ``decoded`` after its first k words, k chosen so that those k words are as close (word edit
    distance, case and punctuation ignored as the hallucination filter compares phrases) to ``before`` as any prefix
    is; the longest such prefix on a tie.

    Used where a decode heard phrases whose text is known already (typed, or read before) followed by new audio:
    the new audio's words are what is left once the known words, however Whisper heard them this time, are cut
    off. Never fails: with nothing in common the cut falls where the count of words says."""
    d, b = [normalize_phrase(w) for w in decoded], [normalize_phrase(w) for w in before]
    row = list(range(len(d) + 1))               # distance between no words of `before` and d[:k]
    for i, word in enumerate(b, 1):
        nxt = [i] + [0] * len(d)
        for k in range(1, len(d) + 1):
            nxt[k] = min(row[k] + 1, nxt[k - 1] + 1, row[k - 1] + (word != d[k - 1]))
        row = nxt
    best = min(row)
    return decoded[max(k for k, dist in enumerate(row) if dist == best):]

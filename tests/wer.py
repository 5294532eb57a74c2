"""Word error rate for tests (jiwer) with the normalizer the benchmark documents: lower case, punctuation
removed, runs of spaces collapsed. Numbers are not rewritten (the tests speak words, Whisper writes words)."""

from __future__ import annotations

import re

import jiwer


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s']", " ", text)
    return " ".join(text.split())


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return jiwer.wer(ref, hyp) if hyp else 1.0

"""The one WER (`model import --check`, the benchmark, the tests): normalizer cases and agreement with jiwer."""

from __future__ import annotations

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sttkb.models.wer import normalize, normalize_words, wer, word_error_rate


@pytest.mark.parametrize("text, words", [
    ("Hello, World!", ["hello", "world"]),
    ("Don’t stop — it's 10 o'clock.", ["don't", "stop", "it's", "10", "o'clock"]),
    ("'quoted' words", ["quoted", "words"]),
    ("snake_case and CAPS", ["snake", "case", "and", "caps"]),
    ("Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ", ["fullwidth", "text"]),
    ("  ", []),
    ("Grüße aus Köln", ["grüße", "aus", "köln"]),
])
def test_normalizer(text, words):
    assert normalize_words(text) == words


def test_counts():
    r = word_error_rate("the cat sat on the mat", "The cat sat on a mat.")
    assert (r.errors, r.reference_words, r.wer) == (1, 6, pytest.approx(1 / 6))
    assert word_error_rate("a b c", "").wer == 1.0
    assert word_error_rate("a b", "a x b y z").wer == 1.5          # insertions count
    assert word_error_rate("", "").wer == 0.0 and word_error_rate("", "x").wer == 1.0


words = st.lists(st.sampled_from(["a", "b", "c", "the", "cat"]), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(words, st.lists(st.sampled_from(["a", "b", "c", "the", "cat", "dog"]), max_size=12))
def test_agrees_with_jiwer(ref, hyp):
    assert word_error_rate(" ".join(ref), " ".join(hyp)).wer == pytest.approx(jiwer.wer(" ".join(ref), " ".join(hyp)))


def test_the_shorthands_the_tests_use():
    assert normalize("Ask not — what your COUNTRY can-do,  for you!") == "ask not what your country can do for you"
    assert wer("ask not what your country", "ask what your country") == pytest.approx(0.2)


@pytest.mark.parametrize(("reference", "hypothesis", "errors"), [
    ("And so my fellow Americans, ask not", "And so my fellow Americans, ask not", 0),
    ("Americans, ask not what", "Americans. Ask not! What", 4),   # a period, two capitals, an exclamation
    ("Hello world.", "hello world", 2),
    ("It’s “fine”.", "It's \"fine\".", 0),                           # curly and straight quotes are the same
    ("one two", "", 2),
])
def test_formatted_error_rate_counts_case_and_punctuation(reference, hypothesis, errors):
    from sttkb.models.wer import formatted_error_rate
    result = formatted_error_rate(reference, hypothesis)
    assert (result.errors, result.reference_words) == (errors, len(reference.split()))

"""Paragraph break after a long pause."""

from __future__ import annotations

import pytest

from sttkb.text.paragraphs import paragraph_separator, starts_paragraph


@pytest.mark.parametrize(("pause", "threshold", "is_first", "expected"), [
    (5.0, 3.0, False, True),
    (3.0, 3.0, False, False),   # longer than, not equal
    (1.0, 3.0, False, False),
    (60.0, 0.0, False, False),  # 0 = off
    (60.0, 3.0, True, False),   # nothing before the first segment
])
def test_starts_paragraph(pause, threshold, is_first, expected):
    assert starts_paragraph(pause, threshold, is_first=is_first) is expected


@pytest.mark.parametrize(("done", "expected"), [
    ("", ""),
    ("Hello.", "\n\n"),
    ("Hello. ", "\n\n"),
    ("Hello.\n", "\n"),
    ("Hello.\n\n", ""),
])
def test_paragraph_separator(done, expected):
    assert paragraph_separator(done) == expected

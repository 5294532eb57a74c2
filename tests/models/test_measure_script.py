"""scripts/measure_quants.py (the quant table in docs/models.md) still runs and measures what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_measure_quants_prints_a_row_per_quant():
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "measure_quants.py"), "--quants", "q8_0"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    header, *rows = run.stdout.splitlines()[1:]
    assert header.split() == ["quant", "size", "MB", "convert", "s", "load", "s", "transcribe", "s", "WER"]
    assert len(rows) == 1 and rows[0].split()[0] == "q8_0", run.stdout
    size_mb, wer_percent = float(rows[0].split()[1]), float(rows[0].split()[-1].rstrip("%"))
    assert 40 < size_mb < 47 and wer_percent <= 10, run.stdout

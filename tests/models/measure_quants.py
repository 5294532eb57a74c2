"""Print size, conversion time, load time, transcription time and WER per quant type (not a test).

    .venv/bin/python -m tests.models.measure_quants [CT2_OR_HF_DIR]   (default: the embedded tiny.en)

Speech: an ~18 s espeak-ng paragraph made on the fly. whisper.cpp with 2 threads, greedy, one warm-up call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sttkb.models.audio_io import read_audio_16k
from sttkb.models.convert import convert
from sttkb.models.default import embedded_source
from sttkb.models.quant import Quant
from sttkb.models.sources import open_source
from sttkb.models.validate import load_model
from sttkb.models.wer import word_error_rate

PARAGRAPH = ("The library opens at nine in the morning and closes late in the evening. Visitors can borrow up to "
             "five books at a time, and the staff will gladly help anyone who is looking for something special. "
             "On weekends the reading room is quiet, and many students come to study there.")


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else embedded_source()
    with tempfile.TemporaryDirectory() as tmp:
        raw, wav = Path(tmp) / "p.raw.wav", Path(tmp) / "p.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), PARAGRAPH], check=True)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav)], check=True)
        audio = read_audio_16k(wav)
        print(f"source {src}; audio {len(audio) / 16000:.1f} s; load avg {os.getloadavg()[0]:.1f}")
        print(f"{'quant':6} {'size MB':>8} {'convert s':>9} {'load s':>6} {'transcribe s':>12} {'WER':>6}")
        for quant in Quant:
            out = Path(tmp) / f"{quant.label}.bin"
            ckpt = open_source(src)
            start = time.monotonic()
            with open(out, "wb") as f:
                convert(ckpt, f, quant, progress=False)
            conv_s = time.monotonic() - start
            ckpt.close()
            start = time.monotonic()
            model = load_model(out, threads=2)
            load_s = time.monotonic() - start
            model.transcribe(audio[:16000], language="en")                   # warm-up
            start = time.monotonic()
            text = " ".join(s.text for s in model.transcribe(audio, language="en"))
            tr_s = time.monotonic() - start
            w = word_error_rate(PARAGRAPH, text).wer
            print(f"{quant.label:6} {out.stat().st_size / 1e6:8.1f} {conv_s:9.1f} {load_s:6.2f} {tr_s:12.2f} {w:6.1%}")
            del model
            out.unlink()


if __name__ == "__main__":
    main()

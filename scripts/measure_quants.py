"""Print size, conversion time, load time, transcription time and WER per quant type (the table in docs/models.md).

    .venv/bin/python scripts/measure_quants.py [CT2_OR_HF_DIR] [--quants f16,q8_0,...]

Default source: the embedded tiny.en. Speech: an ~18 s espeak-ng paragraph made on the fly (needs espeak-ng).
whisper.cpp with 2 threads, greedy, one warm-up call. A developer's measurement, not part of the product.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from sttkb.audio.files import read_audio
from sttkb.models.convert import convert
from sttkb.models.default import embedded_source
from sttkb.models.quant import Quant
from sttkb.models.sources import open_source
from sttkb.models.validate import load_model
from sttkb.models.wer import wer

PARAGRAPH = ("The library opens at nine in the morning and closes late in the evening. Visitors can borrow up to "
             "five books at a time, and the staff will gladly help anyone who is looking for something special. "
             "On weekends the reading room is quiet, and many students come to study there.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", nargs="?", type=Path, help="model directory or ggml file (default: tiny.en)")
    parser.add_argument("--quants", default=",".join(q.label for q in Quant),
                        help="comma-separated quant types (default: all)")
    args = parser.parse_args(argv)
    src = args.source or embedded_source()
    quants = [Quant.parse(q) for q in args.quants.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "paragraph.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), PARAGRAPH], check=True)
        audio = read_audio(wav)
        print(f"source {src}; audio {len(audio) / 16000:.1f} s; load avg {os.getloadavg()[0]:.1f}")
        print(f"{'quant':6} {'size MB':>8} {'convert s':>9} {'load s':>6} {'transcribe s':>12} {'WER':>6}")
        for quant in quants:
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
            w = wer(PARAGRAPH, text)
            print(f"{quant.label:6} {out.stat().st_size / 1e6:8.1f} {conv_s:9.1f} {load_s:6.2f} {tr_s:12.2f} {w:6.1%}",
                  flush=True)
            del model
            out.unlink()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Peak memory (RSS) of whisper.cpp on the default model: after loading, after the warm-up, after a greedy decode of
the JFK recording, then (``--beam``) after a beam-5 decode of it — each process's peak only grows, so run it once
without and once with ``--beam`` and compare the last lines.

Usage: .venv/bin/python scripts/measure_beam_memory.py [--beam]
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    from sttkb.asr.engine import WhisperEngine
    from sttkb.audio.files import read_audio
    from sttkb.config import Config
    from sttkb.speech import choose_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--beam", action="store_true", help="also decode once with beam search (beam size 5)")
    args = p.parse_args()
    config = Config()
    engine = WhisperEngine(choose_model(config).path, config.asr)
    print(f"loaded          peak RSS {peak_mb():6.0f} MB")
    engine.warm_up()
    print(f"warmed up       peak RSS {peak_mb():6.0f} MB")
    audio = read_audio(Path(__file__).resolve().parent.parent / "device" / "bench_data" / "01-jfk.wav")
    engine.recognize(audio, "Hello, welcome.")
    print(f"greedy decode   peak RSS {peak_mb():6.0f} MB")
    if args.beam:
        engine.recognize(audio, "Hello, welcome.", beam_size=5)
        print(f"beam-5 decode   peak RSS {peak_mb():6.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

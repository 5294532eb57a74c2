#!/usr/bin/env python3
"""``[asr] beam_when_idle`` off against on, in one process on one engine, alternating clip by clip (so a shared,
drifting machine load hits both alike; ``sttkb bench`` runs each configuration in its own child, minutes apart).

Each clip of a built-in ``sttkb bench`` set is dictated on its own, replayed at 1x, twice (off, on; the order
alternates):

- hold-to-talk: released 0.3 s after its last speech (as ``sttkb bench`` section 7): release -> final text, and end
  of speech -> text of the phrases a pause ended before the release (the beam decode delays those);
- hands-free (``--hands-free``): the clip then 1.5 s of room, listened to hands-free: end of speech -> text of every
  phrase its pause ended (what the user waits for there).

Usage: .venv/bin/python scripts/measure_idle_beam.py [--set voices|split] [--repeats N] [--hands-free]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time


def main() -> int:
    import numpy as np

    from sttkb.asr.engine import WhisperEngine
    from sttkb.audio.files import read_audio
    from sttkb.audio.sources import ArraySource
    from sttkb.chain import Transcriber
    from sttkb.cli.bench import SETS, cut_after_speech, load_clips
    from sttkb.config import Config
    from sttkb.speech import choose_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=sorted(SETS), default="voices")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hands-free", action="store_true")
    args = p.parse_args()

    base = Config()
    engine = WhisperEngine(choose_model(base).path, dataclasses.replace(base.asr, threads=args.threads))
    engine.warm_up()
    chains = {k: Transcriber(dataclasses.replace(base, asr=dataclasses.replace(base.asr, threads=args.threads,
                                                                               beam_when_idle=k == "on")),
                             engine=engine) for k in ("off", "on")}
    room = (np.random.default_rng(0).standard_normal(24000) * 10 ** (-65 / 20)).astype(np.float32)
    release: dict[str, list[float]] = {"off": [], "on": []}
    spoken: dict[str, list[float]] = {"off": [], "on": []}
    beams = {k: [0, 0] for k in chains}
    for rep in range(args.repeats):
        for i, clip in enumerate(load_clips(SETS[args.set][0])):
            audio = cut_after_speech(read_audio(clip.path))
            if args.hands_free:
                audio = np.concatenate([audio, room])
            for k in (("off", "on") if (i + rep) % 2 == 0 else ("on", "off")):
                t = chains[k]
                started = time.monotonic()
                pieces = [x for x in t.stream(ArraySource(audio, realtime=True), awaited_at_pause=args.hands_free)
                          if not x.sentence_end]
                ended = t.stats.source_ended_at
                waited = [x.ready_at - (started + x.speech_end_s) for x in pieces
                          if x.speech_end_s is not None and x.ready_at < ended]
                spoken[k] += waited
                beams[k][0] += t.stats.beam_used
                beams[k][1] += t.stats.beam_abandoned
                line = f"{clip.name:24} {k:3}"
                if not args.hands_free:
                    release[k].append(pieces[-1].ready_at - ended)
                    line += f"  release -> text {release[k][-1]:.2f} s"
                line += (f"  end of speech -> text before the release " if not args.hands_free else
                         "  end of speech -> text ") + (" ".join(f"{w:.2f}" for w in waited) or "-")
                print(line + f"  (beam decodes typed {t.stats.beam_used}, abandoned {t.stats.beam_abandoned})",
                      flush=True)
    for k in chains:
        parts = [f"{k:3}:"]
        if release[k]:
            parts.append(f"release -> text median {statistics.median(release[k]):.2f} s, max {max(release[k]):.2f} s "
                         f"({len(release[k])} releases);")
        if spoken[k]:
            parts.append(f"end of speech -> text of phrases a pause ended: median {statistics.median(spoken[k]):.2f} s, "
                         f"max {max(spoken[k]):.2f} s ({len(spoken[k])});")
        parts.append(f"beam decodes typed {beams[k][0]}, abandoned {beams[k][1]}")
        print(" ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

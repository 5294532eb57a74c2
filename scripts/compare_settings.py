#!/usr/bin/env python3
"""Values of one setting side by side, in one process on one engine, alternating clip by clip (so a shared, drifting
machine load hits every value alike; ``sttkb bench`` runs each configuration in its own child, minutes apart).

Each clip of a built-in ``sttkb bench`` set is dictated on its own, replayed at 1x, once per value (the order
rotates from clip to clip):

- hold-to-talk: released 0.3 s after its last speech (as ``sttkb bench`` section 7): release -> final text, and end
  of speech -> text of the phrases a pause ended before the release;
- hands-free (``--hands-free``): the clip then 1.5 s of room, listened to hands-free: end of speech -> text of every
  phrase its pause ended (what the user waits for there).

Also counted per value: early decodes during pauses (``[vad] speculate_ms``) used, wasted and stopped part way, and
beam decodes (``[asr] beam_when_idle``) typed and abandoned.

Usage: .venv/bin/python scripts/compare_settings.py SECTION.NAME VALUE,VALUE[,...] [--set voices|split]
           [--repeats N] [--hands-free]
e.g.   scripts/compare_settings.py asr.beam_when_idle false,true --set split
       scripts/compare_settings.py vad.speculate_ms 300,150
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time


def parse_value(text: str, like: object) -> object:
    """``text`` as the type of the setting's default ``like``."""
    if isinstance(like, bool):
        if text.lower() not in ("true", "false"):
            raise SystemExit(f"{text!r}: give true or false")
        return text.lower() == "true"
    return type(like)(text)


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
    p.add_argument("setting", help="SECTION.NAME, e.g. vad.speculate_ms")
    p.add_argument("values", help="comma-separated values to compare, e.g. 300,150")
    p.add_argument("--set", choices=sorted(SETS), default="voices")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hands-free", action="store_true")
    args = p.parse_args()

    base = Config()
    base = dataclasses.replace(base, asr=dataclasses.replace(base.asr, threads=args.threads))
    section, _, name = args.setting.partition(".")
    settings = getattr(base, section, None)
    if settings is None or not hasattr(settings, name):
        raise SystemExit(f"{args.setting}: no such setting (SECTION.NAME as in the config file, e.g. vad.speculate_ms)")
    values = args.values.split(",")
    engine = WhisperEngine(choose_model(base).path, base.asr)
    engine.warm_up()
    chains = {v: Transcriber(dataclasses.replace(base, **{section: dataclasses.replace(
        settings, **{name: parse_value(v, getattr(settings, name))})}), engine=engine) for v in values}
    room = (np.random.default_rng(0).standard_normal(24000) * 10 ** (-65 / 20)).astype(np.float32)
    release: dict[str, list[float]] = {v: [] for v in values}
    spoken: dict[str, list[float]] = {v: [] for v in values}
    counts = {v: dict.fromkeys(("early used", "early wasted", "early stopped", "beam typed", "beam abandoned"), 0)
              for v in values}
    width = max(len(v) for v in values)
    turn = 0
    for _ in range(args.repeats):
        for clip in load_clips(SETS[args.set][0]):
            audio = cut_after_speech(read_audio(clip.path))
            if args.hands_free:
                audio = np.concatenate([audio, room])
            order = values[turn % len(values):] + values[:turn % len(values)]
            turn += 1
            for v in order:
                t = chains[v]
                started = time.monotonic()
                pieces = [x for x in t.stream(ArraySource(audio, realtime=True), awaited_at_pause=args.hands_free)
                          if not x.sentence_end]
                ended = t.stats.source_ended_at
                waited = [x.ready_at - (started + x.speech_end_s) for x in pieces
                          if x.speech_end_s is not None and x.ready_at < ended]
                spoken[v] += waited
                st = t.stats
                seen = {"early used": st.early_used, "early wasted": st.early_decodes - st.early_used - st.early_aborted,
                        "early stopped": st.early_aborted, "beam typed": st.beam_used,
                        "beam abandoned": st.beam_abandoned}
                for key, n in seen.items():
                    counts[v][key] += n
                line = f"{clip.name:24} {v:>{width}}"
                if not args.hands_free:
                    release[v].append(pieces[-1].ready_at - ended)
                    line += f"  release -> text {release[v][-1]:.2f} s"
                line += ("  end of speech -> text before the release " if not args.hands_free else
                         "  end of speech -> text ") + (" ".join(f"{w:.2f}" for w in waited) or "-")
                print(line + "  (" + ", ".join(f"{key} {n}" for key, n in seen.items() if n) + ")", flush=True)
    print(f"{args.setting}, set {args.set!r}, {args.repeats} repeat(s):")
    for v in values:
        parts = [f"  {v:>{width}}:"]
        if release[v]:
            parts.append(f"release -> text median {statistics.median(release[v]):.2f} s, max {max(release[v]):.2f} s "
                         f"({len(release[v])} releases);")
        if spoken[v]:
            parts.append(f"end of speech -> text of phrases a pause ended: median {statistics.median(spoken[v]):.2f} s, "
                         f"max {max(spoken[v]):.2f} s ({len(spoken[v])});")
        parts.append(", ".join(f"{key} {n}" for key, n in counts[v].items()))
        print(" ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""How the streamed text reads (issue #16) with each way of giving the next phrase its context while a sentence end
is held, on the built-in ``sttkb bench`` sets, in one process on one engine.

Each set is dictated as ``sttkb bench`` does (its clips one after the other, 1.5 s of room between them) and
streamed through the chain as fast as it decodes (not in real time: the text does not depend on the speed, only
which decodes run early does), greedy (``[asr] beam_when_idle`` off: its choice depends on timing). Printed per
variant and set: plain WER and the formatted error rate of the whole text in one alignment (as ``sttkb bench``
section 4), the sentence ends typed against the reference's, and with ``--text`` the typed text.

Variants (``[text] hold_sentence_end_s`` on, as by default), while a mark is held the next phrase's context is:
- ``default``: the chain as configured by default
- ``comma``: the text so far with the mark replaced by a comma
- ``bare``: the text so far without the mark and without a comma (Whisper's own choice decides)
- ``sure``: bare when Whisper wrote the mark with probability >= ``sttkb.chain.SURE_END_P``, else comma
- ``suremark``: the same, but with the mark itself when it was sure
- ``across``: ``[text] decode_across_pause`` on (the next phrase decoded together with the one before it)
- ``VARIANT@P``: ``sure`` or ``suremark`` with ``SURE_END_P`` = P

Usage: .venv/bin/python scripts/measure_sentence_ends.py [--set voices|split|both] [--variants a,b] [--text]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time


def main() -> int:
    from sttkb.asr.engine import WhisperEngine
    from sttkb.audio.sources import ArraySource
    from sttkb.chain import Transcriber
    from sttkb.cli.bench import SETS, dictation, load_clips, scored, sentence_ends
    from sttkb.config import Config
    from sttkb.speech import choose_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", choices=[*sorted(SETS), "both"], default="both")
    p.add_argument("--variants", default="comma,bare,sure,suremark,across")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--text", action="store_true", help="print the typed text too")
    p.add_argument("--hold", type=float, help="[text] hold_sentence_end_s for every variant (default: the config's)")
    p.add_argument("--repeats", type=int, default=1, help="run the variants this many times, in turn")
    p.add_argument("--no-fallback", action="store_true",
                   help="[asr] temperature_fallback off: every decode repeatable (whisper.cpp's fallback samples "
                        "from a generator that lives on between calls, so a variant's text also depends on what "
                        "ran before it)")
    args = p.parse_args()

    base = Config()
    base = dataclasses.replace(base, asr=dataclasses.replace(base.asr, threads=args.threads, beam_when_idle=False,
                                                             temperature_fallback=not args.no_fallback))
    if args.hold is not None:
        base = dataclasses.replace(base, text=dataclasses.replace(base.text, hold_sentence_end_s=args.hold))
    engine = WhisperEngine(choose_model(base).path, base.asr)
    engine.warm_up()

    import sttkb.chain
    defaults = (sttkb.chain.SURE_END_P, sttkb.chain.SURE_CONTEXT)

    def chain(variant: str) -> Transcriber:
        c = sttkb.chain
        c.SURE_END_P, c.SURE_CONTEXT = defaults
        if variant == "default":
            return Transcriber(base, engine=engine)
        variant, _, p = variant.partition("@")        # e.g. suremark@0.9: another SURE_END_P
        c.SURE_END_P = {"comma": 2.0, "bare": 0.0}.get(variant, float(p) if p else c.SURE_END_P)
        c.SURE_CONTEXT = "mark" if variant == "suremark" else "bare"
        text = dataclasses.replace(base.text, decode_across_pause=variant == "across")
        return Transcriber(dataclasses.replace(base, text=text), engine=engine)

    sets = sorted(SETS) if args.set == "both" else [args.set]
    print(f"{'set':<8} {'variant':<9} {'WER (one alignment)':>20} {'formatted':>16} {'sentence ends':>14} "
          f"{'CPU s':>9}")
    for name in sets:
        clips = load_clips(SETS[name][0])
        audio, spans = dictation(clips)
        want = sentence_ends(" ".join(c.text or "" for c in clips))
        for variant in args.variants.split(",") * args.repeats:
            t = chain(variant)
            started = time.process_time()
            pieces = [(p.segment_start_s, p.segment_end_s, p.text) for p in t.stream(ArraySource(audio),
                                                                                     awaited_at_pause=True)]
            cpu = time.process_time() - started
            s = scored(clips, spans, pieces)
            wer, fmt = s["whole_wer"], s["formatted"]
            print(f"{name:<8} {variant:<9} {wer[0]:>6} of {wer[1]:<3} {wer[0] / wer[1]:>6.1%} "
                  f"{fmt[0]:>4} {fmt[0] / fmt[1]:>6.1%}     {s['sentence_ends']:>4} of {want:<4} {cpu:>9.1f}")
            if args.text:
                print("    " + "".join(p[2] for p in pieces).strip())
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""How much audio Whisper must hear at once for the split set to read as well as the whole file (issue #16).

The built-in ``split`` set is dictated as ``sttkb bench`` does it (its clips one after the other, 1.5 s of room
between them), cut by the chain's own VAD into phrases, and the phrases are decoded in batches: consecutive
phrases are joined (the pauses between them kept as silence) until the next one would make the batch longer than
the limit, then the batch is decoded in one call with the text so far as its context, exactly as the chain decodes
a phrase (sttkb's engine, greedy). This is the best any streaming scheme can do whose decodes hear at most that
much audio: nothing is held, re-decoded or cut at a wrong place. Printed per (encoder window, limit): the formatted
error rate and plain WER of the whole text in one alignment, as ``sttkb bench --set split`` section 4 prints them.

Usage: .venv/bin/python scripts/measure_audio_context.py [--runs 768:14,0:14,0:28] [--text]
(a run is AUDIO_CTX:LIMIT_S; audio_ctx 0 is the full 30 s window)
"""

from __future__ import annotations

import argparse
import dataclasses

def main() -> int:
    from sttkb.asr.engine import WhisperEngine
    from sttkb.audio.segment import joined
    from sttkb.audio.vad import Segmenter
    from sttkb.chain import PUNCTUATED_CONTEXT
    from sttkb.cli.bench import SETS, dictation, load_clips
    from sttkb.config import Config
    from sttkb.models.wer import formatted_error_rate, word_error_rate
    from sttkb.speech import choose_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="768:14,0:14,0:28")
    p.add_argument("--text", action="store_true", help="print the decoded text too")
    args = p.parse_args()

    config = Config()
    clips = load_clips(SETS["split"][0])
    audio, _ = dictation(clips)
    reference = " ".join(c.text or "" for c in clips)
    segmenter = Segmenter(config.vad)
    phrases = segmenter.feed(audio) + segmenter.flush()
    model = choose_model(config, None)
    print(f"split set: {len(clips)} clips, {len(audio) / 16000:.1f} s, {len(phrases)} phrases; model {model.name}")
    print(f"{'audio_ctx':>9} {'limit s':>7} {'batches':>7} {'formatted':>13} {'WER':>11}")
    for run in args.runs.split(","):
        ctx, limit = run.split(":")
        asr = dataclasses.replace(config.asr, audio_ctx=int(ctx), beam_when_idle=False)
        with WhisperEngine(model.path, asr) as engine:
            engine.warm_up()
            text, batch, batches = "", None, 0

            def decode(batch) -> str:
                prompt = f"{PUNCTUATED_CONTEXT} {text[-config.asr.context_chars:]}" if text else ""
                return (text + " " + engine.transcribe(batch, prompt).text.strip()).strip()

            for phrase in phrases:
                if batch is not None and joined(batch, phrase).duration_s > min(float(limit), engine.max_segment_s):
                    text, batch, batches = decode(batch), None, batches + 1
                batch = phrase if batch is None else joined(batch, phrase)
            text, batches = decode(batch), batches + 1
        f, w = formatted_error_rate(reference, text), word_error_rate(reference, text)
        print(f"{ctx:>9} {limit:>7} {batches:>7} {f.errors:>4} {100 * f.errors / f.reference_words:5.1f} % "
              f"{w.errors:>3} {100 * w.wer:5.1f} %")
        if args.text:
            print(f"  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""How much audio Whisper must hear at once for the split set to read as well as the whole file (issue #16).

The built-in ``split`` set is dictated as ``sttkb bench`` does it (its clips one after the other, 1.5 s of room
between them) and cut by the chain's own VAD into phrases. Ways to give a decode more audio, each with the text
so far as its context, exactly as the chain decodes a phrase (sttkb's engine, greedy):

- ``batch``: consecutive phrases are joined (the pauses between them kept as silence) until the next one would make
  the batch longer than the limit, then the batch is decoded in one call. Each phrase is heard with the audio before
  and after it inside its batch, so its text can only be typed when the batch closes: not streaming.
- ``slide``: every phrase is decoded as soon as it ends, joined after as many of the phrases before it as fit in
  the limit, and only its own words are kept (the decode's words after those that align, by edit distance, with
  the words already kept for the phrases before it). This is the best a stream that types each phrase at its
  pause can hear: everything before it, nothing after it.
- ``lag``: as ``slide``, but a phrase's words are kept one phrase later: the decode that ends with phrase i also
  reads phrase i-1 again, and its words for phrase i-1 (between the earlier phrases' kept words and phrase i's) are
  kept; phrase i's words wait for the next decode (the last phrase's are kept as read). Each phrase is heard with
  the phrases before it and the one after it: what ``[text] wait_for_next_phrase`` does.
- ``pair``: as ``lag`` with no audio before phrase i-1 (only the text before it as the context).

Printed per run: the formatted error rate and plain WER of the whole text in one alignment, as ``sttkb bench --set
split`` section 4 prints them, and the decoder's CPU seconds per audio second.

Usage: .venv/bin/python scripts/measure_audio_context.py [--runs 768:14,0:14,0:28,0:28:slide] [--text]
(a run is AUDIO_CTX:LIMIT_S[:KIND], KIND batch (the default), slide, lag or pair; audio_ctx 0 is the full 30 s
window)
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def main() -> int:
    from sttkb.asr.engine import WhisperEngine
    from sttkb.audio.segment import joined
    from sttkb.audio.vad import Segmenter
    from sttkb.chain import PUNCTUATED_CONTEXT
    from sttkb.cli.bench import SETS, dictation, load_clips
    from sttkb.config import Config
    from sttkb.models.wer import formatted_error_rate, word_error_rate
    from sttkb.speech import choose_model
    from sttkb.text.boundary import words_after

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="768:14,0:14,0:28,0:28:slide")
    p.add_argument("--text", action="store_true", help="print the decoded text too")
    p.add_argument("--set", default="split", choices=sorted(SETS), help="the bench's speech set (default: split)")
    args = p.parse_args()

    config = Config()
    clips = load_clips(SETS[args.set][0])
    audio, _ = dictation(clips)
    reference = " ".join(c.text or "" for c in clips)
    segmenter = Segmenter(config.vad)
    phrases = segmenter.feed(audio) + segmenter.flush()
    model = choose_model(config, None)
    print(f"{args.set} set: {len(clips)} clips, {len(audio) / 16000:.1f} s, {len(phrases)} phrases; model {model.name}")
    print(f"{'audio_ctx':>9} {'limit s':>7} {'kind':>5} {'decodes':>7} {'formatted':>13} {'WER':>11} "
          f"{'CPU s/audio s':>13}")
    for run in args.runs.split(","):
        ctx, limit, *kind = run.split(":")
        kind = kind[0] if kind else "batch"
        if kind not in ("batch", "slide", "lag", "pair"):
            p.error(f"{run}: the kind is batch, slide, lag or pair")
        asr = dataclasses.replace(config.asr, audio_ctx=int(ctx), beam_when_idle=False)
        with WhisperEngine(model.path, asr) as engine:
            engine.warm_up()
            bound = min(float(limit), engine.max_segment_s)
            cpu = time.process_time()

            def window(i: int, bound: float, floor: int = 0):
                """(the first phrase, the audio) of phrase ``i`` after as many phrases before it (not before
                ``floor``) as fit in ``bound`` seconds."""
                first, heard = i, phrases[i]
                while first > floor:
                    longer = phrases[first - 1]
                    for later in phrases[first:i + 1]:
                        longer = joined(longer, later)
                    if longer.duration_s > bound:
                        break
                    first, heard = first - 1, longer
                return first, heard

            def prompt(text: str) -> str:
                return f"{PUNCTUATED_CONTEXT} {text[-config.asr.context_chars:]}" if text else ""

            if kind == "batch":
                text, batch, decodes = "", None, 0
                for phrase in phrases:
                    if batch is not None and joined(batch, phrase).duration_s > bound:
                        text = (text + " " + engine.transcribe(batch, prompt(text)).text.strip()).strip()
                        batch, decodes = None, decodes + 1
                    batch = phrase if batch is None else joined(batch, phrase)
                text = (text + " " + engine.transcribe(batch, prompt(text)).text.strip()).strip()
                decodes += 1
            elif kind in ("lag", "pair"):
                kept, pending = [], []                # final words per phrase; the last phrase's words so far
                for i in range(len(phrases)):
                    first, heard = window(i, bound, 0 if kind == "lag" else max(0, i - 1))
                    earlier = " ".join(w for words in kept[:first] for w in words)
                    decoded = engine.transcribe(heard, prompt(earlier)).text.split()
                    if first < i:
                        rest = words_after(decoded, [w for words in kept[first:i - 1] for w in words])
                        mine = words_after(rest, pending)
                        kept.append(rest[:len(rest) - len(mine)])
                        pending = mine
                    else:
                        if i:
                            kept.append(pending)
                        pending = decoded
                kept.append(pending)
                text, decodes = " ".join(w for words in kept for w in words), len(phrases)
            else:
                kept: list[list[str]] = []            # each phrase's own words
                for i in range(len(phrases)):
                    first, heard = window(i, bound)
                    earlier = " ".join(w for words in kept[:first] for w in words)
                    decoded = engine.transcribe(heard, prompt(earlier)).text.split()
                    kept.append(words_after(decoded, [w for words in kept[first:i] for w in words]))
                text, decodes = " ".join(w for words in kept for w in words), len(phrases)
            cpu = time.process_time() - cpu
        f, w = formatted_error_rate(reference, text), word_error_rate(reference, text)
        print(f"{ctx:>9} {limit:>7} {kind:>5} {decodes:>7} {f.errors:>4} {100 * f.errors / f.reference_words:5.1f} % "
              f"{w.errors:>3} {100 * w.wer:5.1f} % {cpu / (len(audio) / 16000):13.3f}")
        if args.text:
            print(f"  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

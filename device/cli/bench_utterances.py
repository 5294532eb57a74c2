"""``sttkb bench``, per utterance: each clip of the speech set is one utterance (issue #13).

7. Hold-to-talk, as the user feels it: each clip is its own press and release. It is replayed at 1x, the release
   comes 0.3 s after its last speech (the parent cuts each clip there), it streams through the chain
   (``Transcriber.stream``) and every piece is typed, as it comes, into the virtual host the project's one keyboard
   builder makes (``sttkb.gadget.factory.build_keyboard("virtual", ...)`` with the default [keyboard] settings, so
   the default typing pace is what is measured). Per utterance: release -> final text ready (the chain's last
   piece), typing (final text ready -> the typist idle, all keys up) and release -> last keystroke, with their
   median and p90; and whether the host decoded exactly the text the chain produced.
8. Decode time and WER per utterance for each engine configuration, each in its own child process: sttkb
   (whisper.cpp through the engine with its guard and the text pipeline, the configured ``audio_ctx``) and
   faster-whisper int8 (its defaults), greedy and beam 5. Each clip is decoded whole, after one untimed warm-up
   decode of the first clip.

The children run in a process of their own (``sttkb.cli.bench.run_child``); what they return is plain JSON. The pure
parts (:func:`percentile`, :func:`text_mismatch`, the report) are here too; nothing here imports
``sttkb.cli.bench`` (it imports this module).
"""

from __future__ import annotations

import math
import os
import resource
import time
from pathlib import Path

TARGET_RELEASE_TO_LAST_KEY_S = 0.5
"""Issue #13: release -> last keystroke, median over the utterances (seconds)."""
SEARCHES = (("greedy", 1), ("beam 5", 5))
"""The decoding each engine is measured with: (label, beam size; 1 = greedy)."""
IDLE_TIMEOUT_S = 120.0
"""Longest wait for the typist to finish one utterance (seconds); longer counts as lost text."""


# -- the numbers -------------------------------------------------------------------------------------------
def percentile(values, q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between the two nearest ranks (so the
    50th of an even count is the mean of the middle two; statistics.quantiles' "inclusive" method). NaN values are
    left out; nan when none is left."""
    xs = sorted(float(v) for v in values if v is not None and v == v)
    if not xs:
        return float("nan")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q}: give 0 to 100")
    at = (len(xs) - 1) * q / 100
    low = math.floor(at)
    high = min(low + 1, len(xs) - 1)
    return xs[low] + (xs[high] - xs[low]) * (at - low)


def median_p90(values) -> tuple[float, float]:
    return percentile(values, 50), percentile(values, 90)


def text_mismatch(chain: str, typed: str) -> str | None:
    """None when the host shows exactly ``chain`` (the text the chain produced); else what differs, in words a
    reader can act on: characters lost at the end, characters added at the end (a doubled piece), or where the two
    first part and how they go on from there."""
    if typed == chain:
        return None
    same = 0
    for a, b in zip(chain, typed):
        if a != b:
            break
        same += 1
    if same == len(typed):
        return f"{len(chain) - same} character(s) lost at the end: {chain[same:same + 40]!r} never arrived"
    if same == len(chain):
        extra = typed[same:]
        doubled = " (typed twice)" if extra and extra in chain else ""
        return f"{len(extra)} character(s) too many at the end{doubled}: {extra[:40]!r}"
    return (f"differs from character {same} on: the chain {chain[same:same + 30]!r}, the host {typed[same:same + 30]!r} "
            f"({len(chain)} vs {len(typed)} characters)")


def wer_of(references: list[str | None], texts: list[str]) -> dict:
    """Errors per utterance and in total against ``references`` (sttkb.models.wer); {} when a reference is missing."""
    from sttkb.models.wer import word_error_rate
    if any(r is None for r in references) or len(references) != len(texts):
        return {}
    scores = [word_error_rate(r, t) for r, t in zip(references, texts)]
    errors, words = sum(s.errors for s in scores), sum(s.reference_words for s in scores)
    return {"scores": [[s.errors, s.reference_words] for s in scores], "wer_errors": errors, "ref_words": words,
            "wer": errors / max(1, words)}


# -- the report --------------------------------------------------------------------------------------------
def _s(value: float | None, width: int = 0) -> str:
    """Seconds, two decimals, right-aligned in ``width``: None leaves the column blank, NaN prints "-"."""
    if value is None:
        return " " * width
    if value != value:
        return f"{'-':>{width}}"
    return f"{value:>{width}.2f}"


def _wer(r: dict) -> str:
    if r.get("wer") is None:
        return "-"
    return f"{r['wer']:.1%} ({r['wer_errors']} of {r['ref_words']})"


HOLD_HEADER = (f"  {'utterance':<24} {'audio s':>7} {'release->text':>13} {'typing':>7} {'release->last key':>17} "
               f"{'chars':>5}  {'typed before release':<20}")


def hold_row(name: str, audio_s: float | None, release_to_text_s: float | None, typing_s: float | None,
             release_to_last_key_s: float | None, chars: int | None = None, pieces: str = "") -> str:
    """One row of the hold-to-talk table (the columns of :data:`HOLD_HEADER`; None leaves a column blank, a NaN
    time prints "-")."""
    return (f"  {name[:24]:<24} {_s(audio_s, 7)} {_s(release_to_text_s, 13)} {_s(typing_s, 7)} "
            f"{_s(release_to_last_key_s, 17)} {'' if chars is None else chars:>5}  {pieces}").rstrip()


def format_hold(hold: dict) -> list[str]:
    """Section 7: a row per utterance, median and p90 of each time, the target, the typed-text check."""
    keyboard = hold.get("keyboard") or {}
    settings = ", ".join(f"{k} {v}" for k, v in keyboard.items())
    us = hold["utterances"]
    lines = [f"(7) hold-to-talk, release -> last keystroke (s): each utterance its own press, replayed at 1x, released "
             f"{hold.get('tail_s', 0.3):.1f} s after its last speech, streamed through the chain "
             f"({hold.get('model', '?')}) and typed as it comes into the virtual host",
             f"  keyboard: sttkb.gadget.factory, virtual, [keyboard] defaults ({settings or '?'})",
             HOLD_HEADER]
    for u in us:
        lines.append(hold_row(u["name"], u["audio_s"], u["release_to_text_s"], u["typing_s"],
                              u["release_to_last_key_s"], len(u["typed"]),
                              f"{u['pieces_before_release']} of {u['pieces']} piece(s)"))
    columns = [[u[k] for u in us] for k in ("release_to_text_s", "typing_s", "release_to_last_key_s")]
    for label, q in (("median", 50), ("p90", 90)):
        lines.append(hold_row(label, None, *(percentile(c, q) for c in columns)))
    median = percentile(columns[2], 50)
    verdict = "met" if median <= TARGET_RELEASE_TO_LAST_KEY_S else "not met"
    lines.append(f"  release -> last keystroke: median {_s(median)} s over {len(us)} utterance(s) (target <= "
                 f"{TARGET_RELEASE_TO_LAST_KEY_S} s median; {verdict}); medians of its parts: release -> final text "
                 f"{_s(percentile(columns[0], 50))} s, typing {_s(percentile(columns[1], 50))} s")
    wrong = [(u["name"], text_mismatch(u["chain_text"], u["typed"])) for u in us]
    wrong = [(name, why) for name, why in wrong if why]
    for name, why in wrong:
        lines.append(f"  TYPED TEXT WRONG, {name}: the virtual host's text is not the chain's: {why}")
    if not wrong:
        lines.append(f"  typed text: the virtual host decoded exactly the chain's text in every utterance "
                     f"({sum(len(u['typed']) for u in us)} characters; nothing lost or doubled)")
    if hold.get("wer") is not None:
        lines.append(f"  words typed: WER {_wer(hold)}")
    return lines


def format_remote(local: dict, remote: dict) -> list[str]:
    """Section 7b: the same presses through the speech server of ``[asr] engine`` beside the box's own model."""
    def medians(hold: dict) -> tuple[float, float]:
        us = hold["utterances"]
        return (percentile([u["release_to_text_s"] for u in us], 50),
                percentile([u["release_to_last_key_s"] for u in us], 50))

    lines = [f"(7b) the speech server ([asr] engine {remote.get('engine', '?')}) beside the box's model: the same "
             f"presses, release -> final text / last keystroke, medians (s)"]
    for label, hold in (("box's model", local), ("speech server", remote)):
        text, last = medians(hold)
        lines.append(f"  {label:<24} {_s(text, 13)} {_s(last, 17)}   words typed: WER {_wer(hold)}"
                     if hold.get("wer") is not None else f"  {label:<24} {_s(text, 13)} {_s(last, 17)}")
    lines.append("  (a phrase the server fails on is decoded by the box's model: docs/remote.md)")
    return lines


def format_engines(engines: dict[str, dict], fw_note: str | None = None) -> list[str]:
    """Section 8: per configuration, the median and p90 decode seconds per utterance and the WER."""
    first = next(iter(engines.values()), None)
    n = len(first["decode_s"]) if first else 0
    threads = first.get("threads") if first else None
    lines = [f"(8) per utterance: each clip decoded whole after a warm-up ({n} utterance(s), each configuration in "
             f"its own process" + (f", {threads} threads" if threads else "") + ")",
             f"  {'configuration':<48} {'median s':>8} {'p90 s':>7} {'audio s':>8}  WER"]
    for label, r in engines.items():
        median, p90 = median_p90(r["decode_s"])
        lines.append(f"  {label[:48]:<48} {_s(median, 8)} {_s(p90, 7)} {_s(percentile(r['audio_s'], 50), 8)}  "
                     f"{_wer(r)}")
    if fw_note:
        lines.append(f"  faster-whisper: {fw_note}")
    return lines


def format_utterances(hold: dict | None, engines: dict[str, dict] | None, fw_note: str | None = None,
                      remote: dict | None = None) -> str:
    """Sections 7 (the box's model), 7b (``remote``: the same presses through the speech server) and 8."""
    lines: list[str] = []
    if hold:
        lines += format_hold(hold)
        if remote:
            lines += [""] + format_remote(hold, remote)
    if engines:
        lines += ([""] if lines else []) + format_engines(engines, fw_note)
    return "\n".join(lines)


def engine_jobs(model_label: str, model_path: str, window: int, ct2_dir: str | None, clips: list,
                **common) -> dict[str, dict]:
    """Label -> child job, for every configuration of section 8 (faster-whisper only with ``ct2_dir``); ``window``:
    the ``audio_ctx`` the sttkb children run at (for the label; ``common`` holds what the children get)."""
    jobs = {}
    for search, beam in SEARCHES:
        jobs[f"sttkb (whisper.cpp) {model_label} ctx {window} {search}"] = {
            "kind": "utterances-sttkb", "model_path": model_path, "beam_size": beam, "clips": clips, **common}
    for search, beam in SEARCHES if ct2_dir else ():
        jobs[f"faster-whisper int8 tiny.en {search}"] = {
            "kind": "utterances-faster-whisper", "ct2_dir": ct2_dir, "beam_size": beam, "clips": clips, **common}
    return jobs


# -- the children ------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def chain_config(job: dict):
    """The configuration a child runs: the job's config file (or the defaults) with its threads, ``audio_ctx``
    and beam size."""
    from dataclasses import replace

    from sttkb.config import Config, load_config
    config = load_config(job["config"]) if job.get("config") else Config()
    asr = {"threads": job["threads"]}
    if job.get("audio_ctx") is not None:
        asr["audio_ctx"] = job["audio_ctx"]
    if job.get("beam_size") is not None:
        asr["beam_size"] = job["beam_size"]
    if job.get("local"):                  # the box's own model, whatever [asr] engine says
        asr.update(engine="local", remote_tls_fingerprint="")
    return replace(config, asr=replace(config.asr, **asr))


def child_hold_to_talk(job: dict) -> dict:
    """Section 7 in a child: ``job["clips"]`` [[name, path of the clip cut at its release]], one model."""
    from dataclasses import asdict

    from sttkb.audio.files import read_audio
    from sttkb.config import Config
    from sttkb.gadget.factory import build_keyboard
    from sttkb.speech import load_transcriber

    config = chain_config(job)
    transcriber = load_transcriber(config, Path(job["model_path"]), warm_up=True)
    defaults = Config()
    keyboards = build_keyboard("virtual", defaults.keyboard, defaults.usb, defaults.bluetooth)
    out: dict = {"model": job.get("model", Path(job["model_path"]).stem), "audio_ctx": config.asr.audio_ctx,
                 "engine": config.asr.engine,
                 "threads": job["threads"], "keyboard": asdict(defaults.keyboard),
                 "tail_s": job.get("tail_s", 0.3), "utterances": []}
    try:
        for name, path in job["clips"]:
            out["utterances"].append({"name": name, **press_and_release(transcriber, keyboards, read_audio(path))})
    finally:
        keyboards.close()
        transcriber.close()
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def press_and_release(transcriber, keyboards, audio) -> dict:
    """One utterance: ``audio`` (ending at the release) replayed at 1x through ``transcriber.stream``, each piece
    typed as it comes on ``keyboards.keyboard``; the times from the release (the source's end) and the texts."""
    from sttkb.audio.sources import ArraySource

    keyboard, host = keyboards.keyboard, keyboards.virtual
    keyboard.wait_idle(IDLE_TIMEOUT_S)
    shown = len(host.text)
    pieces = []
    for piece in transcriber.stream(ArraySource(audio, realtime=True)):
        if piece.text:
            keyboard.type_text(piece.text)
        pieces.append(piece)
    idle = keyboard.wait_idle(IDLE_TIMEOUT_S)
    last_key = time.monotonic()   # the typist's last report (all keys up) went out just before wait_idle returned
    released = transcriber.stats.source_ended_at
    ready = pieces[-1].ready_at if pieces else last_key
    typed = [p for p in pieces if p.text]
    nan = float("nan")
    return {"audio_s": len(audio) / 16000,
            "release_to_text_s": ready - released if released is not None else nan,
            "typing_s": last_key - ready if idle else nan,
            "release_to_last_key_s": last_key - released if idle and released is not None else nan,
            "pieces": len(typed),
            "pieces_before_release": sum(p.ready_at < released for p in typed) if released is not None else 0,
            "chain_text": "".join(p.text for p in pieces), "typed": host.text[shown:]}


def decode_each(decode, clips: list, label: str, threads: int) -> dict:
    """Warm up with the first clip (untimed), then decode every clip whole, timed one by one."""
    from sttkb.audio.files import read_audio
    audios = [read_audio(path) for _, path in clips]
    decode(audios[0])
    seconds, texts = [], []
    for audio in audios:
        t0 = time.perf_counter()
        texts.append(decode(audio))
        seconds.append(time.perf_counter() - t0)
    return {"model": label, "threads": threads, "names": [name for name, _ in clips], "decode_s": seconds,
            "audio_s": [len(a) / 16000 for a in audios], "texts": texts, "peak_rss_mb": _peak_rss_mb()}


def child_utterances_sttkb(job: dict) -> dict:
    """Section 8, sttkb: whisper.cpp through the engine (its parameters, guard and retry) with the prompt the chain
    gives a first phrase, then the text pipeline; a clip longer than the encoder window in window-long parts."""
    from sttkb.asr.prompt import build_prompt
    from sttkb.speech import load_transcriber

    config = chain_config(job)
    transcriber = load_transcriber(config, Path(job["model_path"]), warm_up=True)
    engine, pipeline = transcriber.engine, transcriber.pipeline
    prompt = build_prompt(config.asr.vocabulary, "", config.asr.context_chars)
    step = int(transcriber.max_segment_s * 16000)

    def decode(audio) -> str:
        pipeline.reset()
        text = ""
        for start in range(0, len(audio), step):
            result = engine.transcribe(audio[start:start + step], prompt)
            if result.text:
                text += pipeline.process(result.text, is_first=not text)
        return text + pipeline.flush()

    try:
        return decode_each(decode, job["clips"], f"sttkb beam {config.asr.beam_size}", job["threads"])
    finally:
        transcriber.close()


def child_utterances_faster_whisper(job: dict) -> dict:
    """Section 8, faster-whisper int8 on the CTranslate2 weights, its defaults except the beam size."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    model = WhisperModel(str(job["ct2_dir"]), device="cpu", compute_type="int8", cpu_threads=job["threads"])

    def decode(audio) -> str:
        segments, _ = model.transcribe(audio, language="en", beam_size=job["beam_size"])
        return " ".join(s.text.strip() for s in segments if s.text.strip())

    return decode_each(decode, job["clips"], f"faster-whisper beam {job['beam_size']}", job["threads"])

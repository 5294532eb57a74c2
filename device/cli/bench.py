"""``sttkb bench``: latency, CPU cost, words (WER per clip) and memory of the chain, on varied speech, in one run.

The speech: a built-in set, ``--set voices`` (the default: the JFK recording, real speech, and eight espeak-ng voices
at 140-175 words per minute, one sentence after another) or ``--set split`` (sentences that run across mid-sentence
pauses of 0.8-2.0 s: the JFK recording with its pauses lengthened and ten espeak-ng sentences said in parts with a
non-final intonation), both pre-rendered in ``sttkb/bench_data`` and joined with 1.5 s pauses into one dictation;
or your own: ``--clips DIR`` (audio files with a same-named .txt of what is said) or ``--audio FILE --text TEXT``.
WER is printed per clip and in total with the word count, so a reader sees what one word is worth.

Every measurement runs in a child process (clean peak RSS per model, no library state shared):

1. Latency from the end of the recording (the button release; the recording ends 0.3 s after the last speech)
   to the final text. Streaming: the file is replayed at 1x speed and segments are transcribed while it plays.
   Batch: the whole recording is there at release and only then segmented and transcribed. Raw whisper.cpp:
   the whole recording in one pywhispercpp call with its defaults.
2. The same for faster-whisper (int8, vad_filter, greedy) on the same CTranslate2 weights, if it is installed.
3. CPU seconds per audio second: the whole chain (VAD, prompt, whisper.cpp, guard, text pipeline) vs plain
   pywhispercpp calls on the same segments with the same decoding parameters and no prompt, and with the prompts
   the chain used (what is left is the chain's own code); the VAD and the text pipeline measured on their own.
4. WER per clip and in total, for every model run (normalizer: sttkb.models.wer) and for the text the streaming
   replay typed; for the whole dictation in one alignment: the WER, the formatted error rate (case and attached
   punctuation kept: how it reads, sentence breaks included) and the number of sentence ends; and the streamed
   text against the whole file in one whisper.cpp call (the target: no worse).
5. Per model: ``--model`` (what it means everywhere: sttkb.speech.choose_model) and tiny.en at the ``--quants``
   types (converted from the embedded tiny.en into a temporary store); peak RSS of each child.
6. The encoder window: the chain at the configured ``asr.audio_ctx`` against whisper.cpp's full 30 s window.
7. Hold-to-talk per utterance: each clip its own press and release, replayed at 1x, streamed through the chain and
   typed into the virtual host at the default [keyboard] pace: release -> final text, typing, release -> last
   keystroke, per utterance with median and p90 (target: median <= 0.5 s); the host's text checked against the
   chain's (``--skip-hold-to-talk``).
8. Per utterance, each clip decoded whole: sttkb (whisper.cpp) and faster-whisper int8 (if installed), greedy and
   beam 5, each in its own process: median and p90 decode seconds and WER (``--skip-per-utterance``).
   Sections 7 and 8: sttkb.cli.bench_utterances.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sttkb.errors import SttkbError

if TYPE_CHECKING:  # numpy is imported where it is used: every `sttkb` command loads this module
    import numpy as np

    from sttkb.models.wer import WerResult

log = logging.getLogger(__name__)

QUANTS = ("f16", "q8_0", "q5_1", "q5_0", "q4_0")
BENCH_DATA = Path(__file__).resolve().parent.parent / "bench_data"
"""The built-in speech sets (see its README.md for where each clip comes from)."""
SETS = {"voices": (BENCH_DATA, "built-in set 'voices' (sttkb/bench_data: JFK 1961 + espeak-ng voices)"),
        "split": (BENCH_DATA / "split", "built-in set 'split' (sttkb/bench_data/split: sentences across pauses of "
                                        "0.8-2.0 s, JFK 1961 + espeak-ng voices)")}
"""``--set`` name -> (folder, how the report names it)."""
AUDIO_SUFFIXES = (".wav", ".flac")
TAIL_AFTER_SPEECH_S = 0.3
"""The recording is cut this long after its last speech: the user lets go of the button (seconds)."""
PAUSE_S = 1.5
"""Pause between the clips of the dictation (seconds): longer than the VAD's end of phrase, so each clip ends
its own segments."""


class BenchError(SttkbError):
    """The benchmark cannot run as asked."""


# -- the speech --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    text: str | None
    """What is said (None: no reference, no WER)."""


def read_reference(text: str | None) -> str | None:
    """``--text``: the words themselves, or a file holding them."""
    if text and Path(text).is_file():
        return Path(text).read_text(encoding="utf-8").strip()
    return text


def load_clips(folder: Path) -> list[Clip]:
    """Every audio file (.wav, .flac) in ``folder`` that has a same-named .txt of what is said, in name order."""
    clips = [Clip(f.stem, f, read_reference(str(f.with_suffix(".txt"))))
             for f in sorted(folder.iterdir()) if f.suffix in AUDIO_SUFFIXES and f.with_suffix(".txt").is_file()]
    if not clips:
        raise BenchError(f"{folder}: no clips (audio files .wav/.flac, each with a same-named .txt of its words)")
    return clips


def dictation(clips: list[Clip], pause_s: float = PAUSE_S) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The clips said one after the other with ``pause_s`` of quiet room between them, as 16 kHz samples, and
    where each clip is in it (start, end seconds)."""
    import numpy as np

    from sttkb.audio.files import read_audio
    rng = np.random.default_rng(0)
    pause = (rng.standard_normal(int(pause_s * 16000)) * 10 ** (-65 / 20)).astype(np.float32)
    parts, spans, at = [], [], 0
    for i, clip in enumerate(clips):
        if i:
            parts.append(pause)
            at += len(pause)
        audio = read_audio(clip.path)
        spans.append((at / 16000, (at + len(audio)) / 16000))
        parts.append(audio)
        at += len(audio)
    return np.concatenate(parts), spans


def cut_after_speech(audio: np.ndarray) -> np.ndarray:
    """Trim the recording to ``TAIL_AFTER_SPEECH_S`` after the last speech the VAD finds."""
    from sttkb.audio.vad import Segmenter
    seg = Segmenter()
    segments = seg.feed(audio) + seg.flush()
    if not segments:
        raise BenchError("the VAD finds no speech in the recording")
    end = int((segments[-1].speech_end_s + TAIL_AFTER_SPEECH_S) * 16000)
    return audio[:end]


def score_clips(clips: list[Clip], spans: list[tuple[float, float]],
                pieces: list[tuple[float, float, str]]) -> list[WerResult | None]:
    """WER of each clip: every recognized piece (start, end seconds or None, text) counts for the clip nearest its
    middle (the pauses between clips are longer than the VAD's end of phrase, so a piece is inside one clip)."""
    from sttkb.models.wer import word_error_rate

    def distance(t: float, span: tuple[float, float]) -> float:
        return max(span[0] - t, 0.0, t - span[1])

    said = [""] * len(clips)
    for start, end, text in pieces:
        middle = (start + end) / 2 if end is not None else start
        nearest = min(range(len(spans)), key=lambda k: distance(middle, spans[k]))
        said[nearest] += " " + text
    return [word_error_rate(c.text, t) if c.text is not None else None for c, t in zip(clips, said)]


def typed_text(pieces: list[tuple[float, float | None, str]]) -> str:
    """The whole dictation's text as typed: the chain's pieces carry their own spaces (and held marks), other
    engines' segments are joined with a space."""
    text = ""
    for _, _, piece in pieces:             # in speech order
        joint = not text or text[-1:].isspace() or piece[:1].isspace() or piece[:1] in ".,!?;:"
        text += ("" if joint else " ") + piece
    return text


def formatted_score(clips: list[Clip], pieces: list[tuple[float, float | None, str]]) -> list[int]:
    """[errors, tokens] of the whole dictation's text against the clips' texts, case and attached punctuation kept
    (sttkb.models.wer.formatted_error_rate): how the text reads, sentence breaks and capitals included."""
    from sttkb.models.wer import formatted_error_rate
    result = formatted_error_rate(" ".join(c.text or "" for c in clips), typed_text(pieces))
    return [result.errors, result.reference_words]


def sentence_ends(text: str) -> int:
    """How many sentences ``text`` ends: words whose last mark (closing quotes and brackets aside) is . ! or ?"""
    return sum(word.rstrip("\"')]”’")[-1:] in (".", "!", "?") for word in text.split())


def scored(clips: list[Clip], spans: list[tuple[float, float]], pieces: list) -> dict:
    """The scores of one run's ``pieces``: per clip "scores" [errors, words] and their totals; for the whole
    dictation in one alignment "whole_wer" [errors, words], "formatted" [errors, tokens] and "sentence_ends";
    {} without reference texts."""
    from sttkb.models.wer import word_error_rate
    scores = score_clips(clips, spans, pieces)
    if any(s is None for s in scores):
        return {}
    whole = word_error_rate(" ".join(c.text or "" for c in clips), typed_text(pieces))
    out = {"formatted": formatted_score(clips, pieces), "whole_wer": [whole.errors, whole.reference_words],
           "sentence_ends": sentence_ends(typed_text(pieces)),
           "scores": [[s.errors, s.reference_words] for s in scores],
           "wer_errors": sum(s.errors for s in scores), "ref_words": sum(s.reference_words for s in scores)}
    out["wer"] = out["wer_errors"] / max(1, out["ref_words"])
    return out


def add_scores(result: dict, clips: list[Clip], spans: list[tuple[float, float]]) -> dict:
    """``result`` (a child's answer, with its "pieces") with the scores of :func:`scored`; the streaming replay's
    "stream_text" pieces, if there, scored the same way in "streamed"."""
    result.update(scored(clips, spans, result.pop("pieces")))
    if "stream_text" in result:
        result["streamed"] = scored(clips, spans, result.pop("stream_text"))
    return result


# -- child processes ---------------------------------------------------------------------------------------
def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_sttkb(job: dict) -> dict:
    """One model through the chain: batch, CPU vs raw (optional), the VAD and text pipeline on their own
    (optional), streaming in real time (optional), peak RSS; the batch run's pieces for WER."""
    import numpy as np

    from sttkb.audio.files import read_audio
    from sttkb.audio.sources import ArraySource
    from sttkb.config import Config, load_config
    from sttkb.speech import load_transcriber
    from dataclasses import replace

    config = load_config(job["config"]) if job.get("config") else Config()
    # Sections 1-6 measure the box's own model: a speech server of [asr] engine has its own row (7b).
    asr = replace(config.asr, threads=job["threads"], engine="local", remote_tls_fingerprint="",
                  **({"audio_ctx": job["audio_ctx"]} if job.get("audio_ctx") is not None else {}))
    config = replace(config, asr=asr)
    audio = read_audio(job["audio"])
    duration = len(audio) / 16000
    out: dict = {"model": job["model"], "audio_s": duration, "audio_ctx": asr.audio_ctx}
    t = time.perf_counter()
    transcriber = load_transcriber(config, Path(job["model_path"]), warm_up=True)
    out["load_s"] = time.perf_counter() - t
    engine = transcriber.engine  # the bare WhisperEngine: the raw runs below call its model directly
    prompts: list[str] = []  # the context prompt the chain gave each segment, for the same-prompt comparison
    chain_transcribe = engine.transcribe

    def transcribe_and_note_prompt(segment, prompt=""):
        prompts.append(prompt)
        return chain_transcribe(segment, prompt)

    engine.transcribe = transcribe_and_note_prompt

    # Batch at release, then raw pywhispercpp on the same segments with the same decoding parameters (no prompt,
    # guard, pipeline or VAD); alternated ``repeats`` times, the fastest of each kept (a busy machine only adds).
    best: dict = {}
    for _ in range(max(1, job.get("repeats", 1))):
        prompts.clear()
        cpu0, t0 = _cpu_s(), time.monotonic()
        pieces = list(transcriber.batch(ArraySource(audio)))
        latency, chain_cpu = time.monotonic() - t0, _cpu_s() - cpu0
        segments = list(transcriber.stats.segments_list)
        segment_prompts = prompts[:len(segments)] if len(prompts) == len(segments) else [""] * len(segments)
        for key, with_prompt in (("raw_cpu_s", False), ("raw_prompted_cpu_s", True)) if job.get("raw") else ():
            cpu0 = _cpu_s()
            for seg, prompt in zip(segments, segment_prompts):
                samples = seg.samples
                if len(samples) < 1.05 * 16000:
                    samples = np.concatenate([samples, np.zeros(int(1.05 * 16000) - len(samples), np.float32)])
                engine._model.transcribe(samples, **engine._params(seg.duration_s, prompt if with_prompt else ""))
            raw_cpu = _cpu_s() - cpu0
            best[key] = min(raw_cpu, best.get(key, raw_cpu))
        best["batch_latency_s"] = min(latency, best.get("batch_latency_s", latency))
        best["chain_cpu_s"] = min(chain_cpu, best.get("chain_cpu_s", chain_cpu))
    out.update(best)
    out["pieces"] = [(p.segment_start_s, p.segment_end_s, p.text) for p in pieces]
    out["segments"] = len(segments)
    if job.get("parts"):
        out.update(parts_cost(transcriber, audio, decoded_pieces(pieces)))

    if job.get("realtime"):
        source = ArraySource(audio, realtime=True)
        pieces = list(transcriber.stream(source))
        ended, decoded = transcriber.stats.source_ended_at, decoded_pieces(pieces)
        out["stream_latency_s"] = pieces[-1].ready_at - ended if pieces else float("nan")
        out["stream_last_asr_s"] = decoded[-1].asr_s if decoded else float("nan")
        out["stream_pieces_before_release"] = sum(p.ready_at < ended for p in decoded)
        out["stream_pieces"] = len(decoded)
        out["segment_asr_s"] = [round(p.asr_s, 3) for p in decoded]
        out["stream_text"] = [(p.segment_start_s, p.segment_end_s, p.text) for p in pieces]
        out["overflows"] = transcriber.stats.overflows
    out["peak_rss_mb"] = _peak_rss_mb()
    from sttkb.asr import cpu_variant
    out["cpu_build"] = cpu_variant.describe()
    transcriber.close()
    return out


def decoded_pieces(pieces: list) -> list:
    """The pieces whisper.cpp decoded (not the sentence ends the text pipeline held back and typed later)."""
    return [p for p in pieces if not p.sentence_end]


def parts_cost(transcriber, audio: np.ndarray, pieces: list, passes: int = 5) -> dict:
    """CPU of the chain's own parts, each alone, the fastest of ``passes``: the VAD segmenter over the whole
    recording, and the text pipeline over the whisper.cpp texts of the batch run's ``pieces``."""
    from sttkb.audio.sources import ArraySource
    from sttkb.text.pipeline import TextPipeline
    vad, pipeline = [], []
    for _ in range(passes):
        segmenter, cpu0 = transcriber.new_segmenter(), time.process_time()
        for chunk in ArraySource(audio).chunks():
            segmenter.feed(chunk)
        segmenter.flush()
        vad.append(time.process_time() - cpu0)
        text_pipeline, cpu0 = TextPipeline(transcriber.config.text), time.process_time()
        for i, piece in enumerate(pieces):
            if piece.raw_text:
                text_pipeline.process(piece.raw_text, is_first=i == 0)
        pipeline.append(time.process_time() - cpu0)
    return {"vad_cpu_s": min(vad), "pipeline_cpu_s": min(pipeline),
            "pipeline_segments": sum(bool(p.raw_text) for p in pieces)}


def child_whole_file(job: dict) -> dict:
    """Raw pywhispercpp the naive way: the whole recording in one call with its default parameters."""
    from pywhispercpp.model import Model

    from sttkb.asr.engine import install_cpp_log_handler
    from sttkb.audio.files import read_audio
    from sttkb.models.validate import check_loadable
    install_cpp_log_handler()
    audio = read_audio(job["audio"])
    check_loadable(Path(job["model_path"]))
    model = Model(str(job["model_path"]), n_threads=job["threads"], print_progress=False, print_realtime=False,
                  redirect_whispercpp_logs_to=None)
    model.transcribe(audio[:16000 * 2])
    cpu0, t0 = _cpu_s(), time.monotonic()
    segments = model.transcribe(audio)
    return {"model": "whole file, pywhispercpp defaults", "batch_latency_s": time.monotonic() - t0,
            "chain_cpu_s": _cpu_s() - cpu0, "audio_s": len(audio) / 16000, "peak_rss_mb": _peak_rss_mb(),
            "pieces": [(s.t0 / 100, s.t1 / 100, s.text) for s in segments]}  # t0, t1: 10 ms ticks


def child_faster_whisper(job: dict) -> dict:
    """faster-whisper int8 with vad_filter, on the CTranslate2 weights, greedy or with ``beam_size``: batch at
    release."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    from sttkb.audio.files import read_audio
    audio = read_audio(job["audio"])
    t = time.perf_counter()
    model = WhisperModel(str(job["ct2_dir"]), device="cpu", compute_type="int8", cpu_threads=job["threads"])
    list(model.transcribe(audio[:16000 * 2], language="en", beam_size=1)[0])
    beam = int(job.get("beam_size", 1))
    out: dict = {"model": "faster-whisper int8" + (f" beam {beam}" if beam > 1 else ""),
                 "load_s": time.perf_counter() - t, "audio_s": len(audio) / 16000}
    for _ in range(max(1, job.get("repeats", 1))):
        cpu0, t0 = _cpu_s(), time.monotonic()
        segments, _ = model.transcribe(audio, language="en", beam_size=beam, vad_filter=True)
        pieces = [(s.start, s.end, s.text) for s in segments]
        latency, cpu = time.monotonic() - t0, _cpu_s() - cpu0
        out["batch_latency_s"] = min(latency, out.get("batch_latency_s", latency))
        out["chain_cpu_s"] = min(cpu, out.get("chain_cpu_s", cpu))
    out["pieces"] = pieces
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def child_main() -> None:
    """Entry point of a child: a JSON job on stdin, a JSON result on stdout."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="bench child: %(message)s")
    job = json.loads(sys.stdin.read())
    kind = job.pop("kind")
    from sttkb.cli import bench_utterances as per_utterance
    result = {"sttkb": child_sttkb, "whole": child_whole_file, "faster-whisper": child_faster_whisper,
              "hold-to-talk": per_utterance.child_hold_to_talk,
              "utterances-sttkb": per_utterance.child_utterances_sttkb,
              "utterances-faster-whisper": per_utterance.child_utterances_faster_whisper}[kind](job)
    sys.stdout.write(json.dumps(result))


def run_child(job: dict, timeout_s: float = 1800.0) -> dict:
    cmd = [sys.executable, "-c", "from sttkb.cli.bench import child_main; child_main()"]
    run = subprocess.run(cmd, input=json.dumps(job), capture_output=True, text=True, timeout=timeout_s)
    if run.returncode != 0:
        raise BenchError(f"benchmark step {job.get('kind')} {job.get('model', '')} failed:\n{run.stderr[-2000:]}")
    return json.loads(run.stdout)


def faster_whisper_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("faster_whisper") is not None


# -- models ------------------------------------------------------------------------------------------------
def say(line: str) -> None:
    print(f"sttkb bench: {line}", file=sys.stderr)


def models_to_run(config, model: str | None, quants: list[str], work: Path) -> dict[str, Path]:
    """Label -> model file: first ``--model`` as :func:`sttkb.speech.choose_model` reads it (not given: the
    configured model, else the embedded default), then tiny.en at each quant type not already there (q8_0 is the
    store's embedded default; the others are converted from the same source into a store in ``work``)."""
    from sttkb.models.default import DEFAULT_QUANT, embedded_source, ensure_default_model
    from sttkb.models.importer import import_model
    from sttkb.models.quant import Quant
    from sttkb.models.store import ModelStore
    from sttkb.speech import choose_model
    choice = choose_model(config, model, on_progress=say)
    out = {choice.name: choice.path}
    temp_store = ModelStore(work / "models")
    for q in quants:
        label, quant = f"tiny.en-{q}", Quant.parse(q)
        if label in out:
            continue
        if quant == DEFAULT_QUANT:
            path = ensure_default_model(ModelStore(config.models.store or None), on_progress=say)
        else:
            say(f"converting tiny.en to {q} ...")
            manifest = import_model(embedded_source(), temp_store, quant=quant, name=label, validate=False,
                                    progress=False)
            path = temp_store.model_path(manifest["name"])
        if path.resolve() != choice.path.resolve():
            out[label] = path
    return out


# -- report ------------------------------------------------------------------------------------------------
def _f(value, fmt="{:.2f}", missing="-"):
    return missing if value is None or (isinstance(value, float) and value != value) else fmt.format(value)


def _wer(r: dict | None) -> str:
    """"5.1% (8 of 158)": the rate with the errors and words it comes from."""
    if not r or r.get("wer") is None:
        return "-"
    return f"{r['wer']:.1%} ({r['wer_errors']} of {r['ref_words']})"


def _errors(errors: int, words: int) -> str:
    return f"  {errors:>9} {errors / max(1, words):>6.1%}"


def format_report(speech: dict, runs: dict[str, dict], machine: str, *, whole: dict | None = None,
                  window: dict | None = None, fw: dict | None = None, fw5: dict | None = None,
                  fw_note: str = "not installed (pip install faster-whisper to compare)") -> str:
    """The printed report. ``speech``: {"source", "clips": [[name, words]], "audio_s"}; ``runs``: the chain per
    model (the first is the main one, with streaming); ``whole``/``window``/``fw``: the main model's whole-file
    pywhispercpp call, the main model at the full 30 s window, faster-whisper greedy and ``fw5`` with beam 5."""
    main_label, main = next(iter(runs.items()))
    words = sum(w for _, w in speech["clips"] if w is not None)
    lines = [f"machine: {machine}",
             f"speech: {speech['source']}: {len(speech['clips'])} clip(s), {main['audio_s']:.1f} s"
             + (f", {words} words (one word = {100 / words:.1f} WER points)" if words else ", no reference text"),
             f"model {main_label}, audio_ctx {main['audio_ctx']}, {main['segments']} segment(s)",
             f"whisper.cpp CPU code: {main.get('cpu_build', '-')}", ""]
    lines.append("(1,2) release -> final text (s)")
    lines.append(f"  streaming (sttkb, replayed at 1x)      {_f(main.get('stream_latency_s'))}"
                 f"   [last segment {_f(main.get('stream_last_asr_s'))} s to decode; "
                 f"{main.get('stream_pieces_before_release', '-')} of {main.get('stream_pieces', '-')} decoded pieces "
                 f"out before release]")
    lines.append(f"  batch at release (sttkb chain)         {_f(main['batch_latency_s'])}")
    if whole:
        lines.append(f"  batch, whole file in one pywhispercpp call (defaults) {_f(whole['batch_latency_s'])}")
    if fw:
        lines.append(f"  faster-whisper int8 + vad_filter batch {_f(fw['batch_latency_s'])}"
                     + (f"; beam 5 {_f(fw5['batch_latency_s'])}" if fw5 else ""))
    else:
        lines.append(f"  faster-whisper: {fw_note}")
    if main.get("stream_latency_s") is not None:
        ratio = main["stream_latency_s"] / main["batch_latency_s"]
        lines.append(f"  streaming / batch = {ratio:.2f} (target <= 0.30)"
                     + (f"; streaming / faster-whisper = {main['stream_latency_s'] / fw['batch_latency_s']:.2f} "
                        f"(target < 1)" if fw else ""))
    lines.append("")
    lines.append("(3) CPU seconds per audio second")
    a = main["audio_s"]
    if main.get("raw_cpu_s"):
        lines.append(f"  whole chain {main['chain_cpu_s'] / a:.3f}   raw pywhispercpp, same segments+params "
                     f"{main['raw_cpu_s'] / a:.3f}   overhead x{main['chain_cpu_s'] / main['raw_cpu_s']:.2f} "
                     f"(target <= 1.10)" + (f"   faster-whisper {fw['chain_cpu_s'] / fw['audio_s']:.3f}" if fw else ""))
    if main.get("raw_prompted_cpu_s"):
        lines.append(f"  raw pywhispercpp with the chain's context prompts {main['raw_prompted_cpu_s'] / a:.3f}   "
                     f"overhead of the chain's own code x{main['chain_cpu_s'] / main['raw_prompted_cpu_s']:.2f} "
                     f"(the rest is whisper.cpp decoding the prompt; [asr] context_chars = 0 drops it)")
    if main.get("vad_cpu_s") is not None:
        per_segment = main["pipeline_cpu_s"] / max(1, main["pipeline_segments"])
        lines.append(f"  of the chain's own code: the VAD {main['vad_cpu_s'] / a:.4f} CPU s per audio s "
                     f"({main['vad_cpu_s']:.3f} s for {a:.1f} s), the text pipeline {per_segment * 1000:.2f} ms "
                     f"per segment ({main['pipeline_segments']} segments)")
    lines.append("")
    streamed = {"streamed": main["streamed"]} if main.get("streamed") else {}
    columns = {**streamed, **runs, **({"whole file": whole} if whole else {}),
               **({"full window": window} if window else {}), **({"faster-whisper": fw} if fw else {}),
               **({"fw beam 5": fw5} if fw5 else {})}
    if all(r.get("scores") for r in columns.values()):
        lines.append("(4) words: errors and WER per clip (normalizer: NFKC, lower case, punctuation removed, numbers "
                     "not rewritten; sttkb.models.wer)")
        if streamed:
            lines.append(f"  streamed: the text the streaming replay typed ({main_label}: holding sentence ends, "
                         f"joining short phrases); the other sttkb columns: batch at release")
        lines.append(f"  {'clip':<24} {'words':>5}" + "".join(f"  {k[:16]:>16}" for k in columns))
        for i, (name, n) in enumerate(speech["clips"]):
            lines.append(f"  {name[:24]:<24} {n:>5}" + "".join(_errors(r["scores"][i][0], n) for r in columns.values()))
        lines.append(f"  {'total':<24} {words:>5}" + "".join(_errors(r["wer_errors"], words) for r in columns.values()))
        if all(r.get("whole_wer") for r in columns.values()):
            lines.append(f"  {'all text, one alignment':<24} {words:>5}"
                         + "".join(_errors(r["whole_wer"][0], words) for r in columns.values()))
        if all(r.get("formatted") for r in columns.values()):
            tokens = next(iter(columns.values()))["formatted"][1]
            lines.append(f"  {'formatted (case, punct.)':<24} {tokens:>5}"
                         + "".join(_errors(r["formatted"][0], tokens) for r in columns.values()))
        if speech.get("sentence_ends") is not None and all("sentence_ends" in r for r in columns.values()):
            lines.append(f"  {'sentence ends (. ! ?)':<24} {speech['sentence_ends']:>5}"
                         + "".join(f"  {r['sentence_ends']:>16}" for r in columns.values()))
        if streamed and whole and whole.get("whole_wer") and whole.get("formatted"):
            s, w = main["streamed"], whole
            verdict = ("met" if s["formatted"][0] <= w["formatted"][0] and s["whole_wer"][0] <= w["whole_wer"][0]
                       else "not met")
            lines.append(f"  streamed vs the whole file in one whisper.cpp call: formatted "
                         f"{s['formatted'][0] / max(1, s['formatted'][1]):.1%} vs "
                         f"{w['formatted'][0] / max(1, w['formatted'][1]):.1%}, WER (one alignment) "
                         f"{s['whole_wer'][0] / max(1, s['whole_wer'][1]):.1%} vs "
                         f"{w['whole_wer'][0] / max(1, w['whole_wer'][1]):.1%} (target: neither worse; {verdict})")
        if streamed and fw5 and fw5.get("whole_wer"):
            s, f = main["streamed"]["whole_wer"], fw5["whole_wer"]
            lines.append(f"  streamed vs faster-whisper int8 beam 5 on the whole file: WER (one alignment) "
                         f"{s[0] / max(1, s[1]):.1%} vs {f[0] / max(1, f[1]):.1%} "
                         f"(target: no worse; {'met' if s[0] <= f[0] else 'not met'})")
        lines.append("")
    lines.append("(5) per model")
    lines.append(f"  {'model':<28} {'WER':<18}  {'batch s':>7}  {'CPU s/audio s':>13}  {'peak RSS MB':>11}")
    for label, r in [*runs.items(), *((["faster-whisper int8", fw],) if fw else ()),
                     *((["faster-whisper int8 beam 5", fw5],) if fw5 else ())]:
        lines.append(f"  {label[:28]:<28} {_wer(r):<18}  {r['batch_latency_s']:7.2f}  "
                     f"{r['chain_cpu_s'] / r['audio_s']:13.3f}  {r['peak_rss_mb']:11.0f}")
    q8, f16 = runs.get("tiny.en-q8_0"), runs.get("tiny.en-f16")
    if q8 and f16 and q8.get("wer") is not None and f16.get("wer") is not None:
        lines.append(f"  q8_0 - f16 WER = {100 * (q8['wer'] - f16['wer']):+.1f} points (target <= +0.5)")
    if window:
        lines.append("")
        lines.append(f"(6) encoder window, {main_label}: audio_ctx {main['audio_ctx']} vs the full 30 s window "
                     f"(audio_ctx {window['audio_ctx']})")
        cpu, full = main["chain_cpu_s"] / a, window["chain_cpu_s"] / window["audio_s"]
        lines.append(f"  CPU s per audio s {cpu:.3f} vs {full:.3f} ({full / cpu:.1f}x less); "
                     f"WER {_wer(main)} vs {_wer(window)}; batch {main['batch_latency_s']:.2f} s vs "
                     f"{window['batch_latency_s']:.2f} s")
    return "\n".join(lines)


def load_average() -> float:
    return os.getloadavg()[0]


def machine_description() -> str:
    import platform
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    return f"{cpu}, {cores} core(s)"


# -- the command -------------------------------------------------------------------------------------------
def speech_from_args(args) -> tuple[str, list[Clip]]:
    """Where the speech comes from, and its clips: ``--audio`` (one clip), ``--clips DIR``, else the built-in set."""
    if args.audio:
        text = read_reference(args.text)
        sibling = Path(args.audio).with_suffix(".txt")
        if text is None and sibling.is_file():
            text = read_reference(str(sibling))
        return args.audio, [Clip(Path(args.audio).stem, Path(args.audio), text)]
    if args.text:
        raise BenchError("--text goes with --audio (a --clips folder has a .txt beside each clip)")
    if args.clips:
        return args.clips, load_clips(Path(args.clips))
    folder, source = SETS[args.set or "voices"]
    return source, load_clips(folder)


def utterance_files(clips: list[Clip], work: Path) -> list[list[str]]:
    """Each clip cut at its release (:func:`cut_after_speech`; whole if the VAD hears no speech in it) as a WAV in
    ``work``: [[name, path]] for the per-utterance children."""
    from sttkb.audio.files import read_audio, write_wav
    out = []
    for i, clip in enumerate(clips):
        path, audio = work / f"utterance-{i:03d}.wav", read_audio(clip.path)
        try:
            audio = cut_after_speech(audio)
        except BenchError:
            pass
        write_wav(path, audio)
        out.append([clip.name, str(path)])
    return out


def cmd_bench(args) -> int:
    from sttkb.audio.files import write_wav
    from sttkb.config import load_config
    from sttkb.models.default import embedded_source
    from sttkb.models.wer import normalize_words

    config = load_config(args.config)
    threads = args.threads or len(os.sched_getaffinity(0))
    quants = args.quants if args.quants is not None else ["q8_0", "f16"]
    for q in quants:
        if q not in QUANTS:
            raise BenchError(f"--quants {q}: choose from {', '.join(QUANTS)}")
    source, clips = speech_from_args(args)
    audio, spans = dictation(clips)
    audio = cut_after_speech(audio)
    spans[-1] = (spans[-1][0], min(spans[-1][1], len(audio) / 16000))
    speech = {"source": source, "audio_s": len(audio) / 16000,
              "clips": [[c.name, len(normalize_words(c.text)) if c.text is not None else None] for c in clips]}
    if all(c.text is not None for c in clips):
        speech["sentence_ends"] = sentence_ends(" ".join(c.text for c in clips))
    machine, load_at_start = machine_description(), load_average()
    with tempfile.TemporaryDirectory(prefix="sttkb-bench-") as tmp:
        work = Path(tmp)
        wav = work / "recording.wav"
        write_wav(wav, audio)
        models = models_to_run(config, args.model, quants, work)
        main_label = next(iter(models))

        def run(job: dict) -> dict:
            return add_scores(run_child({"audio": str(wav), "threads": threads, "repeats": args.repeats, **job}),
                              clips, spans)

        base = {"kind": "sttkb", "config": args.config, "audio_ctx": args.audio_ctx}
        runs = {}
        for label, path in models.items():
            is_main = label == main_label
            say(f"{label}{' (with real-time streaming replay)' if is_main else ''} ...")
            runs[label] = run({**base, "model": label, "model_path": str(path), "realtime": is_main,
                               "raw": is_main, "parts": is_main})
        main = runs[main_label]
        whole = window = fw = fw5 = None
        if not args.skip_whole:
            say(f"{main_label}, the whole file in one pywhispercpp call ...")
            whole = run({"kind": "whole", "model_path": str(models[main_label])})
        if not args.skip_window and 0 < main["audio_ctx"] < 1500:
            say(f"{main_label} at the full 30 s encoder window ...")
            window = run({**base, "audio_ctx": 0, "model": main_label, "model_path": str(models[main_label])})
        with_fw = faster_whisper_installed() and not args.no_faster_whisper
        if with_fw:
            say("faster-whisper ...")
            fw = run({"kind": "faster-whisper", "ct2_dir": str(embedded_source())})
            say("faster-whisper, beam 5 ...")
            fw5 = run({"kind": "faster-whisper", "ct2_dir": str(embedded_source()), "beam_size": 5})
        hold, engines, remote = per_utterance_runs(args, clips, work, models[main_label], main_label,
                                                   main["audio_ctx"], threads,
                                                   str(embedded_source()) if with_fw else None,
                                                   with_remote=config.asr.remote is not None)
    note = "skipped (--no-faster-whisper)" if args.no_faster_whisper else \
        "not installed (pip install faster-whisper to compare)"
    machine += f", load average {load_at_start:.1f} at start, {load_average():.1f} at end"
    print(format_report(speech, runs, machine, whole=whole, window=window, fw=fw, fw5=fw5, fw_note=note))
    if hold or engines:
        from sttkb.cli.bench_utterances import format_utterances
        print()
        print(format_utterances(hold, engines, None if fw else note, remote=remote))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "speech": speech, "sttkb": runs, "whole": whole,
                                               "full_window": window, "faster_whisper": fw,
                                               "faster_whisper_beam5": fw5,
                                               "hold_to_talk": hold, "hold_to_talk_remote": remote,
                                               "per_utterance": engines}, indent=2))
    return 0


def per_utterance_runs(args, clips: list[Clip], work: Path, model_path: Path, model_label: str, audio_ctx: int,
                       threads: int, ct2_dir: str | None, *,
                       with_remote: bool = False) -> tuple[dict | None, dict | None, dict | None]:
    """Sections 7, 7b and 8 (sttkb.cli.bench_utterances), each in its own child, unless skipped: the hold-to-talk
    result on the box's model, the same presses through the speech server of ``[asr] engine`` (``with_remote``),
    and the per-utterance decode results by configuration, with WER against the clips' texts."""
    from sttkb.cli.bench_utterances import engine_jobs, wer_of
    if args.skip_hold_to_talk and args.skip_per_utterance:
        return None, None, None
    utterances = utterance_files(clips, work)
    references = [c.text for c in clips]
    common = {"config": args.config, "threads": threads, "audio_ctx": args.audio_ctx}
    hold = engines = remote = None
    if not args.skip_hold_to_talk:
        say(f"{model_label}, hold-to-talk: each of {len(clips)} clip(s) its own press, replayed at 1x, typed into "
            f"the virtual host ...")
        job = {"kind": "hold-to-talk", "model": model_label, "model_path": str(model_path),
               "tail_s": TAIL_AFTER_SPEECH_S, "clips": utterances, **common}
        hold = run_child({**job, "local": True})
        hold.update(wer_of(references, [u["typed"] for u in hold["utterances"]]))
        if with_remote:
            say("the same presses through the speech server of [asr] engine ...")
            remote = run_child(job)
            remote.update(wer_of(references, [u["typed"] for u in remote["utterances"]]))
    if not args.skip_per_utterance:
        engines = {}
        for label, job in engine_jobs(model_label, str(model_path), audio_ctx, ct2_dir, utterances,
                                      **common).items():
            say(f"{label}, each clip decoded whole ...")
            engines[label] = run_child(job)
            engines[label].update(wer_of(references, engines[label]["texts"]))
    return hold, engines, remote


def register(sub) -> None:
    """Add ``bench`` to the `sttkb` subparsers."""
    p = sub.add_parser("bench", help="measure latency, CPU, WER per clip and per model, and memory",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", metavar="NAME|FILE", help="the model measured first, with streaming (as everywhere: "
                                                        "a store name or a .bin file; default the configured one)")
    p.add_argument("--quants", nargs="*", metavar="Q", help=f"also tiny.en at these quant types (of "
                                                            f"{', '.join(QUANTS)}; default q8_0 f16; none: only "
                                                            f"--model)")
    speech = p.add_mutually_exclusive_group()
    speech.add_argument("--audio", metavar="FILE", help="your recording instead of the built-in speech set")
    speech.add_argument("--clips", metavar="DIR", help="your set instead: audio files, each with a same-named .txt")
    speech.add_argument("--set", choices=sorted(SETS), help="the built-in speech set: voices (default: one sentence "
                                                            "after another) or split (sentences across pauses of "
                                                            "0.8-2.0 s)")
    p.add_argument("--text", metavar="TEXT|FILE", help="what is said in --audio (default: FILE's .txt beside it)")
    p.add_argument("--threads", type=int, default=0, help="whisper.cpp / CTranslate2 threads (default: all cores)")
    p.add_argument("--audio-ctx", type=int, default=None, help="override asr.audio_ctx (0 = full 30 s window)")
    p.add_argument("--no-faster-whisper", action="store_true", help="skip faster-whisper even if installed")
    p.add_argument("--skip-whole", action="store_true", help="skip the whole-file pywhispercpp run")
    p.add_argument("--skip-window", action="store_true", help="skip the full 30 s encoder window comparison")
    p.add_argument("--skip-hold-to-talk", action="store_true", help="skip the per-utterance hold-to-talk replay "
                                                                    "(each clip replayed at 1x and typed)")
    p.add_argument("--skip-per-utterance", action="store_true", help="skip the per-utterance decodes (sttkb and "
                                                                     "faster-whisper, greedy and beam 5)")
    p.add_argument("--repeats", type=int, default=2, help="batch/raw runs per model; the fastest counts")
    p.add_argument("--json", metavar="FILE", help="also write all numbers as JSON")
    p.set_defaults(func=cmd_bench)

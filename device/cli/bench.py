"""``sttkb bench``: latency, CPU cost, WER per quant type and memory of the chain, on one recording, in one run.

Every measurement runs in a child process (clean peak RSS per model, no library state shared):

1. Latency from the end of the recording (the button release; the recording ends 0.3 s after the last speech)
   to the final text. Streaming: the file is replayed at 1x speed and segments are transcribed while it plays.
   Batch: the whole recording is there at release and only then segmented and transcribed. Raw whisper.cpp:
   the whole recording in one pywhispercpp call with its defaults.
2. The same for faster-whisper (int8, vad_filter, greedy) on the same CTranslate2 weights, if it is installed.
3. CPU seconds per audio second: the whole chain (VAD, prompt, whisper.cpp, guard, text pipeline) vs plain
   pywhispercpp calls on the same segments with the same decoding parameters and no prompt, and with the prompts
   the chain used (what is left is the chain's own code: VAD, guard, text pipeline, plumbing).
4. WER per quant type (the models are converted from the embedded tiny.en into a temporary store).
   Normalizer: sttkb.models.wer (NFKC, lower case, punctuation removed, numbers not rewritten).
5. Peak RSS of each child (the daemon's footprint with that model).
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
from pathlib import Path
from typing import TYPE_CHECKING

from sttkb.errors import SttkbError

if TYPE_CHECKING:  # numpy is imported where it is used: every `sttkb` command loads this module
    import numpy as np

log = logging.getLogger(__name__)

QUANTS = ("f16", "q8_0", "q5_1", "q5_0", "q4_0")
TAIL_AFTER_SPEECH_S = 0.3
"""The recording is cut this long after its last speech: the user lets go of the button (seconds)."""
DEFAULT_PAUSE_S = 1.5
"""Pause between the repeats of the built-in recording (seconds)."""


class BenchError(SttkbError):
    """The benchmark cannot run as asked."""


# -- the recording -----------------------------------------------------------------------------------------
def default_recording(repeats: int = 4) -> tuple[np.ndarray, str]:
    import numpy as np
    """The model-validation reference clip (espeak-ng, 8 s, two sentences) said ``repeats`` times with 1.5 s
    pauses: a 35 s dictation, as 16 kHz samples and its text."""
    from sttkb.audio.files import read_audio
    from sttkb.models.validate import reference_clip
    path, text = reference_clip()
    clip = read_audio(path)
    rng = np.random.default_rng(0)
    pause = (rng.standard_normal(int(DEFAULT_PAUSE_S * 16000)) * 10 ** (-65 / 20)).astype(np.float32)
    parts = []
    for i in range(repeats):
        parts += [clip, pause] if i < repeats - 1 else [clip]
    return np.concatenate(parts), " ".join([text] * repeats)


def cut_after_speech(audio: np.ndarray) -> np.ndarray:
    """Trim the recording to ``TAIL_AFTER_SPEECH_S`` after the last speech the VAD finds."""
    from sttkb.audio.vad import Segmenter
    seg = Segmenter()
    segments = seg.feed(audio) + seg.flush()
    if not segments:
        raise BenchError("the VAD finds no speech in the recording")
    end = int((segments[-1].speech_end_s + TAIL_AFTER_SPEECH_S) * 16000)
    return audio[:end]


# -- child processes ---------------------------------------------------------------------------------------
def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child_sttkb(job: dict) -> dict:
    """One model through the chain: streaming (real time, optional), batch, CPU vs raw, WER, peak RSS."""
    import numpy as np

    from sttkb.asr.engine import WhisperEngine
    from sttkb.audio.files import read_audio
    from sttkb.audio.sources import ArraySource
    from sttkb.chain import Transcriber
    from sttkb.config import Config, load_config
    from sttkb.models.wer import word_error_rate
    from dataclasses import replace

    config = load_config(job["config"]) if job.get("config") else Config()
    asr = replace(config.asr, threads=job["threads"], **({"audio_ctx": job["audio_ctx"]}
                                                         if job.get("audio_ctx") is not None else {}))
    config = replace(config, asr=asr)
    audio = read_audio(job["audio"])
    duration = len(audio) / 16000
    out: dict = {"model": job["model"], "audio_s": duration, "audio_ctx": asr.audio_ctx}
    t = time.perf_counter()
    engine = WhisperEngine(job["model_path"], asr)
    engine.warm_up()
    out["load_s"] = time.perf_counter() - t
    transcriber = Transcriber(config, engine=engine)
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
        for key, with_prompt in (("raw_cpu_s", False), ("raw_prompted_cpu_s", True)):
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
    text = "".join(p.text for p in pieces)
    out["text"] = text
    out["segments"] = len(pieces)
    if job.get("reference"):
        w = word_error_rate(job["reference"], text)
        out["wer"], out["wer_errors"], out["ref_words"] = w.wer, w.errors, w.reference_words

    if job.get("realtime"):
        source = ArraySource(audio, realtime=True)
        pieces = list(transcriber.stream(source))
        ended = transcriber.stats.source_ended_at
        out["stream_latency_s"] = pieces[-1].ready_at - ended if pieces else float("nan")
        out["stream_last_asr_s"] = pieces[-1].asr_s if pieces else float("nan")
        out["stream_pieces_before_release"] = sum(p.ready_at < ended for p in pieces)
        out["segment_asr_s"] = [round(p.asr_s, 3) for p in pieces]
        out["overflows"] = transcriber.stats.overflows
    out["peak_rss_mb"] = _peak_rss_mb()
    transcriber.close()
    return out


def child_whole_file(job: dict) -> dict:
    """Raw pywhispercpp the naive way: the whole recording in one call with its default parameters."""
    from pywhispercpp.model import Model

    from sttkb.asr.engine import install_cpp_log_handler
    from sttkb.audio.files import read_audio
    from sttkb.models.validate import check_loadable
    from sttkb.models.wer import word_error_rate
    install_cpp_log_handler()
    audio = read_audio(job["audio"])
    check_loadable(Path(job["model_path"]))
    model = Model(str(job["model_path"]), n_threads=job["threads"], print_progress=False, print_realtime=False,
                  redirect_whispercpp_logs_to=None)
    model.transcribe(audio[:16000 * 2])
    cpu0, t0 = _cpu_s(), time.monotonic()
    text = " ".join(s.text for s in model.transcribe(audio))
    out = {"whole_latency_s": time.monotonic() - t0, "whole_cpu_s": _cpu_s() - cpu0, "whole_text": text,
           "whole_peak_rss_mb": _peak_rss_mb()}
    if job.get("reference"):
        out["whole_wer"] = word_error_rate(job["reference"], text).wer
    return out


def child_faster_whisper(job: dict) -> dict:
    """faster-whisper int8 with vad_filter, greedy, on the CTranslate2 weights: batch at release."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from faster_whisper import WhisperModel

    from sttkb.audio.files import read_audio
    from sttkb.models.wer import word_error_rate
    audio = read_audio(job["audio"])
    t = time.perf_counter()
    model = WhisperModel(str(job["ct2_dir"]), device="cpu", compute_type="int8", cpu_threads=job["threads"])
    list(model.transcribe(audio[:16000 * 2], language="en", beam_size=1)[0])
    out: dict = {"model": "faster-whisper int8", "load_s": time.perf_counter() - t, "audio_s": len(audio) / 16000}
    for _ in range(max(1, job.get("repeats", 1))):
        cpu0, t0 = _cpu_s(), time.monotonic()
        segments, _ = model.transcribe(audio, language="en", beam_size=1, vad_filter=True)
        text = " ".join(s.text.strip() for s in segments)
        latency, cpu = time.monotonic() - t0, _cpu_s() - cpu0
        out["batch_latency_s"] = min(latency, out.get("batch_latency_s", latency))
        out["chain_cpu_s"] = min(cpu, out.get("chain_cpu_s", cpu))
    out["text"] = text
    if job.get("reference"):
        out["wer"] = word_error_rate(job["reference"], text).wer
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def child_main() -> None:
    """Entry point of a child: a JSON job on stdin, a JSON result on stdout."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="bench child: %(message)s")
    job = json.loads(sys.stdin.read())
    kind = job.pop("kind")
    result = {"sttkb": child_sttkb, "whole": child_whole_file, "faster-whisper": child_faster_whisper}[kind](job)
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
def quant_models(quants: list[str], work: Path, store_dir: str | None) -> dict[str, Path]:
    """q8_0 from the store's embedded default; the other quants converted from the same source into ``work``."""
    from sttkb.models.default import DEFAULT_QUANT, embedded_source, ensure_default_model
    from sttkb.models.importer import import_model
    from sttkb.models.quant import Quant
    from sttkb.models.store import ModelStore
    out: dict[str, Path] = {}
    temp_store = ModelStore(work / "models")
    for q in quants:
        quant = Quant.parse(q)
        if quant == DEFAULT_QUANT:
            out[q] = ensure_default_model(ModelStore(store_dir).root)
            continue
        print(f"sttkb bench: converting tiny.en to {q} ...", file=sys.stderr)
        manifest = import_model(embedded_source(), temp_store, quant=quant, name=f"tiny.en-{q}", validate=False,
                                progress=False)
        out[q] = temp_store.model_path(manifest["name"])
    return out


# -- report ------------------------------------------------------------------------------------------------
def _f(value, fmt="{:.2f}", missing="-"):
    return missing if value is None or (isinstance(value, float) and value != value) else fmt.format(value)


def format_report(main: dict, per_quant: dict[str, dict], fw: dict | None, machine: str,
                  fw_note: str = "not installed (pip install faster-whisper to compare)") -> str:
    lines = [f"machine: {machine}",
             f"recording: {main['audio_s']:.1f} s, {main['segments']} segment(s); audio_ctx {main['audio_ctx']}; "
             f"model {main['model']}", ""]
    lines.append("(1,2) release -> final text (s)")
    lines.append(f"  streaming (sttkb, replayed at 1x)      {_f(main.get('stream_latency_s'))}"
                 f"   [last segment {_f(main.get('stream_last_asr_s'))} s to decode; "
                 f"{main.get('stream_pieces_before_release', '-')} of {main['segments']} pieces out before release]")
    lines.append(f"  batch at release (sttkb chain)         {_f(main['batch_latency_s'])}")
    if main.get("whole_latency_s") is not None:
        lines.append(f"  batch, whole file in one pywhispercpp call (defaults) {_f(main['whole_latency_s'])}")
    if fw:
        lines.append(f"  faster-whisper int8 + vad_filter batch {_f(fw['batch_latency_s'])}")
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
    lines.append(f"  whole chain {main['chain_cpu_s'] / a:.3f}   raw pywhispercpp, same segments+params "
                 f"{main['raw_cpu_s'] / a:.3f}   overhead x{main['chain_cpu_s'] / main['raw_cpu_s']:.2f} "
                 f"(target <= 1.10)" + (f"   faster-whisper {fw['chain_cpu_s'] / fw['audio_s']:.3f}" if fw else ""))
    if main.get("raw_prompted_cpu_s"):
        lines.append(f"  raw pywhispercpp with the chain's context prompts {main['raw_prompted_cpu_s'] / a:.3f}   "
                     f"overhead of the chain's own code x{main['chain_cpu_s'] / main['raw_prompted_cpu_s']:.2f} "
                     f"(the rest is whisper.cpp decoding the prompt; [asr] context_chars = 0 drops it)")
    lines.append("")
    lines.append("(4,5) per model                 WER     batch s  CPU s/audio s  peak RSS MB")
    for q, r in per_quant.items():
        lines.append(f"  {q:<28} {_f(r.get('wer'), '{:6.1%}')}  {_f(r['batch_latency_s'], '{:7.2f}')}  "
                     f"{r['chain_cpu_s'] / r['audio_s']:13.3f}  {r['peak_rss_mb']:11.0f}")
    if fw:
        lines.append(f"  {'faster-whisper int8':<28} {_f(fw.get('wer'), '{:6.1%}')}  "
                     f"{fw['batch_latency_s']:7.2f}  {fw['chain_cpu_s'] / fw['audio_s']:13.3f}  "
                     f"{fw['peak_rss_mb']:11.0f}")
    if "f16" in per_quant and "q8_0" in per_quant and per_quant["f16"].get("wer") is not None:
        d = 100 * (per_quant["q8_0"]["wer"] - per_quant["f16"]["wer"])
        lines.append(f"  q8_0 - f16 WER = {d:+.1f} points (target <= +0.5)")
    lines.append("")
    lines.append("WER normalizer: NFKC, lower case, punctuation removed, numbers not rewritten (sttkb.models.wer).")
    return "\n".join(lines)


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
    load = os.getloadavg()
    cores = len(os.sched_getaffinity(0))
    return f"{cpu}, {cores} core(s), load average {load[0]:.1f} at start"


# -- the command -------------------------------------------------------------------------------------------
def cmd_bench(args) -> int:
    from sttkb.audio.files import read_audio, write_wav
    from sttkb.config import load_config
    from sttkb.models.default import embedded_source

    config = load_config(args.config)
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.audio:
        audio = read_audio(args.audio)
        reference = args.text
        if reference and Path(reference).is_file():
            reference = Path(reference).read_text(encoding="utf-8").strip()
    else:
        audio, reference = default_recording()
    audio = cut_after_speech(audio)
    machine = machine_description()
    quants = args.quants or ["f16", "q8_0"]
    for q in quants:
        if q not in QUANTS:
            raise BenchError(f"--quants {q}: choose from {', '.join(QUANTS)}")
    main_quant = "q8_0" if "q8_0" in quants else quants[0]
    with tempfile.TemporaryDirectory(prefix="sttkb-bench-") as tmp:
        work = Path(tmp)
        wav = work / "recording.wav"
        write_wav(wav, audio)
        models = quant_models(quants, work, config.models.store or None)
        base = {"kind": "sttkb", "audio": str(wav), "reference": reference, "threads": threads,
                "config": args.config, "audio_ctx": args.audio_ctx}
        per_quant = {}
        for q in quants:
            is_main = q == main_quant
            print(f"sttkb bench: {q}{' (with real-time streaming replay)' if is_main else ''} ...", file=sys.stderr)
            per_quant[q] = run_child({**base, "model": f"tiny.en {q}", "model_path": str(models[q]),
                                      "realtime": is_main, "repeats": args.repeats})
            if is_main and not args.skip_whole:
                per_quant[q].update(run_child({"kind": "whole", "audio": str(wav), "reference": reference,
                                               "threads": threads, "model_path": str(models[q])}))
        fw = None
        if faster_whisper_installed() and not args.no_faster_whisper:
            print("sttkb bench: faster-whisper ...", file=sys.stderr)
            fw = run_child({"kind": "faster-whisper", "audio": str(wav), "reference": reference,
                            "threads": threads, "ct2_dir": str(embedded_source()), "repeats": args.repeats})
    note = "skipped (--no-faster-whisper)" if args.no_faster_whisper else \
        "not installed (pip install faster-whisper to compare)"
    report = format_report(per_quant[main_quant], per_quant, fw, machine, note)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "sttkb": per_quant, "faster_whisper": fw},
                                              indent=2))
    return 0


def register(sub) -> None:
    """Add ``bench`` to the `sttkb` subparsers."""
    p = sub.add_parser("bench", help="measure latency, CPU, WER per quant type and memory",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio", metavar="FILE", help="recording to use (default: the built-in espeak clip x3)")
    p.add_argument("--text", metavar="TEXT|FILE", help="what is said in --audio (for WER)")
    p.add_argument("--quants", nargs="+", metavar="Q", help=f"quant types to compare (of {', '.join(QUANTS)}; "
                                                             f"default f16 q8_0)")
    p.add_argument("--threads", type=int, default=0, help="whisper.cpp / CTranslate2 threads (default: all cores)")
    p.add_argument("--audio-ctx", type=int, default=None, help="override asr.audio_ctx (0 = full 30 s window)")
    p.add_argument("--no-faster-whisper", action="store_true", help="skip faster-whisper even if installed")
    p.add_argument("--skip-whole", action="store_true", help="skip the whole-file pywhispercpp run")
    p.add_argument("--repeats", type=int, default=2, help="batch/raw runs per model; the fastest counts")
    p.add_argument("--json", metavar="FILE", help="also write all numbers as JSON")
    p.set_defaults(func=cmd_bench)

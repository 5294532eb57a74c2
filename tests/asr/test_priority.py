"""The decoding thread lowers its own priority so capture wins the CPU (real Linux scheduler attributes)."""

from __future__ import annotations

import os
import threading

from sttkb.asr.priority import DECODER_NICE, lower_decoder_thread


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _in_thread(fn):
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(fn()))
    t.start()
    t.join()
    return out


def test_the_decoder_thread_and_the_threads_it_starts_run_lower_and_no_one_else_does():
    base = _nice()

    def decoder() -> dict:
        first = lower_decoder_thread()
        again = lower_decoder_thread()          # once per thread: a second decode does not sink it further
        worker = _in_thread(lambda: {"worker": _nice()})   # as whisper.cpp's compute threads are started
        return {"first": first, "again": again, "now": _nice(), **worker}

    got = _in_thread(decoder)
    expected = min(19, base + DECODER_NICE)
    assert got == {"first": expected, "again": expected, "now": expected, "worker": expected}
    assert _nice() == base, "the caller's (capture's, typist's) priority is untouched"
    assert _in_thread(lambda: {"other": _nice()}) == {"other": base}


def test_a_real_decode_runs_below_the_capture_threads_priority_only_where_asked(engine):
    """The real whisper.cpp engine. By default (bench, transcribe, dictate on a desktop) the decoder keeps its
    priority; with ``yield_cpu`` (the box's daemon) the thread that decodes drops (once) below the others and
    nobody else moves."""
    import numpy as np

    from sttkb.audio.files import read_audio
    from sttkb.cli.bench import BENCH_DATA
    base = _nice()
    audio = read_audio(BENCH_DATA / "01-jfk.wav")[:3 * 16000].astype(np.float32)

    def decoder() -> dict:
        before = _nice()
        text = engine.transcribe(audio).text
        return {"before": before, "after": _nice(), "heard": bool(text.strip())}

    assert engine.yield_cpu is False
    assert _in_thread(decoder) == {"before": base, "after": base, "heard": True}
    engine.yield_cpu = True
    try:
        got = _in_thread(decoder)
    finally:
        engine.yield_cpu = False
    assert got == {"before": base, "after": min(19, base + DECODER_NICE), "heard": True}
    assert _nice() == base

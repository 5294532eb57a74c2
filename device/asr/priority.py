"""The decoder yields the CPU to capture, typing and Bluetooth.

whisper.cpp keeps every core busy while it decodes (``[asr] threads`` = 0: all of them). On a small board, or
anywhere the CPU is short, that can starve the thread that reads the microphone: the sound device's buffer
overflows and the words spoken meanwhile are lost for good — a decode can be redone, lost audio cannot. So the
thread that calls whisper.cpp lowers its own scheduling priority (Linux nice value, per thread) before its first
decode; the worker threads whisper.cpp starts from it inherit that. Capture, the typist and the control socket
keep the default priority and win whenever they need the CPU; when nothing else runs, the decoder is as fast as
before (nice only matters under contention). Lowering one's own priority needs no privilege.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

DECODER_NICE = 10
"""How much lower than the process's own priority the decoding thread runs (nice steps; CFS gives a nice-0
thread about 9 times the CPU share of a nice-10 one)."""

_lowered = threading.local()
_warned = False


def lower_decoder_thread(step: int = DECODER_NICE) -> int | None:
    """Lower the calling thread's priority by ``step`` nice levels (at most to 19), once per thread.

    Returns the thread's nice value afterwards, or None where threads have no nice value of their own (not
    Linux) or the call failed (a warning once, never raised: decoding goes on at normal priority)."""
    if getattr(_lowered, "nice", None) is not None:
        return _lowered.nice
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return None
    tid = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)   # on Linux PRIO_PROCESS with a thread id is that thread
        target = min(19, now + step)
        if target > now:
            os.setpriority(os.PRIO_PROCESS, tid, target)
        _lowered.nice = os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as e:
        global _warned
        if not _warned:
            _warned = True
            log.warning("could not lower the decoding thread's priority (%s): under load the microphone may lose "
                        "audio while whisper.cpp runs (a service needs setpriority in its SystemCallFilter)", e)
        return None
    return _lowered.nice

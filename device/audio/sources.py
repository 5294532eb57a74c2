"""Audio sources: anything that yields 16 kHz mono float32 chunks until the stream ends or ``stop()`` is called.

``FileSource`` hands a file over as fast as the consumer takes it; ``RealtimeFileSource`` replays it at 1x speed
(simulate mode, latency benchmark). ``sttkb.audio.mic.MicSource`` is the microphone.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import numpy as np

from sttkb.audio import SAMPLE_RATE
from sttkb.audio.files import read_audio

CHUNK_S = 0.03
"""Chunk length the file sources hand out (seconds): one VAD frame."""


class AudioSource(Protocol):
    """A stream of 16 kHz mono float32 chunks."""

    def chunks(self) -> Iterator[np.ndarray]:
        """Yield chunks (any length) until the stream ends or :meth:`stop` is called. Call once."""
        ...

    def stop(self) -> None:
        """End the stream: :meth:`chunks` returns soon after (safe from any thread, safe twice)."""
        ...

    @property
    def overflows(self) -> int:
        """Audio lost because the consumer was too slow or the device overran (events; 0 = nothing lost)."""
        ...


class ArraySource:
    """Samples already in memory, handed out as fast as they are taken (``realtime=False``) or at 1x speed.

    With ``realtime=True`` chunk *i* is released when the wall clock reaches ``start + i * chunk`` — like a
    microphone, so a consumer that falls behind catches up instead of slowing the replay down.
    """

    def __init__(self, samples: np.ndarray, *, realtime: bool = False, chunk_s: float = CHUNK_S,
                 clock=time.monotonic, sleep=time.sleep) -> None:
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.realtime = realtime
        self.chunk = max(1, int(round(chunk_s * SAMPLE_RATE)))
        self._stop = threading.Event()
        self._clock = clock
        self._sleep = sleep
        self.started_at: float | None = None
        """Clock time when the first chunk was released (``clock`` units: seconds)."""

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def overflows(self) -> int:
        return 0

    def stop(self) -> None:
        self._stop.set()

    def wall_time_of(self, position_s: float) -> float:
        """Clock time at which stream position ``position_s`` was (or will be) released (realtime only)."""
        if self.started_at is None:
            raise RuntimeError("the source has not started")
        return self.started_at + position_s

    def chunks(self) -> Iterator[np.ndarray]:
        self.started_at = self._clock()
        for i, pos in enumerate(range(0, len(self.samples), self.chunk)):
            if self._stop.is_set():
                return
            end = min(pos + self.chunk, len(self.samples))
            if self.realtime:
                due = self.started_at + end / SAMPLE_RATE
                delay = due - self._clock()
                if delay > 0 and self._stop.wait(delay):
                    return
            yield self.samples[pos:end]


class FileSource(ArraySource):
    """An audio file (any rate/channels, decoded up front) as a source; ``realtime=True`` replays at 1x."""

    def __init__(self, path: str | os.PathLike, *, realtime: bool = False, chunk_s: float = CHUNK_S) -> None:
        super().__init__(read_audio(path), realtime=realtime, chunk_s=chunk_s)
        self.path = path

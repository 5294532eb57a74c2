"""The always-open microphone and the per-session views the transcriber reads.

:class:`CaptureHub` reads the microphone (any iterator of audio chunks) in its own thread, keeps the last
``pre_roll_s`` seconds in a ring (so the first syllable said with the press is not cut), and hands each
listening session a :class:`SessionAudio`: an iterator of chunks from the press (minus the pre-roll) until
:meth:`SessionAudio.stop`. Audio outside a session is dropped at once: nothing is recorded while idle.

If the microphone's iterator raises (unplugged) or ends (a replayed file ran out), ``on_lost`` is called and
every open session ends after the audio it already has.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator

log = logging.getLogger(__name__)

Chunk = Any  # float32 samples, 16 kHz mono (what the audio source yields)
_END = object()


def chunk_seconds(chunk: Chunk, rate: int = 16000) -> float:
    return len(chunk) / rate


class SessionAudio:
    """One session's audio: iterate to get chunks; ends after :meth:`stop` (or when the mic is lost)."""

    def __init__(self, preroll: list[tuple[float, Chunk]], rate: int) -> None:
        self.rate = rate
        self._q: queue.Queue = queue.Queue()
        self.started_at: float | None = None  # monotonic time of the first sample
        self.stopped = threading.Event()
        self._ended = False
        self.read_count = 0  # chunks handed out so far
        for arrived, chunk in preroll:
            self.push(arrived, chunk)

    def push(self, arrived: float, chunk: Chunk) -> None:
        if self.started_at is None:
            self.started_at = arrived - chunk_seconds(chunk, self.rate)
        self._q.put(chunk)

    def stop(self) -> None:
        """End the session: the chunks already captured are still delivered, then iteration stops."""
        if not self.stopped.is_set():
            self.stopped.set()
            self._q.put(_END)

    close = stop

    @property
    def overflows(self) -> int:
        return 0  # the hub's queue is unbounded: a slow transcriber delays, never drops

    def chunks(self) -> Iterator[Chunk]:
        """The :class:`sttkb.audio.sources.AudioSource` view: the same as iterating."""
        return iter(self)

    @property
    def drained(self) -> bool:
        """True when the recording ended and every chunk was read."""
        return self._ended

    def __iter__(self) -> Iterator[Chunk]:
        """Chunks until the end; may be called again (after a failed stream) to read on where it stopped."""
        while not self._ended:
            item = self._q.get()
            if item is _END:
                self._ended = True
                return
            self.read_count += 1
            yield item


class CaptureHub:
    """Owns the microphone. ``open_mic()`` returns a :class:`sttkb.audio.sources.AudioSource` (``chunks()``,
    ``stop()``) or any iterable of chunks; it raises OSError when there is no microphone."""

    def __init__(self, open_mic: Callable[[], Iterable[Chunk]], *, on_lost: Callable[[Exception | None], None],
                 pre_roll_s: float = 0.3, rate: int = 16000, clock: Callable[[], float] = time.monotonic) -> None:
        self.open_mic, self.on_lost = open_mic, on_lost
        self.pre_roll_s, self.rate, self.clock = pre_roll_s, rate, clock
        self._lock = threading.Lock()
        self._ring: collections.deque[tuple[float, Chunk]] = collections.deque()
        self._sessions: list[SessionAudio] = []
        self._delivered_until = float("-inf")  # arrival time of the last chunk a session got
        self._mic: Iterable[Chunk] | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.running = False
        self.last_chunk_at = 0.0  # clock time of the newest chunk
        self._gen = 0

    def start(self, first_chunk_timeout_s: float = 3.0) -> None:
        """Open the microphone and start reading it; returns once the first audio arrived. Raises OSError when
        there is no microphone, it fails at once, or it gives no audio within ``first_chunk_timeout_s``."""
        mic = self.open_mic()
        first = threading.Event()
        result: dict[str, Exception | None] = {}
        with self._lock:
            self._gen += 1  # a reader of an abandoned microphone that wakes up later ends itself
            self._mic, self.running, self._closing = mic, True, False
        self._thread = threading.Thread(target=self._read, args=(mic, first, result, self._gen),
                                        name="sttkb-capture", daemon=True)
        self._thread.start()
        if not first.wait(first_chunk_timeout_s):
            self.close()
            raise OSError(f"the microphone gave no audio within {first_chunk_timeout_s:g} s")
        if "error" in result:  # ended before any audio
            err = result["error"]
            raise OSError(f"cannot read the microphone: {err or 'it gave no audio'}") from err

    def _read(self, mic: Iterable[Chunk], first: threading.Event, result: dict, gen: int) -> None:
        error: Exception | None = None
        try:
            chunks = mic.chunks() if hasattr(mic, "chunks") else mic  # type: ignore[union-attr]
            for chunk in chunks:
                now = self.clock()
                with self._lock:
                    if gen != self._gen:
                        return
                    for s in self._sessions:
                        s.push(now, chunk)
                    if self._sessions:
                        self._delivered_until = now
                    self._ring.append((now, chunk))
                    while self._ring and now - self._ring[0][0] > self.pre_roll_s:
                        self._ring.popleft()
                    if self._closing:
                        break
                self.last_chunk_at = now
                first.set()
        except Exception as e:  # the microphone went away
            error = e
        with self._lock:
            if gen != self._gen:
                return
            self.running = False
            sessions, self._sessions = self._sessions, []
            closing = self._closing
        for s in sessions:
            s.stop()
        if not first.is_set():
            result["error"] = error
            first.set()
            return
        if not closing:
            self.on_lost(error)

    def session(self) -> SessionAudio:
        """A new listening session starting ``pre_roll_s`` before now. Raises OSError if the mic is not running."""
        with self._lock:
            if not self.running:
                raise OSError("the microphone is not running")
            # pre-roll, but never audio an earlier session already had (it would be typed twice)
            s = SessionAudio([(t, c) for t, c in self._ring if t > self._delivered_until], self.rate)
            self._sessions.append(s)
            return s

    def end_session(self, s: SessionAudio) -> None:
        with self._lock:
            if s in self._sessions:
                self._sessions.remove(s)
        s.stop()

    def stalled(self, now: float, stall_s: float) -> bool:
        """True when the microphone is open but gave no audio for ``stall_s`` seconds (some USB mics just go
        silent when pulled: PortAudio keeps the stream "active" and stops calling back)."""
        return self.running and self.last_chunk_at > 0 and now - self.last_chunk_at > stall_s

    def abandon(self) -> None:
        """Give up on a stalled microphone: mark it gone at once, stop it in the background."""
        with self._lock:
            self._gen += 1
            self.running = False
            sessions, self._sessions = self._sessions, []
            mic, self._mic = self._mic, None
        for s in sessions:
            s.stop()
        threading.Thread(target=self._stop_mic, args=(mic,), name="sttkb-mic-close", daemon=True).start()

    @staticmethod
    def _stop_mic(mic) -> None:
        stop = getattr(mic, "stop", None) or getattr(mic, "close", None)
        if stop:
            try:
                stop()
            except Exception:
                log.debug("stopping the microphone failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            mic, self._mic = self._mic, None
        self._stop_mic(mic)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

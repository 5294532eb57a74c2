"""Follows what the keyboard has really typed: marks journal entries typed and measures latency.

Each piece of text handed to the keyboard is also handed here. A thread waits for the keyboard to become idle;
everything queued before that wait is then typed: its journal entries are marked ``typed`` and the time from
the end of speech to that last keystroke is recorded. A cancel marks the pending pieces ``cancelled`` with
the part that was not typed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from sttkb.keyboard import Keyboard

log = logging.getLogger(__name__)


@dataclass
class Piece:
    text: str
    journal_ids: tuple[int, ...] = ()
    session: int = 0
    speech_end: float | None = None   # monotonic time the speech of this piece ended (None: not speech)
    queued_at: float = field(default_factory=time.monotonic)
    typed_at: float | None = None     # monotonic time of its last keystroke
    closed_at: float | None = None    # monotonic time the VAD closed its segment (from the chain)
    ready_at: float | None = None     # monotonic time its text was ready (from the chain)

    @property
    def latency_s(self) -> float | None:
        """End of speech → last keystroke (seconds)."""
        if self.speech_end is None or self.typed_at is None:
            return None
        return self.typed_at - self.speech_end

    @property
    def breakdown(self) -> tuple[float, float, float] | None:
        """(waiting for the pause that ends a segment, transcribing, typing) in seconds; sums to the latency."""
        if None in (self.speech_end, self.closed_at, self.ready_at, self.typed_at):
            return None
        return (self.closed_at - self.speech_end, self.ready_at - self.closed_at,  # type: ignore[operator]
                self.typed_at - self.ready_at)  # type: ignore[operator]


def split_remainder(texts: list[str], remainder: str) -> list[str]:
    """How much of each text was left untyped, given the untyped ``remainder`` of their concatenation."""
    left = []
    n = len(remainder)
    for text in reversed(texts):
        take = min(n, len(text))
        left.append(text[len(text) - take:] if take else "")
        n -= take
    return list(reversed(left))


class TypingTracker:
    """Runs a thread; ``on_typed(pieces)`` is called from it after each batch reaches the host."""

    def __init__(self, keyboard: Keyboard, on_typed: Callable[[list[Piece]], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keyboard, self.on_typed, self.clock = keyboard, on_typed, clock
        self._pending: list[Piece] = []
        self._gen = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sttkb-typing", daemon=True)
        self._thread.start()

    def add(self, piece: Piece) -> None:
        with self._cond:
            self._pending.append(piece)
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._pending)

    def cancel(self, remainder: str) -> list[tuple[Piece, str]]:
        """Forget the pending pieces; return each with the part of it that was not typed."""
        with self._cond:
            pending, self._pending = self._pending, []
            self._gen += 1
        return list(zip(pending, split_remainder([p.text for p in pending], remainder)))

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                n, gen = len(self._pending), self._gen
            while not self.keyboard.wait_idle(0.5):
                if self._closed:
                    return
            now = self.clock()
            with self._cond:
                if gen != self._gen:
                    continue  # cancelled meanwhile
                done, self._pending = self._pending[:n], self._pending[n:]
            for p in done:
                p.typed_at = now
            try:
                self.on_typed(done)
            except Exception:
                log.exception("typing bookkeeping failed")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2)

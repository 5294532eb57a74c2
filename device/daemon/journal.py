"""The transcript journal: nothing the user said is lost, and nothing is typed twice by itself.

Append-only JSON lines. A transcript is written and fsynced as ``untyped`` *before* its first key is sent;
when the keyboard has sent it, a short ``{"id": N, "state": "typed"}`` line follows. Reading folds the lines,
so after a crash or power loss an entry whose last state is ``untyped`` shows in ``sttkb history`` as not
typed, and ``sttkb retype ID`` offers it — the daemon never types it by itself.

A torn last line (power lost mid-write) is skipped on reading, and the next append starts on a fresh line.
Beyond ``max_bytes`` the file is rotated to ``.1`` … ``.keep``. A disabled journal (privacy) writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from sttkb.daemon import Error

log = logging.getLogger(__name__)

UNTYPED, TYPED, CANCELLED = "untyped", "typed", "cancelled"
FILE_MODE = 0o640  # transcripts are private: owner rw, group sttkb (the CLI) r


class JournalError(Error, OSError):
    """The journal cannot be written (disk full, read-only, wrong owner)."""


@dataclass(frozen=True)
class Entry:
    id: int
    time: float        # seconds since the epoch, when it was transcribed
    session: int       # one button hold / hands-free run
    text: str
    state: str         # untyped | typed | cancelled
    left: str = ""     # for a cancelled entry: the part that was not typed


def default_path() -> Path:
    """Where the journal lives: $STATE_DIRECTORY (systemd), /var/lib/sttkb if writable, else ~/.local/state."""
    state_dir = os.environ.get("STATE_DIRECTORY")
    if state_dir:
        return Path(state_dir.split(":")[0]) / "journal.jsonl"
    system = Path("/var/lib/sttkb")
    if system.is_dir() and os.access(system, os.W_OK):
        return system / "journal.jsonl"
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "sttkb" / "journal.jsonl"


def readable_path() -> Path:
    """The journal ``sttkb history`` reads without a daemon: the system one if readable, else the user's."""
    system = Path("/var/lib/sttkb/journal.jsonl")
    if system.exists() and os.access(system, os.R_OK):
        return system
    return default_path()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_entries(path: Path, keep: int = 100) -> list[Entry]:
    """All entries in ``path`` and its rotated files, oldest first, with their last known state."""
    files = [path.with_name(f"{path.name}.{i}") for i in range(keep, 0, -1)] + [path]
    entries: dict[int, Entry] = {}
    torn = 0
    for f in files:
        try:
            data = f.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise JournalError(f"cannot read the journal {f}: {e}") from e
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                rid = int(rec["id"])
            except (ValueError, KeyError, TypeError):
                torn += 1
                continue
            if "text" in rec:
                entries[rid] = Entry(rid, float(rec.get("t", 0.0)), int(rec.get("session", 0)), str(rec["text"]),
                                     str(rec.get("state", UNTYPED)))
            elif rid in entries:
                entries[rid] = replace(entries[rid], state=str(rec.get("state", UNTYPED)),
                                       left=str(rec.get("left", "")))
    if torn:
        log.warning("journal %s: skipped %d damaged line(s) (power loss during a write?)", path, torn)
    return sorted(entries.values(), key=lambda e: e.id)


class Journal:
    """The daemon's writer. Thread-safe; every write is flushed and fsynced before it returns."""

    def __init__(self, path: Path | str | None = None, *, enabled: bool = True, max_bytes: int = 1_000_000,
                 keep: int = 3) -> None:
        self.enabled = enabled
        self.path = Path(path) if path else default_path()
        self.max_bytes, self.keep = max_bytes, keep
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._next_id = 1
        if enabled:
            existing = read_entries(self.path, keep)
            self._next_id = (existing[-1].id + 1) if existing else 1
            untyped = sum(1 for e in existing if e.state == UNTYPED)
            if untyped:
                log.warning("journal: %d transcript(s) from before the last stop were never typed; they are "
                            "not typed by themselves: see `sttkb history`, type one with `sttkb retype ID`",
                            untyped)

    # -- writing ---------------------------------------------------------------------------------------------
    def _open(self) -> int:
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
                size = os.fstat(fd).st_size
                if size:
                    with open(self.path, "rb") as f:
                        f.seek(size - 1)
                        if f.read(1) != b"\n":  # a torn last line: start ours on a fresh one
                            os.write(fd, b"\n")
                _fsync_dir(self.path.parent)
            except OSError as e:
                raise JournalError(f"cannot write the journal {self.path}: {e}. Check the directory exists and "
                                   f"belongs to the sttkb user, or set [journal] enabled = false") from e
            self._fd = fd
        return self._fd

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            for i in range(self.keep - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        _fsync_dir(self.path.parent)
        log.info("journal rotated (beyond %d bytes)", self.max_bytes)

    def _write(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        fd = self._open()
        try:
            if os.fstat(fd).st_size + len(line) > self.max_bytes and os.fstat(fd).st_size > 0:
                self._rotate()
                fd = self._open()
            os.write(fd, line)
            os.fsync(fd)
        except OSError as e:
            raise JournalError(f"cannot write the journal {self.path}: {e}") from e

    def append(self, text: str, session: int) -> int:
        """Record ``text`` as untyped and fsync it; return its id. Call this BEFORE typing it."""
        with self._lock:
            rid = self._next_id
            self._next_id += 1
            if self.enabled:
                self._write({"id": rid, "t": round(time.time(), 3), "session": session, "text": text,
                             "state": UNTYPED})
            return rid

    def mark(self, rid: int, state: str, left: str = "") -> None:
        """Record that entry ``rid`` was typed, or cancelled with ``left`` not typed."""
        if not self.enabled:
            return
        record: dict = {"id": rid, "state": state}
        if left:
            record["left"] = left
        with self._lock:
            self._write(record)

    # -- reading ---------------------------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """All kept entries, oldest first ([] when disabled)."""
        if not self.enabled:
            return []
        with self._lock:
            return read_entries(self.path, self.keep)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

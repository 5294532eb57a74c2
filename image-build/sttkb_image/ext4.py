"""The ext4 root filesystem inside the image file, read and written with debugfs at a byte offset.

Why debugfs and not ``mkfs.ext4 -d``: rebuilding the root from an extracted tree would have to carry over every
owner, mode, xattr (file capabilities such as ping's cap_net_raw), hard link and special file of Raspberry Pi OS.
debugfs leaves all of that untouched and only adds or replaces the files the build names. debugfs exits 0 even
when a command fails, so every run's stderr is checked and any message is an error.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import BaseImageError, ToolFailedError

log = logging.getLogger(__name__)

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_@%+=:,./~-]+$")
_BANNER = re.compile(r"^debugfs \d")


@dataclass(frozen=True)
class Entry:
    """A directory entry as ``ls -p`` shows it."""

    name: str
    mode: int
    uid: int
    gid: int
    size: int

    @property
    def is_dir(self) -> bool:
        return self.mode & 0o170000 == 0o040000


def _check_path(path: str) -> str:
    if not _SAFE_PATH.match(path):
        raise ToolFailedError(f"path {path!r} has characters debugfs commands cannot carry; rename it")
    return path


class Ext4:
    """An ext4 filesystem at ``offset`` bytes inside ``image``."""

    def __init__(self, image: Path, offset: int) -> None:
        self.spec = f"{image}?offset={offset}" if offset else str(image)

    def _debugfs(self, args: list[str], write: bool = False) -> subprocess.CompletedProcess[bytes]:
        cmd = ["debugfs", *(["-w"] if write else []), *args, self.spec]
        return subprocess.run(cmd, capture_output=True)

    @staticmethod
    def _errors(stderr: bytes) -> list[str]:
        lines = stderr.decode(errors="replace").splitlines()
        return [x for x in lines if x.strip() and not _BANNER.match(x)]

    def request(self, command: str) -> tuple[bytes, list[str]]:
        """Run one read-only debugfs command; return (stdout, error lines)."""
        proc = self._debugfs(["-R", command])
        return proc.stdout, self._errors(proc.stderr)

    def check_superblock(self, partition_size: int) -> tuple[int, int]:
        """Return (block size, free bytes); raise BaseImageError if this is no ext4 filesystem or it does not fit."""
        out, errors = self.request("stats -h")
        if errors or not out:
            raise BaseImageError(f"the root partition holds no readable ext4 filesystem: {' | '.join(errors[:3])}")
        text = out.decode(errors="replace")
        fields = dict(re.findall(r"^([A-Za-z ]+):\s+(\S+)", text, re.M))
        block, count, free = int(fields["Block size"]), int(fields["Block count"]), int(fields["Free blocks"])
        if block * count > partition_size:
            raise BaseImageError(f"the root filesystem ({block * count} bytes) is larger than its partition "
                                 f"({partition_size} bytes): corrupt image")
        return block, free * block

    def listdir(self, path: str) -> dict[str, Entry] | None:
        """Entries of directory ``path`` (without . and ..), or None if it does not exist."""
        out, errors = self.request(f'ls -p "{_check_path(path)}"')
        if errors:
            return None
        entries = {}
        for line in out.decode(errors="surrogateescape").splitlines():
            parts = line.split("/")
            if len(parts) < 7 or parts[5] in (".", ".."):
                continue
            entries[parts[5]] = Entry(parts[5], int(parts[2], 8), int(parts[3]), int(parts[4]),
                                      int(parts[6] or 0))
        return entries

    def stat(self, path: str) -> Entry | None:
        parent = str(PurePosixPath(path).parent)
        listing = self.listdir(parent)
        return None if listing is None else listing.get(PurePosixPath(path).name)

    def read(self, path: str) -> bytes | None:
        """The contents of regular file ``path``, or None if it does not exist."""
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "f"
            _, errors = self.request(f'dump "{_check_path(path)}" "{dest}"')
            if errors or not dest.exists():
                return None
            return dest.read_bytes()

    def extract_tree(self, path: str, dest: Path) -> Path:
        """Copy directory ``path`` and everything under it into the host directory ``dest`` (debugfs ``rdump``);
        return the copy (``dest``/its name). Raise ToolFailedError if debugfs reports anything."""
        dest.mkdir(parents=True, exist_ok=True)
        _, errors = self.request(f'rdump "{_check_path(path)}" "{_check_path(str(dest))}"')
        copy = dest / PurePosixPath(path).name
        if errors or not copy.is_dir():
            raise ToolFailedError(f"copying {path} out of the root filesystem failed (debugfs rdump): "
                                  + (" | ".join(errors[:3]) or "nothing was written"))
        return copy

    def readlink(self, path: str) -> str | None:
        out, errors = self.request(f'stat "{_check_path(path)}"')
        if errors:
            return None
        m = re.search(rb'Fast link dest: "(.*)"', out)
        return m.group(1).decode() if m else None

    def fsck(self, what: str = "after writing") -> None:
        """Check the filesystem read-only; raise ToolFailedError if e2fsck finds anything."""
        proc = subprocess.run(["e2fsck", "-fn", self.spec], capture_output=True)
        if proc.returncode != 0:
            msg = proc.stdout.decode(errors="replace").strip().splitlines()[-3:]
            raise ToolFailedError(f"e2fsck found errors in the root filesystem {what}: {' | '.join(msg)}")

    def preen(self) -> None:
        """Check and repair trivial issues before resizing (the image is our own copy); BaseImageError if broken."""
        proc = subprocess.run(["e2fsck", "-fp", self.spec], capture_output=True)
        if proc.returncode > 1:
            msg = (proc.stdout + proc.stderr).decode(errors="replace").strip().splitlines()[-3:]
            raise BaseImageError(f"the base image's root filesystem is damaged (e2fsck: {' | '.join(msg)}); "
                                 "download the image again")

    def resize(self, new_size: int) -> None:
        """Grow the filesystem to ``new_size`` bytes, then check it. Only for a filesystem that is a file of its
        own: resize2fs truncates a regular file to the filesystem size, ignoring an offset inside it."""
        proc = subprocess.run(["resize2fs", self.spec, f"{new_size // 1024}K"], capture_output=True)
        if proc.returncode != 0:
            raise ToolFailedError(f"resize2fs failed: {proc.stderr.decode(errors='replace').strip()}")
        self.fsck(what="after growing it")


class Batch:
    """debugfs commands collected and run in one process. Every inode written gets ``epoch`` as its times."""

    def __init__(self, fs: Ext4, epoch: int) -> None:
        self.fs = fs
        self.epoch = epoch
        self.lines: list[str] = []

    def _attrs(self, path: str, mode: int, uid: int, gid: int) -> None:
        p = _check_path(path)
        self.lines += [f'sif "{p}" mode 0{mode:o}', f'sif "{p}" uid {uid}', f'sif "{p}" gid {gid}']
        self.touch(path)

    def touch(self, path: str) -> None:
        p = _check_path(path)
        for field in ("atime", "mtime", "ctime", "crtime"):
            self.lines.append(f'sif "{p}" {field} @{self.epoch}')

    def mkdir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self.lines.append(f'mkdir "{_check_path(path)}"')
        self._attrs(path, 0o040000 | mode, uid, gid)

    def write(self, path: str, source: Path, mode: int = 0o644, uid: int = 0, gid: int = 0,
              replace: bool = False) -> None:
        if replace:
            self.lines.append(f'rm "{_check_path(path)}"')
        self.lines.append(f'write "{_check_path(str(source))}" "{_check_path(path)}"')
        self._attrs(path, 0o100000 | mode, uid, gid)

    def symlink(self, path: str, target: str, uid: int = 0, gid: int = 0, replace: bool = False) -> None:
        if replace:
            self.lines.append(f'rm "{_check_path(path)}"')
        self.lines.append(f'symlink "{_check_path(path)}" "{_check_path(target)}"')
        self._attrs(path, 0o120777, uid, gid)

    def run(self) -> None:
        """Run all commands; raise ToolFailedError with debugfs's messages if any command failed."""
        if not self.lines:
            return
        with tempfile.NamedTemporaryFile("w", suffix=".debugfs", delete=False) as f:
            f.write("\n".join(self.lines) + "\n")
            script = f.name
        try:
            proc = self.fs._debugfs(["-f", script], write=True)
        finally:
            Path(script).unlink()
        errors = Ext4._errors(proc.stderr)
        if proc.returncode != 0 or errors:
            raise ToolFailedError("writing the root filesystem failed (debugfs): " + " | ".join(errors[:5]))
        log.info("root filesystem: %d debugfs commands applied", len(self.lines))
        self.lines = []

"""The downloaded base image: checksum, size and decompression into the build's temporary file."""

from __future__ import annotations

import hashlib
import logging
import lzma
import shutil
import subprocess
from pathlib import Path

from .errors import BaseImageError, ChecksumError

log = logging.getLogger(__name__)

DOWNLOAD_PAGE = "https://www.raspberrypi.com/software/operating-systems/"
DOWNLOAD_HINT = (f"Download 'Raspberry Pi OS Lite' (64-bit, Bookworm or newer) from {DOWNLOAD_PAGE}; "
                 "the page lists the SHA256 of the .img.xz file next to the download link.")
CHUNK = 4 << 20


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected: str) -> None:
    """Raise ChecksumError unless the file's sha256 is ``expected`` (hex, any case)."""
    expected = expected.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ChecksumError(f"--sha256 must be 64 hex digits, got {expected!r}")
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(f"{path}: sha256 is {actual}, expected {expected}. The download is incomplete or "
                            f"not the file you meant; download it again. {DOWNLOAD_HINT}")


def is_xz(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"\xfd7zXZ\x00"


def uncompressed_size(path: Path) -> int:
    """Size of the raw image in bytes (for .xz from the xz index, without decompressing)."""
    if not is_xz(path):
        return path.stat().st_size
    proc = subprocess.run(["xz", "--robot", "--list", str(path)], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == "totals" and len(parts) > 4:
            return int(parts[4])
    raise BaseImageError(f"{path}: not a readable .xz file ({proc.stderr.strip()}); download it again")


def extract(path: Path, dest: Path) -> None:
    """Write the raw image to ``dest`` (decompressing .xz); the source file is only read."""
    log.info("copying the base image to %s", dest)
    try:
        if is_xz(path):
            with lzma.open(path, "rb") as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
        else:
            shutil.copyfile(path, dest)
    except (lzma.LZMAError, EOFError) as e:
        raise BaseImageError(f"{path}: corrupt .xz data ({e}); download it again") from e

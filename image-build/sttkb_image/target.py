"""What the base image is: release, Python version, installed packages (read from its root filesystem)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BaseImageError
from .ext4 import Ext4

# Debian release -> (glibc version, Debian suite). Raspberry Pi OS Bookworm is the oldest with /boot/firmware.
RELEASES = {"bookworm": ((2, 36), "bookworm"), "trixie": ((2, 41), "trixie")}


@dataclass(frozen=True)
class Target:
    codename: str
    suite: str
    glibc: tuple[int, int]
    python: tuple[int, int]
    dpkg_status: bytes


def read_target(fs: Ext4) -> Target:
    """Inspect the root filesystem; raise BaseImageError for anything older than Bookworm or without Python."""
    os_release = fs.read("/etc/os-release") or fs.read("/usr/lib/os-release")
    if os_release is None:
        raise BaseImageError("the root filesystem has no /etc/os-release: not a Raspberry Pi OS image")
    m = re.search(rb"^VERSION_CODENAME=\"?([a-z]+)", os_release, re.M)
    codename = m.group(1).decode() if m else "unknown"
    if codename not in RELEASES:
        raise BaseImageError(f"base image is Debian/Raspberry Pi OS '{codename}'; this build supports "
                             f"{', '.join(RELEASES)} (use a Bookworm or newer 64-bit Lite image)")
    link = fs.readlink("/usr/bin/python3")
    m2 = re.fullmatch(r"(?:/usr/bin/)?python(\d)\.(\d+)", link or "")
    if not m2:
        raise BaseImageError(f"/usr/bin/python3 in the base image is not a link to pythonX.Y ({link!r})")
    glibc, suite = RELEASES[codename]
    return Target(codename, suite, glibc, (int(m2.group(1)), int(m2.group(2))),
                  fs.read("/var/lib/dpkg/status") or b"")

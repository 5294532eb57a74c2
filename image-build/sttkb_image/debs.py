"""Debian arm64 packages the device needs, downloaded on the build host and installed offline at first boot.

apt-get runs with a private root directory (its own sources.list, lists and cache) and the *target's* dpkg status
file, so it downloads exactly the packages the image lacks, with their dependencies — without
``dpkg --add-architecture`` or any other change to the build host. Packages come from Debian's archive (Raspberry
Pi OS arm64 is Debian's arm64 plus a few Raspberry Pi packages); signatures are checked with the host's
debian-archive-keyring. They cannot be unpacked at build time (maintainer scripts are arm64 programs), so the
first boot runs ``dpkg -i`` on them, with no network.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

from .cache_dir import cached
from .errors import DownloadError

log = logging.getLogger(__name__)

# PyAudio from Debian (no aarch64 wheel); libxkbcommon0 (with xkb-data, its layouts) for the xkbcommon module
# the build compiled (sttkb_image.cross_wheel); libx11-data for the Compose table (dead keys of the host's layout;
# without it the box logs that it falls back). No compiler: the box installs wheels only.
DEVICE_PACKAGES = ["python3-pyaudio", "libportaudio2", "libxkbcommon0", "xkb-data", "libx11-data"]
READ_ONLY_PACKAGES = ["overlayroot"]
MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def _apt_options(root: Path, status: Path) -> list[str]:
    return ["-o", f"Dir={root}", "-o", f"Dir::State::status={status}", "-o", "APT::Architecture=arm64",
            "-o", "APT::Architectures::=arm64", "-o", "Debug::NoLocking=1", "-o", "Acquire::Languages=none",
            "-o", "APT::Install-Recommends=false", "-o", "Dir::Etc::TrustedParts=/nonexistent",
            "-o", "APT::Sandbox::User=root", "-q"]


def download_debs(packages: list[str], suite: str, target_status: bytes, cache: Path) -> list[Path]:
    """Download ``packages`` and the dependencies the target lacks; return the .deb files (sorted).

    Cached by (suite, packages, status): a second build with the same base downloads nothing.
    """
    if not packages:
        return []
    key = hashlib.sha256(repr((suite, sorted(packages))).encode() + target_status).hexdigest()[:16]

    def fill(tmp: Path) -> list[str]:
        opts, archives = _apt_root(suite, cache, target_status)
        log.info("debs: resolving %s against the image's installed packages", " ".join(packages))
        _apt(["apt-get", *opts, "install", "-y", "--download-only", *packages], "downloading arm64 packages")
        debs = sorted(archives.glob("*.deb"))
        for deb in debs:
            shutil.copy2(deb, tmp / deb.name)
        return [deb.name for deb in debs]

    return cached(cache / f"debs-{suite}-{key}", fill, "debs")


def _apt_root(suite: str, cache: Path, target_status: bytes) -> tuple[list[str], Path]:
    """The private apt root for ``suite`` (arm64 index fetched once): apt's options and its empty archive dir."""
    if not KEYRING.exists():
        raise DownloadError(f"{KEYRING} is missing: sudo apt-get install debian-archive-keyring")
    root = cache / f"apt-{suite}-arm64"
    (root / "etc/apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/preferences.d").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    archives = root / "var/cache/apt/archives"
    shutil.rmtree(archives, ignore_errors=True)
    (archives / "partial").mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text(
        f"deb [arch=arm64 signed-by={KEYRING}] {MIRROR} {suite} main\n"
        f"deb [arch=arm64 signed-by={KEYRING}] {MIRROR} {suite}-updates main\n"
        f"deb [arch=arm64 signed-by={KEYRING}] {SECURITY} {suite}-security main\n")
    status = root / "target-status"
    status.write_bytes(target_status)
    opts = _apt_options(root, status)
    stamp = root / "var/lib/apt/lists/.updated"
    if not stamp.exists():
        log.info("debs: fetching the Debian %s arm64 package index", suite)
        _apt(["apt-get", *opts, "update"], "apt-get update (Debian arm64 index)")
        stamp.touch()
    return opts, archives


def download_exact(packages: list[str], suite: str, cache: Path) -> list[Path]:
    """Download exactly ``packages`` (arm64, no dependencies): e.g. headers to compile against, unpacked rather
    than installed. Cached by (suite, packages); the files are in the order of ``packages``."""
    key = hashlib.sha256(repr((suite, list(packages))).encode()).hexdigest()[:16]

    def fill(tmp: Path) -> list[str]:
        opts, _ = _apt_root(suite, cache, b"")
        log.info("debs: downloading %s (arm64, without dependencies)", " ".join(packages))
        proc = subprocess.run(["apt-get", *opts, "download", *packages], capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
            raise DownloadError(f"downloading {' '.join(packages)} (arm64) failed: {tail}")
        order = []
        for name in packages:
            found = sorted(tmp.glob(f"{name.split(':')[0]}_*.deb"))
            if len(found) != 1:
                raise DownloadError(f"apt-get download gave {len(found)} files for {name}")
            order.append(found[0].name)
        return order

    return cached(cache / f"debs-exact-{suite}-{key}", fill, "debs")


def download_closure(packages: list[str], suite: str, cache: Path) -> list[Path]:
    """Download ``packages`` with every dependency, as for an empty system (an empty dpkg status): the .debs of
    an arm64 sysroot, e.g. to run the image's aarch64 Python under qemu-user. Same private apt root and cache
    as :func:`download_debs`; the host's dpkg architectures are not touched."""
    return download_debs(packages, suite, b"", cache)


def simulate(packages: list[str], suite: str, target_status: bytes, cache: Path) -> list[str]:
    """Names of the packages apt would download for ``packages`` (no download; needs the index fetched by an
    earlier :func:`download_debs` for this suite)."""
    root = cache / f"apt-{suite}-arm64"
    status = root / "simulate-status"
    status.write_bytes(target_status)
    out = _apt(["apt-get", *_apt_options(root, status), "install", "-s", *packages], "resolving arm64 packages")
    return sorted(line.split()[1] for line in out.splitlines() if line.startswith("Inst "))


def _apt(cmd: list[str], what: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise DownloadError(f"{what} failed: {tail}")
    return proc.stdout

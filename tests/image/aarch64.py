"""Running the image's aarch64 Python code on this (x86_64) machine: qemu-user (``qemu-aarch64-static``) with an
emulated Raspberry Pi CPU and a sysroot of Debian arm64 packages, unpacked with ``dpkg-deb -x``.

The sysroot's .debs come through the image build's own apt machinery (sttkb_image.debs: a private apt root,
APT::Architecture=arm64, the host's dpkg architectures untouched) and the unpacked sysroot is cached per user
under tests.conftest.CACHE, keyed by the release and the package list, written atomically (.partial, then
rename).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import CACHE

QEMU = "qemu-aarch64-static"
# The Pi Zero 2 W's and Pi 3's core, the oldest the box supports (ARMv8.0-A: no dotprod, no FP16 arithmetic, no
# ARMv8.4 stlur). A Pi 4 (Cortex-A72) and a Pi 5 (Cortex-A76) run everything an A53 runs.
PI_CPU = "cortex-a53"
SYSROOT_CACHE = CACHE / "arm64-sysroot"


def sysroot_packages(python: tuple[int, int]) -> list[str]:
    """Debian arm64 packages for a CPython ``python`` that can import the wheelhouse (their dependencies come
    with them), and the keymaps' libxkbcommon with its layouts and Compose table (as the box's .debs). Not
    libsndfile1: the soundfile wheel bundles libsndfile; pywhispercpp bundles its libgomp."""
    v = f"{python[0]}.{python[1]}"
    return [f"python{v}-minimal", f"libpython{v}-minimal", f"libpython{v}-stdlib", "libc6", "libstdc++6",
            "libgcc-s1", "libgomp1", "zlib1g", "libffi8", "libssl3", "libexpat1", "libbz2-1.0", "liblzma5",
            "libsqlite3-0", "libncursesw6", "libtinfo6", "libreadline8", "libuuid1", "libxkbcommon0", "xkb-data",
            "libx11-data"]


def qemu_user_unavailable_reason() -> str | None:
    """Why aarch64 programs cannot run here under qemu-user, or None."""
    for tool, package in ((QEMU, "qemu-user-static"), ("dpkg-deb", "dpkg"), ("debugfs", "e2fsprogs"),
                          ("apt-get", "apt")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package}; scripts/setup --test does it)"
    return None


def require_qemu_user() -> None:
    """In a pytest test or fixture: skip with the reason if aarch64 programs cannot run here (fail instead when
    ``STTKB_REQUIRE_VM=1``, as tests.vm.harness.require_vm does, so CI cannot silently skip the check)."""
    import pytest

    reason = qemu_user_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("STTKB_REQUIRE_VM") == "1":
        pytest.fail(f"STTKB_REQUIRE_VM=1 but {reason}")
    pytest.skip(reason)


def arm64_sysroot(suite: str, python: tuple[int, int], cache: Path = SYSROOT_CACHE) -> Path:
    """A directory with Debian ``suite``'s arm64 CPython ``python`` and its libraries (built once, then cached).
    Raises sttkb_image.errors.DownloadError if the Debian archive cannot be reached."""
    from sttkb_image import debs

    packages = sysroot_packages(python)
    key = hashlib.sha256(repr((suite, sorted(packages))).encode()).hexdigest()[:16]
    dest = cache / f"sysroot-{suite}-arm64-{key}"
    if (dest / ".complete").exists():
        return dest
    files = debs.download_closure(packages, suite, cache)
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for deb in files:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True, capture_output=True)
    if not (tmp / "usr" / "bin" / f"python{python[0]}.{python[1]}").is_file():
        raise RuntimeError(f"the arm64 sysroot has no usr/bin/python{python[0]}.{python[1]} after unpacking "
                           f"{len(files)} packages")
    (tmp / ".complete").write_text("\n".join(d.name for d in files) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def python_command(sysroot: Path, python: tuple[int, int], cpu: str = PI_CPU) -> list[str]:
    """The command prefix that runs the sysroot's Python on an emulated ``cpu``."""
    return [QEMU, "-cpu", cpu, "-L", str(sysroot), str(sysroot / "usr" / "bin" / f"python{python[0]}.{python[1]}")]


def install_wheels(wheels: list[Path], target: Path, glibc: tuple[int, int], python: tuple[int, int],
                   pip_python: str) -> None:
    """Install aarch64 wheels into ``target`` with this machine's pip (no index, no dependency resolution: the
    wheelhouse is the complete set, as on the box's first boot). Raises RuntimeError with pip's message."""
    from sttkb_image.box_python import platform_args

    proc = subprocess.run([pip_python, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--target", str(target), *platform_args(glibc, python), *map(str, wheels)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("installing the aarch64 wheels failed: " + proc.stderr.strip()[-1500:])

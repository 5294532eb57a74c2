"""The offline wheelhouse: aarch64 wheels of every runtime dependency, downloaded on the build host at exactly the
versions of the checkout's ``requirements.lock`` (see :mod:`sttkb_image.lock`), the lock the dev/CI venv is
installed from too.

Two dependencies publish no aarch64 wheel on PyPI (checked 2026-11):
- PyAudio (sdist only): the image uses Debian's ``python3-pyaudio`` .deb (same API; the venv is created with
  ``--system-site-packages`` so it sees it).
- xkbcommon (cffi in API mode, sdist only): the sdist is downloaded here and compiled by the image build into an
  aarch64 wheel (:mod:`sttkb_image.cross_wheel`), so the box installs wheels only and needs no compiler.
Everything else is a manylinux/py3-none wheel. pip itself is in the wheelhouse (and in the lock) so the first boot
can create the venv with ``--without-pip`` (Raspberry Pi OS need not have python3-venv's ensurepip).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from . import lock
from .box_python import APT_PROVIDED, CROSS_BUILT, platform_args
from .cache_dir import cached
from .errors import DownloadError, Error, ToolFailedError

log = logging.getLogger(__name__)

EXTRA_WHEELS = list(lock.BOOTSTRAP)  # the venv's bootstrap (pinned in the lock)


def _name(requirement: str) -> str:
    return lock.canonical(re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0])


def runtime_requirements(pyproject: Path) -> list[str]:
    """The project's [project].dependencies (ranges: library metadata, not what gets installed)."""
    data = tomllib.loads(pyproject.read_text())
    return list(data["project"]["dependencies"])


def locked_requirements(repo: Path) -> list[str]:
    """What the image installs: the checkout's requirements.lock as exact ``name==version`` requirements."""
    path = repo / lock.RUNTIME
    if not path.is_file():
        raise Error(f"{path} is missing: the image installs exactly the locked versions (scripts/lock writes it)")
    try:
        return lock.requirements(path)
    except ValueError as e:
        raise Error(f"{e}; regenerate it with scripts/lock") from None


def dist_of(filename: str) -> tuple[str, str] | None:
    """(canonical name, version) of a wheel or sdist file name, or None for anything else."""
    if filename.endswith(".whl"):
        name, version = filename[:-4].split("-")[:2]
    elif filename.endswith(".tar.gz"):
        name, _, version = filename[:-7].rpartition("-")
    else:
        return None
    return lock.canonical(name), version


def _pip(python: str, args: list[str], what: str) -> None:
    proc = subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        raise DownloadError(f"{what} failed: {tail}. Check the network access to PyPI and try again")


def download_wheelhouse(requirements: list[str], glibc: tuple[int, int], python: tuple[int, int],
                        cache: Path, pip_python: str = sys.executable) -> Path:
    """Download (once; cached by requirements + target) the dependency wheels and sdists into a directory.

    ``requirements`` are the lock's exact pins (:func:`locked_requirements`), bootstrap wheels included. pip
    resolves them (so a dependency the lock forgot shows up) and the result must be exactly the pins.
    """
    pins = lock.parse("\n".join(requirements), "requirements")
    missing = [n for n in EXTRA_WHEELS if n not in pins]
    if missing:
        raise Error(f"the lock pins no {', '.join(missing)} (the image's venv bootstrap); regenerate it with "
                    "scripts/lock")
    wanted = [r for r in requirements if _name(r) not in APT_PROVIDED and _name(r) not in CROSS_BUILT]
    sdists = [r for r in requirements if _name(r) in CROSS_BUILT]
    key = hashlib.sha256(json.dumps([wanted, sdists, glibc, python]).encode()).hexdigest()[:16]
    dest = cache / f"wheelhouse-cp{python[0]}{python[1]}-{key}"

    def fill(tmp: Path) -> list[str]:
        log.info("wheelhouse: downloading the locked aarch64 wheels for CPython %d.%d (glibc %d.%d)", *python,
                 *glibc)
        _pip(pip_python, ["download", "-q", "-d", str(tmp), *platform_args(glibc, python), *wanted],
             "downloading aarch64 wheels")
        if sdists:
            _pip(pip_python, ["download", "-q", "--no-deps", "--no-binary=:all:", "-d", str(tmp), *sdists],
                 "downloading the sources the build compiles")
        got = {d for d in (dist_of(p.name) for p in tmp.iterdir()) if d is not None}
        expected = {(_name(r), pins[_name(r)]) for r in [*wanted, *sdists]}
        if got != expected:
            extra = sorted(f"{n}=={v}" for n, v in got - expected)
            absent = sorted(f"{n}=={v}" for n, v in expected - got)
            raise Error(f"the wheelhouse is not exactly the lock: unlocked {', '.join(extra) or 'none'}; missing "
                        f"{', '.join(absent) or 'none'}. Regenerate the lock with scripts/lock")
        return sorted(p.name for p in tmp.iterdir())

    cached(dest, fill, "wheelhouse")
    return dest


def build_project_wheel(repo: Path, out_dir: Path, epoch: int, pip_python: str = sys.executable) -> Path:
    """Build the project's own wheel from a clean copy of the source (nothing is written into the checkout)."""
    src = out_dir / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "device", "gadget"):
        path = repo / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, src / name)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    proc = subprocess.run([pip_python, "-m", "pip", "wheel", "-q", "--no-deps",
                           "-w", str(out_dir), str(src)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise ToolFailedError("building the sttkb wheel failed: " + " | ".join(proc.stderr.splitlines()[-4:]))
    wheels = sorted(out_dir.glob("sttkb-*.whl"))
    if not wheels:
        raise ToolFailedError("building the sttkb wheel produced no wheel")
    return wheels[-1]


def non_aarch64(wheel_names: list[str]) -> list[str]:
    """Wheels that cannot run on the target (platform-specific but not aarch64)."""
    bad = []
    for name in wheel_names:
        if not name.endswith(".whl"):
            continue
        platform = name[:-4].split("-")[-1]
        if platform != "any" and "aarch64" not in platform:
            bad.append(name)
    return bad

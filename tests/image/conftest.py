"""Fixtures for the SD-image build tests: a small synthetic Raspberry Pi OS image, the aarch64 wheelhouse (downloaded
from PyPI once and cached under ~/.cache/sttkb-tests/), and one finished build shared by the checks."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CACHE, REPO
from tests.image.synthetic import make_base_image


from sttkb_image import build as image_build
from sttkb_image import cross_wheel, ggml_variants, wheelhouse
from sttkb_image.errors import DownloadError
from sttkb_image.ext4 import Ext4
from sttkb_image.partitions import read_layout

IMAGE_CACHE = CACHE / "image"
EPOCH = 1_700_000_000
# python3-pyaudio only (not gcc/python3-dev, ~60 MB): the synthetic image's dpkg status lists what Pi OS Lite has
# for it, so the test downloads (once) and ships a handful of small .debs.
TEST_APT_PACKAGES = ("python3-pyaudio",)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Built:
    """A finished image and the handles to read it."""

    path: Path
    root: Ext4
    boot_offset: int
    root_offset: int
    wheelhouse: Path


@pytest.fixture(scope="session")
def base_image(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("base")
    return make_base_image(work / "raspios-lite-test.img", work / "parts")


@pytest.fixture(scope="session")
def aarch64_wheelhouse() -> Path:
    """Runtime dependency wheels for aarch64 / CPython 3.11 / glibc 2.36 at the lock's versions, as the image build
    downloads them (PyPI once, then cached)."""
    reqs = wheelhouse.locked_requirements(REPO)
    try:
        return wheelhouse.download_wheelhouse(reqs, (2, 36), (3, 11), IMAGE_CACHE, sys.executable)
    except DownloadError as e:
        pytest.skip(f"cannot download the aarch64 wheelhouse (PyPI unreachable?): {e}")


def options(base: Path, output: Path, wheels: Path, model: Path, **kw) -> image_build.Options:
    return image_build.Options(base=base, sha256=kw.pop("sha", None) or sha256(base), output=output,
                               repo=kw.pop("repo", REPO),
                               cache=IMAGE_CACHE, epoch=EPOCH, model=model, apt_packages=TEST_APT_PACKAGES,
                               pip_python=sys.executable, wheelhouse_dir=wheels, **kw)


@pytest.fixture(scope="session")
def build_image(base_image, aarch64_wheelhouse, default_model):
    """Build from the synthetic base; returns a function (output path, **Options overrides) -> Built."""
    def run(output: Path, **kw) -> Built:
        try:
            base = kw.pop("base", base_image)
            image_build.build(options(base, output, aarch64_wheelhouse, default_model, **kw))
        except DownloadError as e:
            pytest.skip(f"cannot download Debian arm64 packages (archive unreachable?): {e}")
        layout = read_layout(output)
        return Built(output, Ext4(output, layout.root.start), layout.boot.start, layout.root.start,
                     aarch64_wheelhouse)
    return run


@pytest.fixture(scope="session")
def built(build_image, tmp_path_factory) -> Built:
    """One image built with the default options, shared by the read-only checks."""
    return build_image(tmp_path_factory.mktemp("out") / "sttkb.img")


def mtype(built: Built, name: str) -> str:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    return subprocess.run(["mtype", "-i", f"{built.path}@@{built.boot_offset}", f"::/{name}"], check=True,
                          capture_output=True, env=env).stdout.decode()


def tool_dir_without(tmp: Path, missing: str) -> Path:
    """A directory of symlinks to every tool the build uses except ``missing`` (for PATH)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for tool in ("sfdisk", "mcopy", "mtype", "mdir", "debugfs", "e2fsck", "resize2fs", "apt-get", "xz", "git",
                 *{**ggml_variants.TOOLS, **cross_wheel.TOOLS}):
        found = shutil.which(tool)
        if found and tool != missing:
            (bin_dir / tool).symlink_to(found)
    return bin_dir

"""Fixtures for the whole-box checks: a Debian bookworm arm64 stand-in for Raspberry Pi OS Lite (built once and cached
per user), the SD image the project's own build makes from it, and booting that image on an emulated Pi CPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CACHE, REPO
from tests.vm.harness import require_vm


from sttkb_image import arm64_vm
from sttkb_image import debian_base as base_recipe
from sttkb_image import build as image_build
from sttkb_image.errors import Error as ImageError
from sttkb_image.partitions import read_layout

IMAGE_CACHE = CACHE / "image"
EPOCH = 1_700_000_000


def require_box() -> None:
    """Skip with the reason where qemu-system-aarch64 or debootstrap is missing; fail in CI (STTKB_REQUIRE_VM=1)."""
    require_vm()
    missing = [t for t in (arm64_vm.QEMU, "debootstrap", "mkfs.vfat", "mcopy") if shutil.which(t) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (scripts/setup --test installs them)"
        if os.environ.get("STTKB_REQUIRE_VM") == "1":
            pytest.fail(f"STTKB_REQUIRE_VM=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def debian_base() -> Path:
    """The stand-in base image (cached per user; 20-30 minutes to make the first time on 2 cores)."""
    require_box()
    try:
        return base_recipe.make_debian_base(IMAGE_CACHE)
    except ImageError as e:
        pytest.fail(f"making the Debian arm64 base failed: {e}")


@dataclass(frozen=True)
class BoxImage:
    """A freshly built sttkb image (never booted) and how to boot it."""

    path: Path
    kernel: Path
    initrd: Path
    cmdline: str
    """The kernel command line from the image's own cmdline.txt (as edited by the build)."""


def _mtype(image: Path, offset: int, name: str, dest: Path | None = None) -> bytes:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    if dest is not None:
        subprocess.run(["mcopy", "-n", "-i", f"{image}@@{offset}", f"::/{name}", str(dest)], check=True, env=env)
        return b""
    return subprocess.run(["mtype", "-i", f"{image}@@{offset}", f"::/{name}"], check=True, capture_output=True,
                          env=env).stdout


@pytest.fixture(scope="session")
def box_image(debian_base, default_model, tmp_path_factory) -> BoxImage:
    """The project's SD image built by image-build from the Debian stand-in, with the default device packages."""
    out = tmp_path_factory.mktemp("box")
    sha = debian_base.with_suffix(".img.sha256").read_text().strip()
    opts = image_build.Options(base=debian_base, sha256=sha, output=out / "sttkb.img", repo=REPO, cache=IMAGE_CACHE,
                               epoch=EPOCH, model=default_model, pip_python=sys.executable)
    try:
        image_build.build(opts)
    except ImageError as e:
        pytest.fail(f"image-build on the Debian stand-in failed: {e}")
    boot = read_layout(opts.output).boot.start
    kernel, initrd = out / base_recipe.KERNEL_NAME, out / base_recipe.INITRD_NAME
    _mtype(opts.output, boot, base_recipe.KERNEL_NAME, kernel)
    _mtype(opts.output, boot, base_recipe.INITRD_NAME, initrd)
    cmdline = _mtype(opts.output, boot, "cmdline.txt").decode().strip()
    return BoxImage(opts.output, kernel, initrd, cmdline)


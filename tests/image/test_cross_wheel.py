"""The wheel the image build compiles for the box from a source-only dependency (xkbcommon, cffi API mode), with
the real aarch64 cross compiler against Debian's real arm64 .debs. That the wheel runs on a Pi's CPU is checked
in tests/image/test_engine_aarch64.py (qemu-user, Cortex-A53); that it installs and works through the first
boot's own venv step, in tests/image/test_firstboot.py and tests/box."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.image.conftest import IMAGE_CACHE

from sttkb_image import cross_wheel, debs, lock
from sttkb_image.errors import DownloadError, Error

PYTHON = (3, 11)


@pytest.fixture(scope="module")
def sdist(aarch64_wheelhouse) -> Path:
    (found,) = aarch64_wheelhouse.glob("xkbcommon-*.tar.gz")
    return found


@pytest.fixture(scope="module")
def arm64(tmp_path_factory) -> cross_wheel.Compiler:
    if shutil.which(cross_wheel.CROSS_CC) is None:
        pytest.fail(f"{cross_wheel.CROSS_CC} is missing: scripts/setup --test installs gcc-aarch64-linux-gnu")
    try:
        files = debs.download_exact(cross_wheel.header_debs("xkbcommon", PYTHON), "bookworm", IMAGE_CACHE)
    except DownloadError as e:
        pytest.skip(f"cannot download Debian arm64 packages (archive unreachable?): {e}")
    return cross_wheel.arm64_compiler(files, tmp_path_factory.mktemp("sysroot") / "root", PYTHON)


def _cffi() -> str:
    return lock.read(REPO / lock.RUNTIME)["cffi"]


def test_the_aarch64_wheel_is_complete_and_the_same_every_time(sdist, arm64, tmp_path):
    first = cross_wheel.build_wheel(sdist, tmp_path / "a", arm64, PYTHON, _cffi(), sys.executable)
    again = cross_wheel.build_wheel(sdist, tmp_path / "b", arm64, PYTHON, _cffi(), sys.executable)
    assert first.name == "xkbcommon-1.5.1-cp311-abi3-linux_aarch64.whl"
    assert first.read_bytes() == again.read_bytes()       # same inputs, same bytes (the image is reproducible)
    with zipfile.ZipFile(first) as z:
        names = z.namelist()
        record = z.read("xkbcommon-1.5.1.dist-info/RECORD").decode().splitlines()
        for line in record:                                  # every file, with its real hash and size
            path, digest, size = line.rsplit(",", 2)
            if path.endswith("RECORD"):
                continue
            data = z.read(path)
            assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(
                b"=").decode() and int(size) == len(data), path
        assert {line.split(",")[0] for line in record} == set(names)
        assert "Requires-Dist: cffi>=1.5.0" in z.read("xkbcommon-1.5.1.dist-info/METADATA").decode()
        assert "Tag: cp311-abi3-linux_aarch64" in z.read("xkbcommon-1.5.1.dist-info/WHEEL").decode()
        so = tmp_path / "_ffi.so"
        so.write_bytes(z.read("xkbcommon/_ffi.abi3.so"))
    assert {"xkbcommon/__init__.py", "xkbcommon/xkb.py"} <= set(names)
    elf = subprocess.run(["readelf", "-h", "-d", "--dyn-syms", str(so)], capture_output=True, text=True,
                         check=True).stdout
    assert "AArch64" in elf and "Shared library: [libxkbcommon.so.0]" in elf
    assert "PyInit__ffi" in elf                         # the module CPython imports as xkbcommon._ffi


def test_a_build_host_cffi_other_than_the_locked_one_is_refused(sdist, arm64, tmp_path):
    with pytest.raises(Error, match="the box gets 0.1 .*scripts/setup"):
        cross_wheel.build_wheel(sdist, tmp_path, arm64, PYTHON, "0.1", sys.executable)
    assert not list(tmp_path.glob("*.whl"))


def test_a_source_only_dependency_without_a_recipe_is_named(tmp_path):
    sdist = tmp_path / "somelib-1.0.tar.gz"
    sdist.write_bytes(b"")
    with pytest.raises(Error, match="somelib-1.0.tar.gz: no aarch64 wheel on PyPI and no recipe"):
        cross_wheel.arm64_wheel(sdist, "bookworm", PYTHON, _cffi(), tmp_path, sys.executable)


@pytest.mark.parametrize("stdlib_filter", [True, False], ids=["tarfile-filter", "older-python"])
def test_an_sdist_reaching_outside_its_directory_is_refused(tmp_path, monkeypatch, stdlib_filter):
    sdist = tmp_path / "xkbcommon-9.9.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        data = b"print('owned')\n"
        info = tarfile.TarInfo("xkbcommon-9.9/../../outside.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    if not stdlib_filter:
        monkeypatch.delattr(tarfile, "data_filter")
    unused = cross_wheel.Compiler(("false",), (), (), "linux_aarch64")
    with pytest.raises(Error, match="xkbcommon-9.9.tar.gz: refusing to unpack"):
        cross_wheel.build_wheel(sdist, tmp_path / "out", unused, PYTHON, _cffi(), sys.executable)
    assert not (tmp_path / "outside.py").exists() and not (tmp_path / "out" / "outside.py").exists()

"""Builds of pywhispercpp's ``libggml-cpu`` for newer Pi CPUs, chosen on the box at run time.

pywhispercpp's aarch64 wheel is compiled for ARMv8.0-A (every Pi runs it; the Pi 5's dot-product and FP16 vector
instructions go unused). For each variant the box knows (``VARIANTS`` in device/asr/cpu_variant.py, the one list)
this cross-compiles the ggml CPU library from the sources of the same pywhispercpp release (its sdist from PyPI,
at the lock's version) with that variant's ``-march``, then gives it the names the wheel's libraries use
(``patchelf``: its SONAME becomes the wheel's hashed ``libggml-cpu-….so``, it links to the wheel's hashed
ggml-base and OpenMP runtime), so that the box's loader can put it in place of the wheel's. The result is cached by
the wheel's and sdist's bytes and the compiler's version: about a minute per variant on a 2-core machine, once.

Host tools: cmake, ninja, the aarch64 cross compiler (g++-aarch64-linux-gnu), patchelf.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

from .errors import DownloadError, Error
from . import wheelhouse
from .tools import check_tools, compiler_version, run

log = logging.getLogger(__name__)

TOOLS = {"cmake": "cmake", "ninja": "ninja-build", "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
         "aarch64-linux-gnu-g++": "g++-aarch64-linux-gnu", "aarch64-linux-gnu-strip": "binutils-aarch64-linux-gnu",
         "patchelf": "patchelf"}
TOOLCHAIN = """\
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
"""
BUILD_REVISION = b"2"
"""Part of the cache key: raised when the way a build is made changes (2: one patchelf change per call)."""


def box_variants(repo: Path) -> tuple:
    """The box's own list of variants (device/asr/cpu_variant.py; standard library only, so it loads here)."""
    spec = importlib.util.spec_from_file_location("_sttkb_cpu_variant", repo / "device" / "asr" / "cpu_variant.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module.VARIANTS, module.MANIFEST, module.LIBRARY


def wheel_library_names(wheel: Path) -> dict[str, str]:
    """The file names of the wheel's bundled ggml-cpu, ggml-base and OpenMP libraries (auditwheel hashes them)."""
    with zipfile.ZipFile(wheel) as z:
        libs = [n.split("/")[-1] for n in z.namelist() if n.startswith("pywhispercpp.libs/")]
    names = {}
    for key, prefix in (("soname", "libggml-cpu-"), ("base", "libggml-base-"), ("openmp", "libgomp-")):
        found = [n for n in libs if n.startswith(prefix)]
        if len(found) != 1:
            raise Error(f"{wheel.name}: expected one pywhispercpp.libs/{prefix}*.so, found {found or 'none'}; "
                        f"this pywhispercpp is not laid out as 1.5.1's wheel was")
        names[key] = found[0]
    return names


def _sdist(version: str, cache: Path, pip_python: str) -> Path:
    dest = cache / "sources" / f"pywhispercpp-{version}.tar.gz"
    if dest.is_file():
        return dest
    tmp = dest.parent / (dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    wheelhouse._pip(pip_python, ["download", "-q", "--no-deps", "--no-binary=:all:", "-d", str(tmp),
                                 f"pywhispercpp=={version}"], f"downloading the pywhispercpp {version} sources")
    got = list(tmp.glob("pywhispercpp-*.tar.gz"))
    if len(got) != 1:
        raise DownloadError(f"downloading the pywhispercpp {version} sources gave {got}, not one sdist")
    got[0].rename(dest)
    shutil.rmtree(tmp)
    return dest


def _check_names(library: Path, names: dict[str, str]) -> None:
    """Raise unless ``library`` is named as the wheel's ggml-cpu and links to the wheel's ggml-base and OpenMP."""
    def ask(flag: str) -> list[str]:
        return run(["patchelf", flag, str(library)], what="reading the build's names").stdout.decode().split()
    soname, needed = ask("--print-soname"), ask("--print-needed")
    if soname != [names["soname"]] or not {names["base"], names["openmp"]} <= set(needed) \
            or any(n.startswith(("libggml-base.so", "libgomp.so")) for n in needed):
        raise Error(f"{library.name}: after renaming, SONAME {soname} and DT_NEEDED {needed} are not the wheel's "
                    f"({names}); patchelf misbehaved")


def build_variants(wheel: Path, repo: Path, cache: Path, pip_python: str = sys.executable) -> Path:
    """A directory holding manifest.json and VARIANT/libggml-cpu.so for each variant, built for ``wheel`` (the
    aarch64 pywhispercpp wheel going into the image). Cached; written atomically (.partial, then rename)."""
    check_tools(TOOLS)
    variants, manifest_name, library = box_variants(repo)
    names = wheel_library_names(wheel)
    version = wheel.name.split("-")[1]
    sdist = _sdist(version, cache, pip_python)
    h = hashlib.sha256()
    for part in (wheel.read_bytes(), sdist.read_bytes(), compiler_version("aarch64-linux-gnu-g++").encode(), TOOLCHAIN.encode(), BUILD_REVISION,
                 repr([(v.name, v.march) for v in variants]).encode()):
        h.update(hashlib.sha256(part).digest())
    dest = cache / f"ggml-cpu-variants-{version}-{h.hexdigest()[:16]}"
    if (dest / manifest_name).is_file():
        log.info("ggml CPU builds: using cached %s", dest)
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    src = tmp / "src"
    src.mkdir(parents=True)
    with tarfile.open(sdist) as t:
        t.extractall(src, filter="data")
    whisper = src / f"pywhispercpp-{version}" / "whisper.cpp"
    if not (whisper / "ggml" / "src" / "ggml-cpu").is_dir():
        raise Error(f"{sdist.name} has no whisper.cpp/ggml/src/ggml-cpu: not the layout these builds expect")
    toolchain = tmp / "aarch64.cmake"
    toolchain.write_text(TOOLCHAIN)
    for v in variants:
        log.info("ggml CPU builds: compiling %s (-march=%s)", v.name, v.march)
        build = tmp / "build" / v.name
        run(["cmake", "-S", str(whisper), "-B", str(build), "-G", "Ninja", f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
             "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=ON", "-DGGML_NATIVE=OFF",
             f"-DGGML_CPU_ARM_ARCH={v.march}", "-DGGML_OPENMP=ON", "-DWHISPER_BUILD_TESTS=OFF",
             "-DWHISPER_BUILD_EXAMPLES=OFF"], what=f"configuring ggml's {v.name} build")
        run(["cmake", "--build", str(build), "--target", "ggml-cpu"], what=f"compiling ggml's {v.name} build")
        built = build / "ggml" / "src" / "libggml-cpu.so"
        out = tmp / v.name / library
        out.parent.mkdir()
        shutil.copyfile(built.resolve(), out)
        run(["aarch64-linux-gnu-strip", "--strip-unneeded", str(out)], what="stripping the build")
        # One change per patchelf call: patchelf 0.14 given --set-soname and --replace-needed together wrote the
        # new DT_NEEDED string into the SONAME as well.
        run(["patchelf", "--set-soname", names["soname"], str(out)], what="renaming the build to the wheel's")
        run(["patchelf", "--replace-needed", "libggml-base.so.0", names["base"], str(out)],
            what="linking the build to the wheel's ggml-base")
        run(["patchelf", "--replace-needed", "libgomp.so.1", names["openmp"], str(out)],
            what="linking the build to the wheel's OpenMP runtime")
        run(["patchelf", "--remove-rpath", str(out)], what="removing the build's search path")
        _check_names(out, names)
    shutil.rmtree(src)
    shutil.rmtree(tmp / "build")
    toolchain.unlink()
    manifest = {"pywhispercpp": version, "wheel": wheel.name, **names,
                "variants": {v.name: {"march": v.march, "file": f"{v.name}/{library}"} for v in variants}}
    (tmp / manifest_name).write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest

"""Wheels, compiled on the build host, for the dependencies PyPI publishes as source only.

xkbcommon (the keymaps' binding to libxkbcommon) is a cffi module in API mode with no aarch64 wheel. Compiled on
the box, it made the first boot install gcc, python3-dev and libxkbcommon-dev (57 Debian packages: minutes on a
Pi, and a compiler left on a device that types into other people's computers). The build host compiles it once:

1. cffi — the lock's version, as installed on the build host — writes the module's C source from the sdist's
   build script (``cffi_modules`` in its setup.py); cffi's C defines ``Py_LIMITED_API``, so one module serves
   every CPython 3 (the stable ABI, file name ``*.abi3.so``);
2. a C compiler for the box (``aarch64-linux-gnu-gcc``, ARMv8.0-A: every Pi) compiles it against headers unpacked
   from Debian's arm64 .debs of the box's release (libxkbcommon-dev, libpython3.X-dev), linking the box's
   libxkbcommon.so.0 (installed there as the libxkbcommon0 .deb);
3. the sdist's Python files, the module and the sdist's metadata go into a wheel tagged
   ``cpXY-abi3-linux_aarch64``, entries sorted and dated 1980-01-01, so the same inputs give the same bytes.

The wheel is cached by the sdist's bytes, the .debs, the compiler's version and cffi's version.
Host tools: the aarch64 cross compiler (gcc-aarch64-linux-gnu), dpkg-deb.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shutil
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import debs, wheelhouse
from .cache_dir import cached
from .errors import Error
from .tools import compiler_version, run

log = logging.getLogger(__name__)

CROSS_CC = "aarch64-linux-gnu-gcc"
TOOLS = {CROSS_CC: "gcc-aarch64-linux-gnu", "dpkg-deb": "dpkg"}
#: The Debian arm64 packages whose headers and link library each source-only dependency compiles against.
HEADERS = {"xkbcommon": ("libxkbcommon-dev", "libxkbcommon0")}
BUILD_REVISION = "1"
"""Part of the cache key: raised when the way a wheel is made changes."""
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# Run by the build host's Python (the one with the lock's cffi): the module's C source and how to link it.
_EMIT = """\
import json, runpy, sys
import cffi
path, attr, out = sys.argv[1:4]
ffi = runpy.run_path(path, run_name="_sttkb_cffi_build")[attr]
module, _source, _ext, kwds = ffi._assigned_source
ffi.emit_c_code(out)
print(json.dumps({"cffi": cffi.__version__, "module": module, "libraries": kwds.get("libraries", []),
                  "unknown": sorted(set(kwds) - {"libraries"})}))
"""


@dataclass(frozen=True)
class Compiler:
    """A C compiler for the box and where the box's headers and libraries are (unpacked, not installed)."""

    command: tuple[str, ...]
    include_dirs: tuple[Path, ...]
    library_dirs: tuple[Path, ...]
    platform: str                                    # the wheel's platform tag, e.g. linux_aarch64


def _unpack_sdist(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):          # CPython >= 3.11.4 (and distributions' backports)
            try:
                tar.extractall(dest, filter="data")
            except tarfile.FilterError as e:
                raise Error(f"{sdist.name}: refusing to unpack it: {e}") from None
        else:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                    raise Error(f"{sdist.name}: refusing to unpack {member.name!r} (not a plain file in the sdist)")
            tar.extractall(dest)
    roots = [p for p in dest.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise Error(f"{sdist.name}: expected one top directory, found {len(roots)}")
    return roots[0]


def _cffi_module(root: Path, sdist: Path) -> tuple[Path, str]:
    """(build script, FFI object name) from ``cffi_modules=["pkg/script.py:name"]`` in the sdist's setup.py."""
    setup = root / "setup.py"
    found = re.findall(r"""cffi_modules\s*=\s*\[\s*["']([^"':]+):(\w+)["']\s*\]""",
                       setup.read_text() if setup.is_file() else "")
    if len(found) != 1:
        raise Error(f"{sdist.name}: its setup.py names no single cffi module (cffi_modules); "
                    "only cffi API-mode sources are built here")
    return root / found[0][0], found[0][1]


def _metadata(root: Path) -> tuple[str, str, str]:
    """(name, version, METADATA text): the sdist's PKG-INFO, with its requirements if only egg-info has them."""
    text = (root / "PKG-INFO").read_text()
    name = re.search(r"^Name: (.+)$", text, re.M).group(1).strip()
    version = re.search(r"^Version: (.+)$", text, re.M).group(1).strip()
    requires = root / f"{name.replace('-', '_')}.egg-info" / "requires.txt"
    if "\nRequires-Dist:" not in text and requires.is_file():
        reqs = []
        for line in requires.read_text().splitlines():
            if line.startswith("["):
                break                                # extras' sections: none of them is needed on the box
            if line.strip():
                reqs.append(f"Requires-Dist: {line.strip()}\n")
        head, sep, body = text.partition("\n\n")
        text = head + "\n" + "".join(reqs).rstrip("\n") + sep + body if reqs else text
    return name, version, text


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write_wheel(dest: Path, files: dict[str, bytes], dist_info: str) -> None:
    record = [_record_line(p, files[p]) for p in sorted(files)] + [f"{dist_info}/RECORD,,"]
    files = dict(files, **{f"{dist_info}/RECORD": ("\n".join(record) + "\n").encode()})
    # dist-info last, RECORD at the very end (the wheel spec's recommended order)
    order = sorted(files, key=lambda p: (p.startswith(dist_info + "/"), p.endswith("/RECORD"), p))
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for path in order:
            info = zipfile.ZipInfo(path, ZIP_DATE)
            info.external_attr = (0o755 if path.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[path])


def build_wheel(sdist: Path, out_dir: Path, compiler: Compiler, python: tuple[int, int], cffi_version: str,
                pip_python: str) -> Path:
    """Compile a cffi API-mode ``sdist`` with ``compiler`` into a stable-ABI wheel in ``out_dir``.

    ``cffi_version`` is the one the box runs (its wheel in the wheelhouse): cffi's C must be for that cffi.
    """
    work = out_dir / "build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    root = _unpack_sdist(sdist, work)
    script, attr = _cffi_module(root, sdist)
    name, version, metadata = _metadata(root)
    c_file = work / "module.c"
    proc = subprocess.run([pip_python, "-c", _EMIT, str(script), attr, str(c_file)], capture_output=True,
                          text=True, cwd=work)
    if proc.returncode != 0:
        raise Error(f"{sdist.name}: cffi could not write the module's C source: "
                    + " | ".join(proc.stderr.strip().splitlines()[-4:]))
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if info["cffi"] != cffi_version:
        raise Error(f"the build host's cffi is {info['cffi']} but the box gets {cffi_version} (requirements.lock): "
                    f"the compiled module must match the cffi the box runs; install the locked one (scripts/setup)")
    if info["unknown"]:
        raise Error(f"{sdist.name}: its cffi module asks for {', '.join(info['unknown'])}, which this build does not "
                    f"pass to the compiler")
    package, _, leaf = info["module"].rpartition(".")
    module_file = f"{package.replace('.', '/')}/{leaf}.abi3.so" if package else f"{leaf}.abi3.so"
    so = work / "module.so"
    run([*compiler.command, "-shared", "-fPIC", "-O2", "-g0", "-s", "-fno-strict-aliasing",
         f"-ffile-prefix-map={work}=.", *(f"-I{d}" for d in compiler.include_dirs), str(c_file), "-o", str(so),
         *(f"-L{d}" for d in compiler.library_dirs), *(f"-l{lib}" for lib in info["libraries"])],
        what=f"compiling {sdist.name}'s cffi module")

    top = package.split(".")[0] if package else leaf
    files = {p.relative_to(root).as_posix(): p.read_bytes()
             for p in sorted((root / top).rglob("*.py")) if "__pycache__" not in p.parts}
    files[module_file] = so.read_bytes()
    dist = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    tag = f"cp{python[0]}{python[1]}-abi3-{compiler.platform}"
    files[f"{dist}.dist-info/METADATA"] = metadata.encode()
    files[f"{dist}.dist-info/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: sttkb-image cross_wheel\n"
                                        f"Root-Is-Purelib: false\nTag: {tag}\n").encode()
    files[f"{dist}.dist-info/top_level.txt"] = f"{top}\n".encode()
    for lic in ("LICENSE", "LICENSE.txt", "COPYING"):
        if (root / lic).is_file():
            files[f"{dist}.dist-info/licenses/{lic}"] = (root / lic).read_bytes()
    wheel = out_dir / f"{dist}-{tag}.whl"
    _write_wheel(wheel, files, f"{dist}.dist-info")
    shutil.rmtree(work)
    return wheel


def arm64_compiler(deb_files: list[Path], sysroot: Path, python: tuple[int, int]) -> Compiler:
    """The cross compiler, with the .debs' headers and libraries unpacked into ``sysroot``."""
    sysroot.mkdir(parents=True)
    for deb in deb_files:
        run(["dpkg-deb", "-x", str(deb), str(sysroot)], what=f"unpacking {deb.name}")
    v = f"python{python[0]}.{python[1]}"
    return Compiler((CROSS_CC,), (sysroot / "usr/include" / v, sysroot / "usr/include"),
                    (sysroot / "usr/lib/aarch64-linux-gnu",), "linux_aarch64")


def header_debs(dist: str, python: tuple[int, int]) -> list[str]:
    """The Debian arm64 packages ``dist`` compiles against (its C library's and CPython's headers)."""
    return [*HEADERS[dist], f"libpython{python[0]}.{python[1]}-dev"]


def arm64_wheel(sdist: Path, suite: str, python: tuple[int, int], cffi_version: str, cache: Path,
                pip_python: str) -> Path:
    """The aarch64 wheel of a source-only dependency for the box (built once, then cached)."""
    dist = (wheelhouse.dist_of(sdist.name) or ("", ""))[0]
    if dist not in HEADERS:
        raise Error(f"{sdist.name}: no aarch64 wheel on PyPI and no recipe to build one here "
                    f"(sttkb_image.cross_wheel.HEADERS knows {', '.join(sorted(HEADERS))})")
    deb_files = debs.download_exact(header_debs(dist, python), suite, cache)
    key = hashlib.sha256()
    for part in (BUILD_REVISION, cffi_version, compiler_version(CROSS_CC), repr(python), sdist.read_bytes(),
                 *(d.name for d in deb_files)):
        key.update(part if isinstance(part, bytes) else part.encode())
    dest = cache / f"cross-wheel-{sdist.name[:-len('.tar.gz')]}-{key.hexdigest()[:16]}"

    def fill(tmp: Path) -> list[str]:
        sysroot = tmp / "sysroot"
        compiler = arm64_compiler(deb_files, sysroot, python)
        log.info("cross wheel: compiling %s for aarch64", sdist.name)
        wheel = build_wheel(sdist, tmp, compiler, python, cffi_version, pip_python)
        shutil.rmtree(sysroot)
        return [wheel.name]

    return cached(dest, fill, "cross wheel")[0]

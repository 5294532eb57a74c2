"""Which build of ggml's CPU code whisper.cpp runs on this box, chosen at start-up by the CPU's features.

pywhispercpp's aarch64 wheel is built for plain ARMv8.0-A, so that it runs on every Pi (Zero 2 W and Pi 3:
Cortex-A53; Pi 4: Cortex-A72). The Pi 5's Cortex-A76 also has the ARMv8.2 dot-product (``sdot``: q8_0 and the
other quantized matrix products) and FP16 vector arithmetic, which that build never uses. The SD image therefore
carries extra builds of the wheel's ``libggml-cpu`` (image-build/sttkb_image/ggml_variants.py: the same ggml
sources, compiled for a newer ``-march``, given the wheel's own library names), and this module loads the best one
the CPU can run before pywhispercpp is imported: the dynamic loader then finds a library of that name already
loaded and links whisper.cpp to it instead of the wheel's. A CPU without the features (or a box without the
builds, or an x86 machine) keeps the wheel's own.

``STTKB_GGML_CPU`` forces a choice (``wheel`` or a variant's name: for measuring on a Pi, and for the test that
shows a Pi 5 build dies with SIGILL on a Cortex-A53); ``STTKB_GGML_CPU_DIR`` moves the builds' directory.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

VARIANT_DIR = Path("/opt/sttkb/ggml-cpu")
"""Where the image puts the builds: ``manifest.json`` and one directory per variant holding ``libggml-cpu.so``."""
MANIFEST = "manifest.json"
LIBRARY = "libggml-cpu.so"
WHEEL = "wheel"
"""The name of the choice "pywhispercpp's own build"."""

# Linux's aarch64 AT_HWCAP bits (arch/arm64/include/uapi/asm/hwcap.h).
AT_HWCAP = 16
HWCAP_FPHP = 1 << 9
HWCAP_ASIMDHP = 1 << 10
HWCAP_ASIMDDP = 1 << 20


@dataclass(frozen=True)
class Variant:
    name: str
    march: str
    """The compiler's ``-march`` for this build."""
    hwcaps: int
    """AT_HWCAP bits the CPU must report, all of them."""
    cpus: str
    """Which Pis it is for, in words."""


VARIANTS = (
    Variant("armv8.2-dotprod-fp16", "armv8.2-a+dotprod+fp16", HWCAP_ASIMDDP | HWCAP_FPHP | HWCAP_ASIMDHP,
            "Pi 5 / CM5 (Cortex-A76)"),
)
"""The builds the image makes, best first. The wheel's own (ARMv8.0-A) is the fallback for every other CPU."""


def choose(hwcap: int, installed: set[str], forced: str | None = None) -> Variant | None:
    """The variant to load for a CPU reporting ``hwcap``, among the ``installed`` builds; None = the wheel's own.
    ``forced`` (a variant's name or "wheel") wins when that build is installed, whatever the CPU says."""
    if forced:
        if forced == WHEEL:
            return None
        for v in VARIANTS:
            if v.name == forced and v.name in installed:
                return v
        raise ValueError(f"STTKB_GGML_CPU={forced!r}: no such build here (installed: "
                         f"{', '.join(sorted(installed)) or 'none'}; or {WHEEL!r})")
    for v in VARIANTS:
        if v.name in installed and hwcap & v.hwcaps == v.hwcaps:
            return v
    return None


def cpu_hwcap() -> int:
    """This CPU's AT_HWCAP (0 where there is none to read: not Linux, not aarch64)."""
    if sys.platform != "linux" or platform.machine() not in ("aarch64", "arm64"):
        return 0
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    return int(libc.getauxval(AT_HWCAP))


def _wheel_libs() -> Path | None:
    spec = importlib.util.find_spec("_pywhispercpp")
    if spec is None or not spec.origin:
        return None
    libs = Path(spec.origin).parent / "pywhispercpp.libs"
    return libs if libs.is_dir() else None


_active: str | None = None


def active() -> str:
    """The build in use ("wheel" or a variant's name), choosing it first if that has not happened yet."""
    return _active if _active is not None else activate()


def activate(directory: Path | None = None) -> str:
    """Load the best build this CPU runs, once per process, before whisper.cpp is first used; return its name.
    Anything unexpected (builds made for another pywhispercpp, a library that will not load) keeps the wheel's
    own and says so in the log: the box must transcribe either way."""
    global _active
    if _active is not None:
        return _active
    _active = WHEEL
    directory = directory or Path(os.environ.get("STTKB_GGML_CPU_DIR") or VARIANT_DIR)
    forced = os.environ.get("STTKB_GGML_CPU") or None
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        if forced not in (None, WHEEL):
            raise ValueError(f"STTKB_GGML_CPU={forced!r}, but there are no builds in {directory}") from None
        return _active
    except (OSError, ValueError) as e:
        log.warning("ggml CPU builds: cannot read %s (%s); using pywhispercpp's own", directory / MANIFEST, e)
        return _active
    installed = {name for name in manifest.get("variants", {}) if (directory / name / LIBRARY).is_file()}
    variant = choose(cpu_hwcap(), installed, forced)
    if variant is None:
        log.info("whisper.cpp runs pywhispercpp's own build (%s)", "forced" if forced else
                 f"this CPU has not what {', '.join(sorted(installed)) or 'no build'} needs")
        return _active
    if "_pywhispercpp" in sys.modules:
        log.warning("ggml CPU builds: whisper.cpp was loaded before the choice; using pywhispercpp's own")
        return _active
    libs = _wheel_libs()
    needed = [manifest.get("base"), manifest.get("openmp"), manifest.get("soname")]
    if libs is None or not all(needed) or not all((libs / n).is_file() for n in needed):
        log.warning("ggml CPU builds in %s were made for another pywhispercpp (they need %s); using its own. "
                    "Rebuild the image for this version.", directory, ", ".join(str(n) for n in needed))
        return _active
    try:
        for name in needed[:2]:        # what the build links to: the wheel's own ggml-base and OpenMP runtime
            ctypes.CDLL(str(libs / name), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(directory / variant.name / LIBRARY), mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        log.warning("ggml CPU build %s does not load (%s); using pywhispercpp's own", variant.name, e)
        return _active
    _active = variant.name
    log.info("whisper.cpp runs ggml's %s build (%s)", variant.name, variant.cpus)
    return _active


def describe() -> str:
    """One line for `sttkb bench`: the build in use and which CPUs it is for."""
    name = active()
    if name == WHEEL:
        return f"pywhispercpp's own build ({platform.machine()})"
    variant = next(v for v in VARIANTS if v.name == name)
    return f"{name} (-march={variant.march}; for the {variant.cpus})"

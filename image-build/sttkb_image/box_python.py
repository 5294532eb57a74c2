"""The box's Python as pip sees it: which aarch64 wheels it can run, and which dependencies it gets another way.

Shared by the lock (every pin must have a wheel for the box) and the wheelhouse (download exactly those).
"""

from __future__ import annotations

#: Installed from a Debian package instead of a wheel (PyAudio has no aarch64 wheel on PyPI).
APT_PROVIDED = {"pyaudio": "python3-pyaudio"}
#: Published as an sdist only: compiled on the build host into an aarch64 wheel (sttkb_image.cross_wheel;
#: xkbcommon is a cffi module in API mode).
CROSS_BUILT = {"xkbcommon"}


def platform_args(glibc: tuple[int, int], python: tuple[int, int]) -> list[str]:
    """pip options selecting aarch64 wheels a target with this glibc and CPython can run."""
    major, minor = glibc
    args = []
    for m in range(minor, 16, -1):
        args += ["--platform", f"manylinux_{major}_{m}_aarch64"]
    args += ["--platform", "manylinux2014_aarch64", "--platform", "linux_aarch64"]
    tag = f"cp{python[0]}{python[1]}"
    return args + ["--python-version", f"{python[0]}.{python[1]}", "--implementation", "cp",
                   "--abi", tag, "--abi", "abi3", "--abi", "none", "--only-binary=:all:"]

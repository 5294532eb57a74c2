"""Host tools the build runs, checked before anything is touched."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

from .errors import MissingToolError, ToolFailedError

log = logging.getLogger(__name__)

# tool -> Debian/Ubuntu package that provides it
TOOLS = {
    "sfdisk": "fdisk",
    "mcopy": "mtools",
    "mtype": "mtools",
    "mdir": "mtools",
    "debugfs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "resize2fs": "e2fsprogs",
    "apt-get": "apt",
}
XZ_TOOLS = {"xz": "xz-utils"}


def check_tools(extra: dict[str, str] | None = None) -> None:
    """Raise one MissingToolError naming every missing tool and the packages to install."""
    wanted = dict(TOOLS, **(extra or {}))
    missing = {tool: pkg for tool, pkg in wanted.items() if shutil.which(tool) is None}
    if missing:
        pkgs = " ".join(sorted(set(missing.values())))
        raise MissingToolError(
            f"missing host tools: {', '.join(sorted(missing))}; install them with: sudo apt-get install {pkgs}")


def compiler_version(command: str) -> str:
    """The first line of ``command --version`` ("" if it prints none): part of build caches' keys."""
    return subprocess.run([command, "--version"], capture_output=True, text=True).stdout.split("\n")[0]


def run(cmd: Sequence[str], *, what: str, input: bytes | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run a host tool; on failure raise ToolFailedError naming ``what`` and the tool's own message."""
    log.debug("run: %s", " ".join(cmd))
    proc = subprocess.run(list(cmd), input=input, capture_output=True, env=env)
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        tail = " | ".join(msg[-5:]) if msg else f"exit status {proc.returncode}"
        raise ToolFailedError(f"{what} failed ({cmd[0]}): {tail}")
    return proc

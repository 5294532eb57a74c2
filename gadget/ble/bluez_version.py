"""Which BlueZ is installed here, from its tools' ``--version`` (BlueZ has no D-Bus version property).

Used on the box (the peripheral refuses a bluetoothd older than :data:`sttkb.gadget.ble.defs.MIN_BLUEZ_VERSION`) and
on a laptop by `sttkb check` (a BlueZ host before 5.67 ignores combined notifications). No D-Bus.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from typing import Callable

from sttkb.gadget.ble import defs
from sttkb.gadget.ble.errors import BluezVersionError

log = logging.getLogger(__name__)

Version = tuple[int, int]

TOOLS = (["bluetoothd", "--version"], ["/usr/libexec/bluetooth/bluetoothd", "--version"],
         ["/usr/lib/bluetooth/bluetoothd", "--version"], ["bluetoothctl", "--version"])
"""Asked in this order; the first that answers with a version wins."""

_VERSION = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?!\d)")


def parse_version(text: str) -> Version | None:
    """``"5.66"`` or ``"bluetoothctl: 5.66"`` → (5, 66); None if there is no version in ``text``. Pure."""
    m = _VERSION.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def installed_version(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> Version | None:
    """The installed BlueZ's version, or None if no tool of it can be found or says one."""
    for cmd in TOOLS:
        if shutil.which(cmd[0]) is None:
            continue
        try:
            out = run(cmd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            continue
        version = parse_version(out.stdout or out.stderr or "")
        if version is not None:
            return version
    return None


def check_supported(version: Version | None) -> None:
    """Raise BluezVersionError if ``version`` is known and older than :data:`defs.MIN_BLUEZ_VERSION`."""
    if version is None:
        log.warning("cannot tell the BlueZ version; assuming it is at least %d.%d", *defs.MIN_BLUEZ_VERSION)
        return
    if version < defs.MIN_BLUEZ_VERSION:
        need = "%d.%d" % defs.MIN_BLUEZ_VERSION
        raise BluezVersionError(f"BlueZ {version[0]}.{version[1]} is too old: the BLE keyboard needs {need} or "
                                f"newer (Debian bookworm / Raspberry Pi OS ship 5.66). Upgrade the bluez package.")

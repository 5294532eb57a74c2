"""Runs INSIDE the qemu guest, before bluetoothd starts: hold the HID PSMs (0x11, 0x13) on the box's controller
until bluetoothd has set up its adapters, then let go.

Why: one bluetoothd serves both virtual controllers in the VM. The host side (hci1) needs bluetoothd's input
plugin — the real Linux HID host under test — but that plugin listens on the HID PSMs of *every* adapter, the box's
too, and an incoming connection goes to the listener bound to the exact adapter address first. With the PSMs on
hci0 held here while bluetoothd probes its adapters, its input plugin fails on hci0 only ("Failed to listen on
control channel") and the box's own listener (sttkb.gadget.bt_classic.link) gets hci0's HID channels. On the box
itself bluetoothd runs without the input plugin (services/bluetooth), so nothing like this is needed there.

Usage: python -m tests.bt_classic.vm.hold_psms hci0 HELD_FILE RELEASE_FILE
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from sttkb.gadget.bt_classic import l2cap
from sttkb.gadget.bt_classic.sdp_record import PSM_HID_CONTROL, PSM_HID_INTERRUPT


def controller_address(hci: str) -> str:
    out = subprocess.run(["hciconfig", hci], capture_output=True, text=True, check=True).stdout
    match = re.search(r"BD Address: ([0-9A-F:]{17})", out)
    if not match:
        raise SystemExit(f"hold_psms: no address for {hci}: {out}")
    return match.group(1)


def main() -> int:
    hci, held, release = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    address = controller_address(hci)
    socks = [l2cap.listen(address, psm, security=l2cap.SECURITY_LOW) for psm in (PSM_HID_CONTROL, PSM_HID_INTERRUPT)]
    held.write_text(address + "\n")
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for sock in socks:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

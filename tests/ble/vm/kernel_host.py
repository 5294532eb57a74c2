"""Runs INSIDE the qemu guest: a Linux host's keyboard input path for reports a test host received over GATT.

The reports go to the kernel through /dev/uhid as a keyboard with the Report Map the host read from the box; the
kernel's HID layer (hid-generic, hid-input) turns them into key events the way it does for any Bluetooth keyboard,
and xkbcommon turns those into text in the host's layout. So the text the tests compare with their input went
through the kernel's HID usage table, not the project's own (sttkb.gadget.hid_usage), which the box used to
encode it.
"""

from __future__ import annotations

import itertools
import os
import select
import struct
import time
from pathlib import Path

from tests.xkb_host import XkbHost

UHID_CREATE2 = 11
UHID_INPUT2 = 12
BUS_BLUETOOTH = 0x05
# struct uhid_event (linux/uhid.h), packed: type, then uhid_create2_req / uhid_input2_req.
CREATE2 = struct.Struct("<I128s64s64sHHIIII4096s")
INPUT2 = struct.Struct("<IH4096s")
EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit: timeval, type, code, value
EV_SYN, EV_KEY = 0, 1
SYN_DROPPED = 3
KEY_DOWN, KEY_UP = 1, 0  # value 2 is the kernel's autorepeat: a held key, not a report of ours

_names = itertools.count(1)


def event_node(name: str, timeout: float, *, bound: bool = False) -> str | None:
    """/dev/input/eventN of the input device called ``name``, once it exists (and, with ``bound``, once its HID
    driver's probe has finished: until then the kernel drops input reports)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in sorted(Path("/sys/class/input").glob("event*")):
            try:
                if (node / "device" / "name").read_text().strip() != name:
                    continue
            except OSError:
                continue
            if not bound or (node / "device" / "device" / "driver").exists():
                return f"/dev/input/{node.name}"
        time.sleep(0.05)
    return None


class KernelKeyboard:
    """A uhid keyboard with ``report_map``; :meth:`feed` one report, :attr:`text` is what the host typed."""

    def __init__(self, report_map: bytes, layout: str) -> None:
        self.name = f"sttkb test host keyboard {next(_names)}"
        self.decoder = XkbHost(layout)
        self._uhid = os.open("/dev/uhid", os.O_RDWR | os.O_CLOEXEC)
        os.write(self._uhid, CREATE2.pack(UHID_CREATE2, self.name.encode(), b"", b"", len(report_map),
                                          BUS_BLUETOOTH, 0x1D6B, 0x0104, 0, 0, report_map))
        path = event_node(self.name, 10.0, bound=True)
        if path is None:
            os.close(self._uhid)
            raise RuntimeError("the kernel made no input device from the report map (is hid_generic loaded?)")
        self._evdev = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)

    @property
    def text(self) -> str:
        return self.decoder.text

    def feed(self, report: bytes) -> None:
        """One input report; the kernel turns it into key events before the write returns (uhid hands it to the
        HID layer in the writing thread)."""
        os.write(self._uhid, INPUT2.pack(UHID_INPUT2, len(report), report))
        self._drain()

    def _drain(self) -> None:
        while select.select([self._evdev], [], [], 0)[0]:
            try:
                data = os.read(self._evdev, EVENT.size * 64)
            except BlockingIOError:
                return
            for _sec, _usec, etype, code, value in EVENT.iter_unpack(data):
                if etype == EV_SYN and code == SYN_DROPPED:
                    raise RuntimeError("the kernel dropped key events (the reader fell behind)")
                if etype == EV_KEY and value in (KEY_DOWN, KEY_UP):
                    self.decoder.key(code, value)

    def close(self) -> None:
        os.close(self._evdev)
        os.close(self._uhid)  # destroys the device

    def __enter__(self) -> "KernelKeyboard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

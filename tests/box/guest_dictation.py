"""Runs INSIDE the booted box image (its own venv's Python, as root), as the host computer and the person speaking:
finds the box's USB keyboard on the guest's own host side (dummy_hcd loops the gadget back), reads its key events
from /dev/input/event*, starts listening through the control socket (this kernel has no gpio-sim, so the button
cannot be pressed), plays a real recording into the ALSA loopback that the box's microphone is, stops, and waits
for the last key. Writes dictation.json into OUT. Not a pytest module.

    python guest_dictation.py OUT_DIR RECORDING.wav
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from xkb_host import XkbHost  # tests/xkb_host.py, copied beside this script (libxkbcommon alone)

EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit Linux: timeval, type, code, value
EV_KEY, EV_SYN, SYN_DROPPED = 0x01, 0x00, 0x03
PRODUCT = "sttkb speech keyboard"   # [usb] product, the default config
QUIET_END = 8.0                     # seconds without a key after `stop` (and an idle daemon) = typing is over
SPEAKER = "plughw:Loopback,1,0"     # the loopback's other end: what is played here, the box's mic (card 0) hears


def _eviocgname(length: int) -> int:
    return (2 << 30) | (length << 16) | (ord("E") << 8) | 0x06


def find_keyboard(timeout: float) -> tuple[int, str]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for name in sorted(os.listdir("/dev/input")):
            if not name.startswith("event"):
                continue
            fd = os.open(f"/dev/input/{name}", os.O_RDONLY | os.O_NONBLOCK)
            buf = bytearray(256)
            try:
                fcntl.ioctl(fd, _eviocgname(len(buf)), buf)
            except OSError:
                os.close(fd)
                continue
            if PRODUCT in buf.split(b"\0", 1)[0].decode("utf-8", "replace"):
                return fd, name
            os.close(fd)
        time.sleep(0.2)
    raise SystemExit(f"no input device named {PRODUCT!r} appeared in {timeout:.0f} s")


class Reader(threading.Thread):
    """Reads the keyboard's events as a desktop's input thread does: promptly, doing nothing else (the box types
    as fast as the host polls, and the kernel keeps only 64 events per reader), and turns them into text later."""

    def __init__(self, fd: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.key_times, self.keys = fd, [], []
        self.stop_flag = threading.Event()
        self.dropped = 0

    def run(self) -> None:
        while not self.stop_flag.is_set():
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if not r:
                continue
            data = os.read(self.fd, EVENT.size * 64)
            now = time.monotonic()
            for i in range(0, len(data) - EVENT.size + 1, EVENT.size):
                _, _, etype, code, value = EVENT.unpack_from(data, i)
                if etype == EV_KEY:
                    self.keys.append((code, value))
                    self.key_times.append(now)
                elif etype == EV_SYN and code == SYN_DROPPED:
                    self.dropped += 1

    def decoded(self) -> XkbHost:
        host = XkbHost("us")
        for code, value in self.keys:
            host.key(code, value)
        return host


def sttkb(*args: str) -> str:
    """The box's own command (a Python start takes seconds under emulation, more while whisper.cpp runs)."""
    try:
        proc = subprocess.run(["/usr/local/bin/sttkb", *args], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "rc=timeout"
    return f"rc={proc.returncode} out={proc.stdout.strip()!r} err={proc.stderr.strip()[-300:]!r}"


def main(out: Path, recording: Path) -> None:
    facts: dict = {}
    fd, node = find_keyboard(60)
    facts["input_node"] = node
    reader = Reader(fd)
    reader.start()
    time.sleep(3)
    facts["keys_before_listen"] = len(reader.key_times)
    facts["status_before"] = sttkb("status")
    facts["listen"] = sttkb("listen")
    time.sleep(1)
    t0 = time.monotonic()
    play = subprocess.run(["aplay", "-q", "-D", SPEAKER, str(recording)], capture_output=True, text=True)
    facts["aplay"] = f"rc={play.returncode} {play.stderr.strip()[-300:]}"
    facts["played_seconds"] = time.monotonic() - t0
    time.sleep(0.3)                          # the recording's own trailing silence is part of the speech
    t_stop = time.monotonic()
    facts["stop"] = sttkb("stop")
    facts["status_after_stop"] = sttkb("status")
    # Typing is over when the daemon is idle again and no key came for a while (the last phrase is decoded after
    # `stop`: minutes under emulation).
    deadline = time.monotonic() + 20 * 60
    while time.monotonic() < deadline:
        last = reader.key_times[-1] if reader.key_times else t_stop
        if time.monotonic() - max(last, t_stop) > QUIET_END and re.search(r"state:\s+idle", sttkb("status")):
            break
        time.sleep(2)
    reader.stop_flag.set()
    reader.join(2)
    host = reader.decoded()
    facts["text"] = host.text
    facts["keys_down_at_end"] = sorted(host.down)
    facts["events_dropped_by_the_kernel"] = reader.dropped
    facts["events"] = len(reader.key_times)
    facts["stop_to_last_key"] = (reader.key_times[-1] - t_stop) if reader.key_times else None
    facts["status_end"] = sttkb("status")
    facts["history"] = sttkb("history")
    # If words went missing: did the box's microphone lose audio (its overflow warnings), or was it heard wrong?
    log = subprocess.run(["journalctl", "-u", "sttkb", "-o", "cat", "--no-pager"], capture_output=True, text=True)
    facts["mic_overflow_warnings"] = [line for line in log.stdout.splitlines() if "overflow" in line][-5:]
    (out / "dictation.json").write_text(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

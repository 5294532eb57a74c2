"""Runs INSIDE the qemu guest (see test_usb_vm.py): the project's own gadget setup on dummy_hcd, the typist writing
to /dev/hidg0, and the host side read back from /dev/input/event* (or /dev/hidraw*) and turned into text by
libxkbcommon alone — none of the project's keymap or decoding code is used on the host side, so the check does
not trust the code it checks.

Writes one JSON object per case to $STTKB_VM_OUT/usb.json. Not a pytest module.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import sys
import threading
import time
import traceback
from pathlib import Path

from sttkb.gadget.usb.configfs import GadgetSpec, UsbGadget
from sttkb.gadget.usb.hidg import HidgTransport
from sttkb.gadget.typist import Typist
from tests.xkb_host import XkbHost

OUT = Path(os.environ["STTKB_VM_OUT"])
EVENT = struct.Struct("llHHi")  # struct input_event on x86_64: timeval, type, code, value
EV_KEY, EV_LED, LED_CAPSL = 0x01, 0x11, 0x01
PRODUCT = "sttkb test keyboard"
MARK_CONNECT = 0xFFFF
PAIR = struct.Struct("=Hi")


def _ioc(direction: int, kind: str, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord(kind) << 8) | nr


def EVIOCGNAME(length: int) -> int:
    return _ioc(2, "E", 0x06, length)


EVIOCGKEYCODE = _ioc(2, "E", 0x04, 8)
HIDIOCGRAWNAME = _ioc(2, "H", 0x04, 256)


def kernel_keycodes(fd: int) -> dict[int, int]:
    """The host kernel's own HID usage -> evdev keycode table for our keyboard (EVIOCGKEYCODE on its event device;
    the scancode of a HID key is usage page 7 << 16 | usage)."""
    table = {}
    for usage in range(0x04, 0xE8):
        buf = bytearray(struct.pack("II", 0x70000 | usage, 0))
        try:
            fcntl.ioctl(fd, EVIOCGKEYCODE, buf)
        except OSError:
            continue
        code = struct.unpack("II", buf)[1]
        if code not in (0, 240):  # KEY_RESERVED, KEY_UNKNOWN
            table[usage] = code
    return table


def boot_report_events(previous: bytes, report: bytes, keycodes: dict[int, int]) -> list[tuple[int, int]]:
    """Key events between two boot keyboard input reports (HID 1.11 appendix B: modifier bits for usages
    0xE0-0xE7, a reserved byte, six key usages), in the order Linux's HID input emits them: the modifier field,
    then the key array's releases, then its presses."""
    events = [(keycodes[0xE0 + bit], (report[0] >> bit) & 1) for bit in range(8)
              if ((previous[0] ^ report[0]) >> bit) & 1]
    before, now = set(previous[2:]) - {0}, set(report[2:]) - {0}
    events += [(keycodes[u], 0) for u in previous[2:] if u in before - now and u in keycodes]
    events += [(keycodes[u], 1) for u in report[2:] if u in now - before and u in keycodes]
    return events


# -- the host's readers (separate processes, as a desktop's input thread) ------------------------------------
def _open_ours(folder: str, prefix: str, request: int, flags: int = os.O_RDONLY | os.O_NONBLOCK) -> int | None:
    """An fd on our keyboard's device node in ``folder`` (matched by the name the ioctl ``request`` returns)."""
    for name in sorted(os.listdir(folder)):
        if not name.startswith(prefix):
            continue
        try:
            fd = os.open(f"{folder}/{name}", flags)
        except OSError:
            continue
        buf = bytearray(256)
        try:
            fcntl.ioctl(fd, request, buf)
        except OSError:
            os.close(fd)
            continue
        if PRODUCT in buf.split(b"\0", 1)[0].decode("utf-8", "replace"):
            return fd
        os.close(fd)
    return None


def open_our_keyboard(flags: int = os.O_RDONLY | os.O_NONBLOCK) -> int | None:
    """Our keyboard's /dev/input/event* (by name, EVIOCGNAME: no slow sysfs walk)."""
    return _open_ours("/dev/input", "event", EVIOCGNAME(256), flags)


def open_our_hidraw() -> int | None:
    """Our keyboard's /dev/hidraw*: unlike evdev, hidraw still returns the reports it buffered after the device is
    gone, so an unplug cannot make the reader miss keys the host kernel did receive."""
    return _open_ours("/dev", "hidraw", HIDIOCGRAWNAME)


def _hidraw_child(w: int, stop_path: Path) -> None:
    """Child process: copy our keyboard's raw 8-byte input reports into the pipe, following re-plugs. Not niced:
    hidraw buffers 64 reports per reader and drops what a slow reader has not taken."""
    connects = 0
    while not stop_path.exists():
        fd = open_our_hidraw()
        if fd is None:
            time.sleep(0.002)
            continue
        connects += 1
        os.write(w, b"C" + bytes(8))
        try:
            while True:
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    if stop_path.exists():
                        break
                    continue
                try:
                    data = os.read(fd, 64)
                except BlockingIOError:
                    continue
                except OSError:
                    break  # gone, and everything buffered was read
                if not data:
                    break
                os.write(w, b"R" + data[:8] + bytes(8 - len(data[:8])))
        finally:
            os.close(fd)


def _reader_child(w: int, stop_path: Path) -> None:
    """Child process: copy our keyboard's EV_KEY events (code, value) into the pipe, following re-plugs.

    Runs SCHED_FIFO, like a desktop's input thread that reads promptly: evdev drops a client's unread events
    when the device goes away, and an unplug test must not lose keys the host kernel did receive."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(60))
    except OSError:
        pass
    connects = 0
    while not stop_path.exists():
        fd = open_our_keyboard()
        if fd is None:
            time.sleep(0.002)
            continue
        connects += 1
        os.write(w, PAIR.pack(MARK_CONNECT, connects))
        try:
            while not stop_path.exists():
                r, _, _ = select.select([fd], [], [], 0.05)
                if not r:
                    continue
                try:
                    data = os.read(fd, EVENT.size * 256)
                except BlockingIOError:
                    continue
                except OSError:
                    break  # ENODEV: unplugged
                if not data:
                    break
                out = b""
                for off in range(0, len(data) - EVENT.size + 1, EVENT.size):
                    _, _, etype, code, value = EVENT.unpack_from(data, off)
                    if etype == EV_KEY:
                        out += PAIR.pack(code, value)
                if out:
                    os.write(w, out)
        finally:
            os.close(fd)


class HostReader:
    """The host: a separate process reads the keyboard's events (as a desktop would, promptly), this side turns
    them into text with :class:`XkbHost` in the host layout."""

    def __init__(self, layout: str, caps: bool = False, hidraw: bool = False) -> None:
        self.hidraw = hidraw
        self.host = XkbHost(layout, caps)
        self.keycodes: dict[int, int] = {}
        if hidraw:  # the kernel's usage -> keycode table, asked while the keyboard is there
            fd = open_our_keyboard()
            assert fd is not None, "keyboard input device did not appear"
            self.keycodes = kernel_keycodes(fd)
            os.close(fd)
        self.stop_path = Path(f"/tmp/reader-stop-{time.monotonic_ns()}")
        self.connects = 0
        self.ready = threading.Event()
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(r)
            try:
                (_hidraw_child if hidraw else _reader_child)(w, self.stop_path)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(0)
        os.close(w)
        self._r = r
        self._raw = b""
        self._thread = threading.Thread(target=self._collect, daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        """Only gathers bytes (decoding here would compete with the typist for the GIL)."""
        while True:
            data = os.read(self._r, 65536)
            if not data:
                break
            self._raw += data
            self.ready.set()

    def decode(self) -> None:
        if self.hidraw:
            previous = bytes(8)
            for off in range(0, len(self._raw) - 8, 9):
                kind, report = self._raw[off:off + 1], self._raw[off + 1:off + 9]
                if kind == b"C":
                    self.connects += 1
                    self.host.release_all()
                    previous = bytes(8)
                    continue
                for code, value in boot_report_events(previous, report, self.keycodes):
                    self.host.key(code, value)
                previous = report
            return
        n = len(self._raw) - len(self._raw) % PAIR.size
        for off in range(0, n, PAIR.size):
            code, value = PAIR.unpack_from(self._raw, off)
            if code == MARK_CONNECT:
                self.connects = value
                self.host.release_all()
            else:
                self.host.key(code, value)

    def set_caps_led(self, on: bool) -> None:
        fd = open_our_keyboard(os.O_WRONLY)
        assert fd is not None
        os.write(fd, EVENT.pack(0, 0, EV_LED, LED_CAPSL, 1 if on else 0) + EVENT.pack(0, 0, 0, 0, 0))
        os.close(fd)

    def finish(self) -> None:
        time.sleep(0.3)
        self.stop_path.write_text("stop")
        os.waitpid(self.pid, 0)
        self._thread.join(5)
        os.close(self._r)
        self.decode()


# -- the cases ---------------------------------------------------------------------------------------------------
def _timed(typist: Typist, text: str) -> dict:
    start = time.monotonic()
    typist.type_text(text)
    ok = typist.wait_idle(120)
    elapsed = time.monotonic() - start
    return {"idle": ok, "seconds": elapsed, "reports": typist.reports_sent, "chars": len(text),
            "chars_per_s": len(text) / elapsed, "reports_per_s": typist.reports_sent / elapsed}


def bench(gadget: UsbGadget, text: str, delay: float | None, confirm: bool = True) -> dict:
    """Typing throughput into the kernel with no userspace reader (the kernel's own keyboard handler consumes the
    events): what the typist + /dev/hidg0 + dummy_hcd can carry. ``delay`` None: the keyboard exactly as the
    product builds it with default settings (sttkb.gadget.factory, default [keyboard] and [usb])."""
    if delay is None:
        from sttkb.config.keyboard import KeyboardSettings, UsbSettings
        from sttkb.gadget.factory import usb_typist
        typist = usb_typist(KeyboardSettings(), UsbSettings())
    else:
        transport = HidgTransport(gadget.hidg_device() or "/dev/hidg0", write_timeout_s=0.5,
                                  confirm_delivery=confirm)
        typist = Typist(transport, "us", key_delay_s=delay)
    out = _timed(typist, text)
    out.update(delay_ms=typist.key_delay_s * 1000, confirm_delivery=typist.transport.confirm_delivery,
               default_settings=delay is None)
    typist.close()
    return out


def type_and_read(gadget: UsbGadget, layout: str, text: str, *, delay: float = 0.0, caps: bool = False,
                  unplugs: int = 0) -> dict:
    reader = HostReader(layout, caps, hidraw=unplugs > 0)
    assert reader.ready.wait(10), "keyboard input device did not appear"
    if caps:
        reader.set_caps_led(True)
    transport = HidgTransport(gadget.hidg_device() or "/dev/hidg0", sysfs_root="/sys", write_timeout_s=0.5)
    typist = Typist(transport, layout, key_delay_s=delay, retry_interval_s=0.05)
    if caps:
        deadline = time.monotonic() + 3
        while not transport.leds() & 0x02 and time.monotonic() < deadline:
            time.sleep(0.02)
    leds = transport.leds()
    udc = gadget.bound_udc()
    start = time.monotonic()
    typist.type_text(text)
    states = []
    for _ in range(unplugs):
        # unplug only while keys are arriving at the host (after a re-plug: once typing has resumed)
        seen = len(reader._raw)
        deadline = time.monotonic() + 15
        while len(reader._raw) < seen + 20 * 9 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        (gadget.path / "UDC").write_text("\n")
        # the typist notices at its next report (a write may wait up to write_timeout_s): poll, don't sample once
        deadline = time.monotonic() + 3
        while typist.state != "paused" and time.monotonic() < deadline:
            time.sleep(0.02)
        states.append(typist.state)
        (gadget.path / "UDC").write_text(udc + "\n")
    ok = typist.wait_idle(120)
    elapsed = time.monotonic() - start
    reports = typist.reports_sent
    typist.close()
    if caps:
        reader.set_caps_led(False)
    reader.finish()
    return {"typed": reader.host.text, "idle": ok, "seconds": elapsed, "reports": reports,
            "chars_per_s": len(text) / elapsed if elapsed else 0, "leds": leds,
            "held_at_end": sorted(reader.host.down), "connects": reader.connects, "paused_states": states,
            "autorepeats": reader.host.autorepeats}


def run_cli() -> str:
    """`sttkb gadget up/status/down` through sttkb.cli.keyboard's own argparse commands (the full `sttkb` entry point
    would import the ASR stack too: ~10 s per start under emulation)."""
    import argparse
    import contextlib
    import io

    from sttkb.cli import keyboard as cli

    cfg = Path("/tmp/sttkb-cli.toml")
    cfg.write_text('[usb]\ngadget_name = "clitest"\n')
    parser = argparse.ArgumentParser(prog="sttkb")
    parser.add_argument("--config")
    cli.register(parser.add_subparsers())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for argv, pause in ((["gadget", "up"], 2.0), (["gadget", "status"], 0), (["gadget", "down"], 0),
                            (["gadget", "down"], 0), (["gadget", "status"], 0)):
            args = parser.parse_args(["--config", str(cfg), *argv])
            rc = args.func(args)
            print(f"rc={rc}")
            time.sleep(pause)
    return out.getvalue()


def main() -> int:
    results: dict = {"cases": []}
    try:
        results["cli"] = run_cli()
    except Exception:
        results["cli"] = traceback.format_exc()
    spec = GadgetSpec(name="sttkbtest", product=PRODUCT, manufacturer="sttkb", serial="")
    gadget = UsbGadget(spec)
    try:
        udc = gadget.up()
        results["udc"] = udc
        results["up_again"] = gadget.up()  # idempotent
        deadline = time.monotonic() + 10
        while gadget.status().state != "configured" and time.monotonic() < deadline:
            time.sleep(0.05)
        st = gadget.status()
        results["status"] = {"state": st.state, "udc": st.udc, "functions": list(st.functions),
                             "hidg": st.hidg_device, "describe": st.describe()}
        results["report_desc"] = (gadget.path / "functions/hid.usb0/report_desc").read_bytes().hex()
        results["serial"] = (gadget.path / "strings/0x409/serialnumber").read_text().strip()
        cases = json.loads(os.environ.get("USB_CASES", "[]"))
        for case in cases:
            kind = case["kind"]
            try:
                if kind == "type":
                    res = type_and_read(gadget, case["layout"], case["text"], delay=case.get("delay", 0),
                                        caps=case.get("caps", False), unplugs=case.get("unplugs", 0))
                elif kind == "bench":
                    res = bench(gadget, case["text"], case.get("delay"), case.get("confirm", True))
                else:
                    raise ValueError(kind)
            except Exception:
                res = {"error": traceback.format_exc()}
            res["case"] = case
            results["cases"].append(res)
            (OUT / "usb.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
        gadget.down()
        gadget.down()  # idempotent
        results["after_down_exists"] = gadget.path.exists()
    except Exception:
        results["error"] = traceback.format_exc()
    (OUT / "usb.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

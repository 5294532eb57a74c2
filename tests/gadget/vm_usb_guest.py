"""Runs INSIDE the qemu guest (see test_usb_vm.py): the project's own gadget setup on dummy_hcd, the typist writing
to /dev/hidg0, and the host side read back from /dev/input/event* and decoded with xkbcommon in the same layout.

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
from sttkb.gadget.virtual import HostDecoder
from sttkb.gadget import hid_usage
from sttkb.gadget.keymap import get_keymap
from sttkb.gadget.keystrokes import plan_text

OUT = Path(os.environ["STTKB_VM_OUT"])
EVENT = struct.Struct("llHHi")  # struct input_event on x86_64: timeval, type, code, value
EV_KEY, EV_LED, LED_CAPSL = 0x01, 0x11, 0x01
PRODUCT = "sttkb test keyboard"

PANGRAMS = {
    "us": "The quick brown fox jumps over the lazy dog! 0123456789 #$%&*()[]{}<>@\\|~^`'\"_+=-;:,./?\n\tDone.",
    "gb": "Pack my box with five dozen liquor jugs: £5 #1 @home \"quoted\" ~tilde~ \\back| 0123456789 ¬!\n",
    "de": "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg. 0123456789 @€ {}[]\\|~^° §$%&/()=?` é É",
    "fr": "Portez ce vieux whisky au juge blond qui fume. à é è ç ù 0123456789 @#{}[]|\\^~ €£µ§ ê ô ï!?;:",
}


MARK_CONNECT = 0xFFFF
PAIR = struct.Struct("=Hi")


def _EVIOCGNAME(length: int) -> int:
    return (2 << 30) | (length << 16) | (ord("E") << 8) | 0x06


def open_our_keyboard(flags: int = os.O_RDONLY | os.O_NONBLOCK) -> int | None:
    """An fd on our keyboard's /dev/input/event* (matched by name with EVIOCGNAME: no slow sysfs walk)."""
    for name in sorted(os.listdir("/dev/input")):
        if not name.startswith("event"):
            continue
        try:
            fd = os.open(f"/dev/input/{name}", flags)
        except OSError:
            continue
        buf = bytearray(256)
        try:
            fcntl.ioctl(fd, _EVIOCGNAME(len(buf)), buf)
        except OSError:
            os.close(fd)
            continue
        if PRODUCT in buf.split(b"\0", 1)[0].decode("utf-8", "replace"):
            return fd
        os.close(fd)
    return None


def _HIDIOCGRAWNAME(length: int) -> int:
    return (2 << 30) | (length << 16) | (ord("H") << 8) | 0x04


def open_our_hidraw() -> int | None:
    """An fd on our keyboard's /dev/hidraw*: unlike evdev, hidraw still returns the reports it buffered after
    the device is gone, so an unplug cannot make the reader miss keys the host kernel did receive."""
    for name in sorted(os.listdir("/dev")):
        if not name.startswith("hidraw"):
            continue
        try:
            fd = os.open(f"/dev/{name}", os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue
        buf = bytearray(256)
        try:
            fcntl.ioctl(fd, _HIDIOCGRAWNAME(len(buf)), buf)
        except OSError:
            os.close(fd)
            continue
        if PRODUCT in buf.split(b"\0", 1)[0].decode("utf-8", "replace"):
            return fd
        os.close(fd)
    return None


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
    """The host: a separate process reads the keyboard's events (as a desktop would, promptly), this side
    decodes them with xkbcommon in the host layout."""

    def __init__(self, layout: str, caps: bool = False, hidraw: bool = False) -> None:
        self.hidraw = hidraw
        self.decoder = HostDecoder(layout)
        if caps:
            self.decoder.key(hid_usage.KEY_CAPSLOCK, 1)
            self.decoder.key(hid_usage.KEY_CAPSLOCK, 0)
            self.decoder.events.clear()
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
            from sttkb.gadget.virtual import ReportDecoder
            reports = ReportDecoder(self.decoder)
            for off in range(0, len(self._raw) - 8, 9):
                kind, body = self._raw[off:off + 1], self._raw[off + 1:off + 9]
                if kind == b"C":
                    self.connects += 1
                    reports.reset()
                else:
                    reports.feed(body)
            return
        n = len(self._raw) - len(self._raw) % PAIR.size
        for off in range(0, n, PAIR.size):
            code, value = PAIR.unpack_from(self._raw, off)
            if code == MARK_CONNECT:
                self.connects = value
                self.decoder.release_all()
            else:
                self.decoder.key(code, value)

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


def bench(gadget: UsbGadget, chars: int, delay: float, confirm: bool = True) -> dict:
    """Typing throughput into the kernel with no userspace reader (the kernel's own keyboard handler
    consumes the events): what the typist + /dev/hidg0 + dummy_hcd can carry."""
    text = ((PANGRAMS["us"].replace("\n", " ").replace("\t", " ") + " ") * 40)[:chars]
    transport = HidgTransport(gadget.hidg_device() or "/dev/hidg0", write_timeout_s=0.5, confirm_delivery=confirm)
    typist = Typist(transport, "us", key_delay_s=delay)
    start = time.monotonic()
    typist.type_text(text)
    ok = typist.wait_idle(120)
    elapsed = time.monotonic() - start
    reports = typist.reports_sent
    typist.close()
    return {"idle": ok, "seconds": elapsed, "reports": reports, "chars": len(text),
            "chars_per_s": len(text) / elapsed, "reports_per_s": reports / elapsed, "delay_ms": delay * 1000,
            "confirm_delivery": confirm}


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
        time.sleep(0.3)
        states.append(typist.state)
        (gadget.path / "UDC").write_text(udc + "\n")
    ok = typist.wait_idle(120)
    elapsed = time.monotonic() - start
    reports = typist.reports_sent
    typist.close()
    if caps:
        reader.set_caps_led(False)
    reader.finish()
    held = sorted(reader.decoder.down)
    repeats = sum(1 for _, value in reader.decoder.events if value == 2)
    expected = plan_text(text, get_keymap(layout), caps_lock=caps).expected
    return {"layout": layout, "caps": caps, "input": text, "expected": expected, "typed": reader.decoder.text, "idle": ok,
            "seconds": elapsed, "reports": reports, "chars_per_s": len(text) / elapsed if elapsed else 0,
            "leds": leds, "held_at_end": held, "connects": reader.connects, "paused_states": states,
            "delay_ms": delay * 1000, "autorepeats": repeats}


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
                if kind == "pangram":
                    res = type_and_read(gadget, case["layout"], PANGRAMS[case["layout"]], delay=case.get("delay", 0))
                elif kind == "caps":
                    res = type_and_read(gadget, case["layout"], PANGRAMS[case["layout"]], caps=True)
                elif kind == "unplug":
                    text = (PANGRAMS["us"].replace("\n", " ").replace("\t", " ") + " ") * case.get("repeat", 8)
                    res = type_and_read(gadget, "us", text, delay=case.get("delay", 0.002), unplugs=case["unplugs"])
                elif kind == "throughput":
                    text = (PANGRAMS["us"].replace("\n", " ").replace("\t", " ") + " ") * 40
                    text = text[:case.get("chars", 2000)]
                    res = type_and_read(gadget, "us", text, delay=case.get("delay", 0))
                elif kind == "bench":
                    res = bench(gadget, case.get("chars", 2000), case.get("delay", 0), case.get("confirm", True))
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

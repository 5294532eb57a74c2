"""Runs INSIDE the qemu guest (see test_run_vm.py): the box as it runs on a Pi, with a loopback sound card as its
microphone and the host side of the USB cable read back from the kernel's input device.

1. `sttkb gadget up` (what sttkb-gadget.service does at boot) creates the USB keyboard on dummy_hcd.
2. A host reader (tests/gadget/vm_usb_guest.py's, in its own process) opens the keyboard's /dev/input/event*.
3. `sttkb run` (no --simulate) starts with the config in $RUN_CONFIG_TEXT: it opens the loopback capture device as its
   microphone, loads the model, warms it up and tells "systemd" READY=1 on $NOTIFY_SOCKET.
4. aplay plays 2 s of tests/data/jfk.wav into the loopback's playback side while the daemon is idle (nothing may
   come of it), then `sttkb listen`, the whole recording in real time, and `stop` on the control socket.
5. When the daemon reports idle again: SIGTERM, and the host side is decoded (us layout).

Writes $STTKB_VM_OUT/run.json (after every step, so a timeout still leaves what happened) and the daemon's stderr
and stdout as daemon.err and daemon.out. Not a pytest module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from sttkb.daemon.control import request
from sttkb.daemon.journal import read_entries
from tests.gadget import vm_usb_guest as usb_guest

OUT = Path(os.environ["STTKB_VM_OUT"])
CONFIG = "/run/sttkb-vm/config.toml"  # written from $RUN_CONFIG_TEXT
MODEL = os.environ["RUN_MODEL"]
JOURNAL = Path(os.environ["RUN_JOURNAL"])
PRODUCT = os.environ["RUN_PRODUCT"]
SOCKET = os.environ["RUN_SOCKET"]
PLAYBACK = "plughw:Loopback,0,0"  # loops back to the capture side hw:Loopback,1,0, the daemon's microphone
STTKB = [".venv/bin/sttkb", "--config", CONFIG]
WAV = "tests/data/jfk.wav"
T0 = time.monotonic()


def now() -> float:
    """Seconds since this script started."""
    return round(time.monotonic() - T0, 3)


def say(msg: str) -> None:
    print(f"guest [{now():7.1f}] {msg}", flush=True)


class TimedHostReader(usb_guest.HostReader):
    """The USB test's host reader, also noting when each batch of key events arrived (our clock)."""

    def __init__(self, layout: str) -> None:
        self.arrivals: list[tuple[float, int]] = []  # (seconds since start, bytes received so far)
        super().__init__(layout)

    def _collect(self) -> None:
        while True:
            data = os.read(self._r, 65536)
            if not data:
                break
            self._raw += data
            self.arrivals.append((now(), len(self._raw)))
            self.ready.set()

    def key_times(self) -> list[float]:
        """Arrival time of each key event (connect marks left out)."""
        times, size = [], usb_guest.PAIR.size
        i = 0
        for off in range(0, len(self._raw) - len(self._raw) % size, size):
            code, _ = usb_guest.PAIR.unpack_from(self._raw, off)
            while self.arrivals[i][1] < off + size:
                i += 1
            if code != usb_guest.MARK_CONNECT:
                times.append(self.arrivals[i][0])
        return times


class NotifyListener:
    """Plays systemd's side of sd_notify: collects the daemon's READY/STATUS/STOPPING datagrams."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            for line in data.splitlines():
                self.messages.append((now(), line))

    def wait_for(self, predicate, after: float, timeout: float, proc: subprocess.Popen) -> float | None:
        """Time of the first message after ``after`` that ``predicate`` accepts; None on timeout or exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in list(self.messages):
                if t >= after and predicate(line):
                    return t
            if proc.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def close(self) -> None:
        self._done.set()
        self._thread.join(2)
        self.sock.close()


def run_cli(*args: str, timeout: float = 120) -> dict:
    start = now()
    p = subprocess.run([*STTKB, *args], capture_output=True, text=True, timeout=timeout)
    return {"argv": list(args), "rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr,
            "started": start, "ended": now()}


def play(seconds: int | None = None) -> dict:
    """Play the recording into the loopback in real time. aplay is "the air", not the system under test: it runs
    SCHED_FIFO with a 0.5 s buffer so a busy emulated CPU cannot put gaps into the sound."""
    start = now()
    cmd = ["chrt", "-f", "50", "aplay", "-q", "--buffer-time=500000", "-D", PLAYBACK,
           *(["-d", str(seconds)] if seconds else []), WAV]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return {"rc": p.returncode, "stderr": p.stderr, "started": start, "ended": now()}


def main() -> int:
    res: dict = {"steps": {}}
    steps = res["steps"]

    def save() -> None:
        (OUT / "run.json").write_text(json.dumps(res, ensure_ascii=False, indent=1))

    usb_guest.PRODUCT = PRODUCT  # the reader finds the keyboard by its USB product string
    daemon = reader = notify = None
    err_path = OUT / "daemon.err"
    try:
        Path("/run/sttkb-vm").mkdir(parents=True, exist_ok=True)
        Path(CONFIG).write_text(os.environ["RUN_CONFIG_TEXT"])
        res["arecord_l"] = subprocess.run(["arecord", "-l"], capture_output=True, text=True).stdout
        steps["gadget_up"] = run_cli("gadget", "up")
        save()
        say(f"gadget up: rc {steps['gadget_up']['rc']} {steps['gadget_up']['stdout'].strip()}")
        if steps["gadget_up"]["rc"] != 0:
            return 0
        reader = TimedHostReader("us")
        res["keyboard_seen"] = reader.ready.wait(20)
        say(f"host sees the keyboard: {res['keyboard_seen']}")

        notify = NotifyListener("/run/sttkb-vm/notify")
        env = {**os.environ, "NOTIFY_SOCKET": notify.path}
        started = now()
        daemon = subprocess.Popen([*STTKB, "run", "--model", MODEL], stdout=(OUT / "daemon.out").open("w"),
                                  stderr=err_path.open("w"), env=env)
        ready = notify.wait_for(lambda m: m == "READY=1", started, 900, daemon)
        res["daemon_started"], res["daemon_ready"] = started, ready
        save()
        say(f"daemon ready after {ready - started:.1f} s" if ready else "daemon NOT ready")
        if ready is None:
            return 0

        steps["before_listen"] = play(2)  # speech while idle: must never be typed
        time.sleep(1.0)
        res["key_events_before_listen"] = len(reader.key_times())
        steps["listen"] = run_cli("listen")
        say(f"listen: rc {steps['listen']['rc']} {steps['listen']['stderr'].strip()}")
        steps["play"] = play()
        say(f"played jfk.wav: rc {steps['play']['rc']} {steps['play']['stderr'].strip()}")
        time.sleep(0.3)
        # The release: `stop` straight over the control socket, the moment the audio has ended (starting the
        # `sttkb` command takes tens of seconds on the emulated CPU while whisper.cpp runs; `listen` above is the
        # command itself).
        started = now()
        reply = request("stop", path=SOCKET, timeout=60)
        steps["stop"] = {"reply": reply, "started": started, "ended": now()}
        say(f"stop: {reply}")
        save()
        idle = notify.wait_for(lambda m: m.startswith("STATUS=idle"), steps["stop"]["ended"], 900, daemon)
        res["idle_again"] = idle
        say(f"daemon idle again: {idle}")
        time.sleep(1.0)  # any key still on its way
        sigterm = now()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        res["sigterm"], res["exited"], res["returncode"] = sigterm, now(), daemon.returncode
        res["daemon_stdout"] = (OUT / "daemon.out").read_text()
        say(f"daemon exited with {daemon.returncode} after {res['exited'] - sigterm:.1f} s")
        daemon = None
        reader.finish()
        res["typed"] = reader.host.text
        res["held_at_end"] = sorted(reader.host.down)
        res["key_times"] = reader.key_times()
        res["connects"] = reader.connects
        res["notify"] = notify.messages
        res["journal"] = [e.__dict__ for e in read_entries(JOURNAL)]
    except Exception:
        res["error"] = traceback.format_exc()
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        if notify is not None:
            notify.close()
        res["daemon_stderr"] = err_path.read_text() if err_path.exists() else ""
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

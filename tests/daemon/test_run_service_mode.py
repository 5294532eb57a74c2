"""`sttkb run` as the service runs it (not --simulate), on a machine without the box's hardware: no microphone,
no /dev/hidg0, GPIO through gpiozero's MockFactory (set in the config). The daemon must come up, tell systemd
it is ready, show the error state on the control socket, and stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

STTKB = Path(sys.executable).with_name("sttkb")


@pytest.mark.slow
def test_service_mode_without_hardware_reports_error_and_stops_on_sigterm(default_model):
    with tempfile.TemporaryDirectory(prefix="sttkb-r") as d:
        d = Path(d)
        (d / "config.toml").write_text(f"""
[usb]
hidg_device = "{d}/hidg0"
[bluetooth]
enabled = false
[button]
pin_factory = "mock"
[journal]
path = "{d}/journal.jsonl"
""")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(d / "notify"))
        notify.settimeout(0.2)
        messages: list[str] = []
        done = threading.Event()

        def listen():
            while not done.is_set():
                try:
                    messages.append(notify.recv(4096).decode())
                except socket.timeout:
                    pass

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        env = {**os.environ, "NOTIFY_SOCKET": str(d / "notify"), "WATCHDOG_USEC": "1000000"}
        proc = subprocess.Popen([str(STTKB), "--config", str(d / "config.toml"), "run", "--control",
                                 str(d / "c.sock"), "--model", str(default_model)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 120
            while not any(m.startswith("READY=1") for m in messages):
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "no READY=1"
                time.sleep(0.1)
            status = subprocess.run([str(STTKB), "status", "--json", "--control", str(d / "c.sock")],
                                    capture_output=True, text=True, timeout=30)
            reply = json.loads(status.stdout)
            if reply["mic"] == "ok":
                pytest.skip("this machine has a microphone")
            assert reply["state"] == "error" and reply["keyboard"] == "offline"
            time.sleep(1.5)
            assert messages.count("WATCHDOG=1") >= 2  # the loop keeps pinging in the error state
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            done.set()
            listener.join(2)
            notify.close()
        assert proc.returncode == 0, err
        assert "no microphone" in err and "Traceback" not in err
        assert messages[-1] == "STOPPING=1"
        assert not (d / "c.sock").exists()  # the socket is removed on the way out

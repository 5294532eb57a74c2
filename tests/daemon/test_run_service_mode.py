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


def test_without_button_and_led_pins_it_runs_and_says_so_once(tmp_path, monkeypatch, caplog):
    """``[button] pin = ""`` and ``[led] pin = ""`` (a box without them, or the qemu VM of test_run_vm.py): the
    daemon needs no GPIO pin factory at all, says once that it has no button and no LED, and serves the control
    socket. Stand-ins: the microphone and the transcriber (the real ones run in test_run_vm.py)."""
    from sttkb.cli import main
    from sttkb.daemon.service import Daemon
    from tests.daemon.conftest import ScriptedMic, WordTranscriber

    (tmp_path / "config.toml").write_text(f"""
[usb]
hidg_device = "{tmp_path}/hidg0"
[bluetooth]
enabled = false
[button]
pin = ""
[led]
pin = ""
[journal]
path = "{tmp_path}/journal.jsonl"
""")
    factories = []
    import sttkb.audio.mic
    import sttkb.daemon.button
    real_make = sttkb.daemon.button.make_pin_factory
    monkeypatch.setattr(sttkb.daemon.button, "make_pin_factory",
                        lambda name: factories.append(name) or real_make(name))
    import sttkb.speech
    monkeypatch.setattr(sttkb.speech, "choose_model",
                        lambda config, name, **kw: sttkb.speech.ModelChoice(tmp_path / "model.bin", "model"))
    loads = []
    monkeypatch.setattr(sttkb.speech, "load_transcriber",
                        lambda config, model, **kw: loads.append(kw) or WordTranscriber())
    monkeypatch.setattr(sttkb.audio.mic, "MicSource", lambda settings: ScriptedMic().open())
    real_run = Daemon.run
    states = []

    def run_briefly(self):
        def stop():
            states.append(self.call(self.status))
            self.shutdown()
        threading.Timer(0.5, stop).start()
        real_run(self)

    monkeypatch.setattr(Daemon, "run", run_briefly)
    caplog.set_level("INFO")
    with tempfile.TemporaryDirectory(prefix="sttkb-c") as d:  # a short path: unix socket names are limited
        assert main(["--config", str(tmp_path / "config.toml"), "run", "--control", f"{d}/c.sock"]) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "no button" in m]) == 1, messages
    assert len([m for m in messages if "no status LED" in m]) == 1, messages
    assert factories == [""]  # no pin factory: gpiozero is never asked for one
    assert loads == [{"yield_cpu": True}], "the box's daemon decodes below the microphone's priority"
    assert states and states[0]["mic"] == "ok" and states[0]["state"] == "idle"

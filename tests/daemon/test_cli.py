"""`sttkb status|listen|stop|history|retype|reload` against a daemon on a real control socket, and without one."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sttkb.cli import main
from sttkb.cli.daemon import notify_daemon_model, send_to_daemon
from sttkb.daemon.control import ControlServer
from sttkb.daemon.journal import TYPED, Journal
from tests.daemon.conftest import Rig, WordTranscriber

STTKB = Path(sys.executable).with_name("sttkb")


@pytest.fixture
def sock():
    with tempfile.TemporaryDirectory(prefix="sttkb-c") as d:
        yield Path(d) / "control.sock"


@pytest.fixture
def served(tmp_path, sock, monkeypatch):
    monkeypatch.setenv("STTKB_CONTROL_SOCKET", str(sock))
    rig = Rig(tmp_path, load_model=lambda name: (WordTranscriber(f"[{name}]"), name))
    server = ControlServer(rig.daemon.command, sock, group=None)
    server.start()
    yield rig
    server.close()
    rig.close()


def test_not_running_is_one_clear_line(sock):
    r = subprocess.run([str(STTKB), "status"], capture_output=True, text=True, timeout=60,
                       env={"STTKB_CONTROL_SOCKET": str(sock), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1
    assert r.stderr.strip() == (f"sttkb: error: sttkb daemon is not running (no answer on {sock}): start it with "
                                f"`systemctl start sttkb` or `sttkb run`")
    assert "Traceback" not in r.stderr


def test_status_listen_stop_retype_history(served, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "state:     idle" in out and "model:     tiny" in out
    assert "engine:    local (speech stays on the box)" in out
    assert main(["listen"]) == 0
    served.wait_state("handsfree")
    served.mic.say("from", "the", "cli")
    served.wait_text("from the cli ")
    assert main(["stop"]) == 0
    served.wait_state("idle")
    assert main(["retype"]) == 0
    served.wait_text("from the cli from the cli ")
    served.wait_state("idle")
    capsys.readouterr()
    assert main(["history"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("from the cli") and len(out.splitlines()) == 1


def test_model_use_notifies_a_running_daemon(served):
    assert notify_daemon_model("base.en") == "the running daemon now uses base.en"
    assert served.daemon.model_name == "base.en"


def test_model_use_without_a_daemon(sock, monkeypatch):
    monkeypatch.setenv("STTKB_CONTROL_SOCKET", str(sock))
    assert "not running" in notify_daemon_model("base.en")
    assert send_to_daemon("type", text="x") is None  # `sttkb type` then types directly


def test_history_without_a_daemon_reads_the_journal_and_marks_untyped(tmp_path, sock, monkeypatch, capsys):
    monkeypatch.setenv("STTKB_CONTROL_SOCKET", str(sock))
    j = Journal(tmp_path / "j.jsonl")
    j.mark(j.append("typed one ", 1), TYPED)
    j.append("lost in a power cut ", 2)
    assert main(["history", "--file", str(tmp_path / "j.jsonl")]) == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0].endswith("  typed one") and lines[1].endswith("! lost in a power cut")
    assert "sttkb retype ID" in cap.err


def test_type_goes_through_the_running_daemon(sock, monkeypatch, capsys):
    """`sttkb type TEXT` hands the text to a running daemon (it owns /dev/hidg0 and journals what it types)
    instead of opening the keyboard a second time."""
    got = []

    def handler(request):
        got.append(request)
        return {"ok": True}

    monkeypatch.setenv("STTKB_CONTROL_SOCKET", str(sock))
    server = ControlServer(handler, sock, group=None)
    server.start()
    try:
        assert main(["type", "Hello there"]) == 0
    finally:
        server.close()
    assert got == [{"cmd": "type", "text": "Hello there"}]
    assert "handed to the running daemon" in capsys.readouterr().err


def test_type_without_a_daemon_and_without_usb_says_what_to_do(sock, monkeypatch, capsys):
    monkeypatch.setenv("STTKB_CONTROL_SOCKET", str(sock))   # nobody listens there
    assert main(["type", "Hello"]) == 1
    err = capsys.readouterr().err
    assert "no host has the USB keyboard configured" in err and "Traceback" not in err


def test_the_command_line_loads_no_heavy_modules():
    """`sttkb listen`, `stop`, `status` send one JSON line: building the command line must not import numpy,
    asyncio or whisper.cpp (every command paid for them: `sttkb --help` took 0.7 s here instead of 0.2 s, and
    `sttkb listen` 20-50 s on the emulated CPU of tests/daemon/test_run_vm.py)."""
    code = ("import sys; from sttkb.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'asyncio', 'pywhispercpp', '_pywhispercpp', 'gpiozero', 'pyaudio') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_status_names_the_remote_engine_and_who_typed():
    from sttkb.cli.daemon import engine_line
    assert engine_line({"engine": "local"}) == "local (speech stays on the box)"
    up = {"engine": "wyoming://10.0.0.2:10300", "remote_up": True, "last_engine": "remote", "last_rtt_ms": 312,
          "last_error": None}
    assert engine_line(up) == "wyoming://10.0.0.2:10300 (answers); last text by the server; round trip 312 ms"
    down = dict(up, remote_up=False, last_engine="local", last_error="timeout: no answer within 2.0 s")
    assert engine_line(down) == ("wyoming://10.0.0.2:10300 (not answering: the box's model decodes); last text by "
                                 "the box's model; round trip 312 ms; last failure: timeout: no answer within 2.0 s")

"""The control socket over a real unix socket in a temporary directory."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import tempfile
import threading
from pathlib import Path

import pytest

from sttkb.daemon.control import (CommandFailed, ControlError, ControlServer, DaemonNotRunning, request)


@pytest.fixture
def sock_dir():
    with tempfile.TemporaryDirectory(prefix="sttkb-") as d:  # short: unix socket paths max 107 bytes
        yield Path(d)


def _echo(req: dict) -> dict:
    if req["cmd"] == "type" and not req.get("text"):
        return {"ok": False, "error": "nothing to type"}
    return {"ok": True, "echo": req}


def test_request_reply_and_socket_mode(sock_dir):
    group = grp.getgrgid(os.getgid()).gr_name
    server = ControlServer(_echo, sock_dir / "control.sock", group=group)
    path = server.start()
    try:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == os.getgid()
        reply = request("type", path=path, text="héllo")
        assert reply == {"ok": True, "echo": {"cmd": "type", "text": "héllo"}}
        with pytest.raises(CommandFailed, match="nothing to type"):
            request("type", path=path, text="")
    finally:
        server.close()
    assert not path.exists()


def test_the_service_group_needs_no_chown(sock_dir, monkeypatch, caplog):
    """Under sttkb.service (Group=sttkb, SystemCallFilter=~@privileged) chown fails with EPERM — seen when the
    image booted. The seccomp filter cannot exist here, so os.chown is replaced by one that fails the same way:
    a socket that already has the group is left alone, with no warning."""
    def filtered(*_a, **_k):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "chown", filtered)
    server = ControlServer(_echo, sock_dir / "control.sock", group=grp.getgrgid(os.getgid()).gr_name)
    path = server.start()
    try:
        assert os.stat(path).st_gid == os.getgid()
        assert "cannot give the control socket" not in caplog.text
    finally:
        server.close()


def test_bad_requests_get_a_clear_error_and_the_connection_stays_usable(sock_dir):
    server = ControlServer(_echo, sock_dir / "c.sock", group=None)
    path = server.start()
    try:
        with socket.socket(socket.AF_UNIX) as s, s.makefile("rwb") as f:
            s.connect(str(path))
            for line, expect in ((b"not json\n", "not a JSON line"), (b'{"cmd": "format_disk"}\n', "unknown command"),
                                 (b'{"cmd": "status"}\n', None)):
                f.write(line)
                f.flush()
                reply = json.loads(f.readline())
                if expect:
                    assert reply["ok"] is False and expect in reply["error"]
                else:
                    assert reply["ok"] is True
    finally:
        server.close()


def test_a_failing_handler_answers_with_an_error_and_the_server_lives_on(sock_dir):
    def handler(req):
        if req["cmd"] == "pair":
            raise ValueError("boom")
        return {"ok": True}

    server = ControlServer(handler, sock_dir / "c.sock", group=None)
    path = server.start()
    try:
        with pytest.raises(CommandFailed, match="internal error: boom"):
            request("pair", path=path)
        assert request("status", path=path)["ok"]
    finally:
        server.close()


def test_not_running_says_how_to_start_it(sock_dir):
    with pytest.raises(DaemonNotRunning) as info:
        request("status", path=sock_dir / "nobody.sock")
    msg = str(info.value)
    assert "sttkb daemon is not running" in msg and "systemctl start sttkb" in msg and "sttkb run" in msg


def test_a_stale_socket_file_is_replaced_but_a_live_daemon_is_not(sock_dir):
    path = sock_dir / "c.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # file left behind, nobody listening (daemon killed)
    first = ControlServer(_echo, path, group=None)
    first.start()
    try:
        assert request("status", path=path)["ok"]
        with pytest.raises(ControlError, match="already running"):
            ControlServer(_echo, path, group=None).start()
        assert request("status", path=path)["ok"]  # the first one was not disturbed
    finally:
        first.close()


def test_concurrent_clients_are_served(sock_dir):
    gate, entered = threading.Event(), threading.Event()

    def handler(req):
        if req["cmd"] == "model_use":
            entered.set()
            gate.wait(30)  # a slow command must not block status
        return {"ok": True, "cmd": req["cmd"]}

    server = ControlServer(handler, sock_dir / "c.sock", group=None)
    path = server.start()
    try:
        slow = threading.Thread(target=request, args=("model_use",), kwargs={"path": path, "name": "x"})
        slow.start()
        assert entered.wait(10)                          # the slow command is being handled now
        assert request("status", path=path, timeout=10)["cmd"] == "status"   # long before the slow one ends
        gate.set()
        slow.join(5)
    finally:
        server.close()

"""sd_notify against a real NOTIFY_SOCKET the test binds: READY, STATUS, WATCHDOG pings from the main loop,
no pings while the loop hangs, STOPPING at the end."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from sttkb.daemon.notify import Notifier, watchdog_interval_s
from tests.daemon.conftest import Rig
from tests.polling import wait_for


class NotifyListener:
    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def times(self, line: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [t for t, m in list(self.messages) if line in m.split("\n") and since <= t <= until]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self.sock.close()


@pytest.fixture
def listener():
    with tempfile.TemporaryDirectory(prefix="sttkb-n") as d:
        lis = NotifyListener(str(Path(d) / "notify.sock"))
        yield lis
        lis.close()


def test_ready_watchdog_and_a_hung_loop_stops_the_pings(tmp_path, listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.sock.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    rig = Rig(tmp_path, notifier=Notifier())
    try:
        assert wait_for(lambda: len(listener.times("WATCHDOG=1")) >= 3, 10.0), listener.messages
        assert listener.times("READY=1"), listener.messages
        assert any(m.startswith("READY=1\nSTATUS=idle") for _, m in listener.messages)

        hanging, released = threading.Event(), threading.Event()
        rig.daemon.call_soon(lambda: hanging.set() or released.wait(10))   # the main loop hangs until released
        assert hanging.wait(10)
        time.sleep(0.2)                                  # a ping already on its way when the hang began may land
        hang_start = time.monotonic()
        time.sleep(1.0)
        hang_end = time.monotonic()
        assert listener.times("WATCHDOG=1", hang_start, hang_end) == []  # systemd would restart us now
        released.set()
        assert wait_for(lambda: listener.times("WATCHDOG=1", hang_end + 0.05), 10.0)  # pings resume with the loop
    finally:
        rig.close()
    assert wait_for(lambda: listener.times("STOPPING=1"), 10.0)


def test_status_follows_the_state(tmp_path, listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.sock.getsockname())
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    rig = Rig(tmp_path, notifier=Notifier())
    try:
        rig.daemon.command({"cmd": "listen"})
        assert wait_for(lambda: any("STATUS=handsfree" in m for _, m in listener.messages), 10.0)
        assert listener.times("WATCHDOG=1") == []  # no WatchdogSec, no pings
    finally:
        rig.close()


def test_abstract_socket_names_and_no_socket():
    name = f"@sttkb-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name[1:])
    s.settimeout(1)
    try:
        assert Notifier(name).ready("hi")
        assert s.recv(100) == b"READY=1\nSTATUS=hi"
    finally:
        s.close()
    assert Notifier("").watchdog() is False  # not under systemd: a no-op


def test_watchdog_interval_is_half_the_timeout(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval_s() is None


def test_a_full_notify_queue_never_blocks_the_daemon():
    """systemd not reading (its queue full): sends are dropped, not waited for."""
    with tempfile.TemporaryDirectory(prefix="sttkb-n") as d:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(str(Path(d) / "n"))
        n = Notifier(str(Path(d) / "n"))
        t0 = time.monotonic()
        results = [n.watchdog() for _ in range(500)]
        assert time.monotonic() - t0 < 2.0
        assert results[0] is True and results[-1] is False
        s.close()

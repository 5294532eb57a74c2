"""BleTransport's own rules (pacing, HostDisconnected), with a stand-in for BleKeyboard (no D-Bus needed).

The real BleKeyboard is covered by test_keyboard_mock.py (dbusmock) and test_ble_vm.py (real bluetoothd).
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from gadget.ble.errors import BluetoothError
from gadget.ble.transport import BleTransport
from gadget.errors import HostDisconnected
from gadget.reports import key_report


class FakeKeyboard:
    def __init__(self, ready: bool = True, started: bool = True) -> None:
        self.settings = SimpleNamespace(report_interval_ms=20.0)
        self.ready, self.started = ready, started
        self.sent: list[tuple[float, bytes]] = []
        self.leds = 0x02

    def run(self, coro, timeout):
        if not self.started:
            coro.close()
            raise BluetoothError("the Bluetooth keyboard is not started")
        return asyncio.run(coro)

    async def notify(self, report: bytes) -> bool:
        if not self.ready:
            return False
        self.sent.append((time.monotonic(), report))
        return True

    def wait_ready(self, timeout: float) -> bool:
        return self.ready


def test_reports_are_spaced_by_report_interval_ms():
    kb = FakeKeyboard()
    t = BleTransport(kb)
    assert t.min_interval_s == pytest.approx(0.020)
    for i in range(5):
        t.send(key_report(0, 4 + i))
    gaps = [b[0] - a[0] for a, b in zip(kb.sent, kb.sent[1:])]
    assert len(kb.sent) == 5 and min(gaps) >= 0.019
    assert t.leds() == 0x02


def test_no_listening_host_raises_and_nothing_counts_as_sent():
    kb = FakeKeyboard(ready=False)
    t = BleTransport(kb, min_interval_s=0.0)
    with pytest.raises(HostDisconnected) as e:
        t.send(key_report(0, 4))
    assert e.value.reason == "disconnected" and "sttkb bt pair" in str(e.value)
    assert t.sent == 0 and kb.sent == []
    assert not t.wait_ready(0.01)


def test_stopped_keyboard_is_a_disconnect_not_a_crash():
    t = BleTransport(FakeKeyboard(started=False), min_interval_s=0.0)
    with pytest.raises(HostDisconnected) as e:
        t.send(key_report(0, 4))
    assert e.value.reason == "bluetooth-down"


def test_wrong_report_length_is_a_programming_error():
    with pytest.raises(ValueError):
        BleTransport(FakeKeyboard()).send(b"\x00" * 9)

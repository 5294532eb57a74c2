"""BleTransport's own rules (pacing, HostDisconnected, sending again what a lost link dropped), with a stand-in for
BlePeripheral (no D-Bus needed) and an HCI monitor whose tracker is a real DeliveryTracker fed with frames built in
hci_frames.py (the sandbox kernel has no Bluetooth).

The real BlePeripheral is covered by test_peripheral_mock.py (dbusmock) and test_ble_vm.py (real bluetoothd and a
real kernel's HCI monitor).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from sttkb.gadget.ble.errors import BluetoothError
from sttkb.gadget.ble.transport import BleTransport
from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.reports import ALL_KEYS_UP, key_report
from tests.ble import hci_frames as f
from tests.ble.hci_frames import FakeMonitor


class FakePeripheral:
    def __init__(self, ready: bool = True, started: bool = True) -> None:
        self.settings = SimpleNamespace(report_interval_ms=20.0)
        self.ready, self.started = ready, started
        self.subscribed = True
        self.sent: list[tuple[float, bytes]] = []
        self.leds = 0x02
        self.callbacks: list = []
        self.host_interval_s: float | None = None

    def on_ready(self, callback) -> None:
        self.callbacks.append(callback)

    def remove_on_ready(self, callback) -> None:
        self.callbacks.remove(callback)

    def send_report(self, report: bytes, *, unready: bool = False, timeout_s: float = 2.0) -> bool:
        if not self.started:
            raise BluetoothError("the Bluetooth keyboard is not started")
        if not (self.ready or unready) or not self.subscribed:
            return False
        self.sent.append((time.monotonic(), report))
        return True

    def reports(self) -> list[bytes]:
        return [r for _t, r in self.sent]

    def wait_ready(self, timeout: float) -> bool:
        return self.ready

    def host_report_interval_s(self) -> float | None:
        return self.host_interval_s


def test_reports_are_spaced_by_report_interval_ms():
    kb = FakePeripheral()
    t = BleTransport(kb)
    assert t.min_interval_s == pytest.approx(0.020)
    for i in range(5):
        t.send(key_report(0, 4 + i))
    gaps = [b[0] - a[0] for a, b in zip(kb.sent, kb.sent[1:])]
    assert len(kb.sent) == 5 and min(gaps) >= 0.019
    assert t.leds() == 0x02


def test_a_host_with_its_own_slow_pace_gets_reports_that_far_apart_and_a_faster_one_cannot_speed_up():
    kb = FakePeripheral()
    t = BleTransport(kb)
    kb.host_interval_s = 0.045          # `sttkb bt pace HOST 45` for the connected host
    for i in range(4):
        t.send(key_report(0, 4 + i))
    gaps = [b[0] - a[0] for a, b in zip(kb.sent, kb.sent[1:])]
    assert len(gaps) == 3 and min(gaps) >= 0.044, gaps
    kb.host_interval_s = 0.001          # a host's own pace below report_interval_ms does not apply
    assert t.interval_s() == pytest.approx(0.020)
    kb.host_interval_s = None           # `sttkb bt pace HOST normal`, or another host connected
    assert t.interval_s() == pytest.approx(0.020)


def test_no_listening_host_raises_and_nothing_counts_as_sent():
    kb = FakePeripheral(ready=False)
    t = BleTransport(kb, min_interval_s=0.0)
    with pytest.raises(HostDisconnected) as e:
        t.send(key_report(0, 4))
    assert e.value.reason == "disconnected" and "sttkb bt pair" in str(e.value)
    assert t.sent == 0
    assert kb.reports() == [ALL_KEYS_UP], "only all keys up, for the value bluetoothd keeps for the host's return"
    with pytest.raises(HostDisconnected):
        t.send(key_report(0, 5))
    assert kb.reports() == [ALL_KEYS_UP], "once per absence"
    assert not t.wait_ready(0.01)


def test_stopped_keyboard_is_a_disconnect_not_a_crash():
    t = BleTransport(FakePeripheral(started=False), min_interval_s=0.0)
    with pytest.raises(HostDisconnected) as e:
        t.send(key_report(0, 4))
    assert e.value.reason == "bluetooth-down"


def test_wrong_report_length_is_a_programming_error():
    with pytest.raises(ValueError):
        BleTransport(FakePeripheral()).send(b"\x00" * 9)


def _lose_link_after(kb: FakePeripheral, t: BleTransport, delivered: int) -> None:
    """What the kernel's monitor shows when the link drops with ``delivered`` reports completed."""
    tr = t.tracker
    for _t, r in kb.sent:
        tr.feed(f.notification(0x2A, r))
    tr.feed(f.completed(0x2A, delivered))
    tr.feed(f.disconnected(0x2A))
    kb.ready = False


def test_reports_the_link_dropped_go_again_first_when_the_host_is_back():
    kb = FakePeripheral()
    t = BleTransport(kb, monitor=FakeMonitor(), min_interval_s=0.0)
    a, b = key_report(0, 4), key_report(0, 5)
    for r in (a, ALL_KEYS_UP, b, ALL_KEYS_UP):
        t.send(r)
    _lose_link_after(kb, t, delivered=2)  # b and its release never arrived
    kb.sent.clear()
    with pytest.raises(HostDisconnected):
        t.send(key_report(0, 6))
    kb.ready = True
    kb.sent.clear()
    t.send(key_report(0, 6))
    assert kb.reports() == [b, ALL_KEYS_UP, key_report(0, 6)]
    assert t.resent == 2 and t.sent == 5


def test_a_host_back_while_nothing_is_typed_still_gets_what_it_missed():
    kb = FakePeripheral()
    monitor = FakeMonitor()
    t = BleTransport(kb, monitor=monitor, min_interval_s=0.0)
    a = key_report(0, 4)
    for r in (key_report(0, 5), ALL_KEYS_UP, a, ALL_KEYS_UP):
        t.send(r)
    _lose_link_after(kb, t, delivered=2)
    kb.ready = True
    kb.sent.clear()
    for callback in kb.callbacks:  # BlePeripheral calls these when a host is ready for keys
        callback()
    assert kb.reports() == [a, ALL_KEYS_UP]
    t.close()
    assert kb.callbacks == [] and monitor.closed, "the transport owns delivery tracking and ends it"
    assert t.tracker is None


def test_a_report_bluetoothd_did_not_take_is_not_waited_for():
    """No host: the report is handed to the tracker, refused, and taken back — else the tracker would wait for a
    report that never goes out, and stop trusting itself at the next one."""
    kb = FakePeripheral(ready=False)
    kb.subscribed = False
    t = BleTransport(kb, monitor=FakeMonitor(), min_interval_s=0.0)
    with pytest.raises(HostDisconnected):
        t.send(key_report(0, 4))
    assert kb.reports() == [] and t.tracker.pending == 0
    kb.ready = kb.subscribed = True
    t.send(key_report(0, 5))
    t.tracker.feed(f.notification(0x2A, key_report(0, 5)))
    assert t.tracker.trusted and t.tracker.pending == 1


def test_without_delivery_tracking_nothing_is_sent_twice():
    kb = FakePeripheral()
    t = BleTransport(kb, min_interval_s=0.0)
    t.send(key_report(0, 4))
    kb.ready = False
    with pytest.raises(HostDisconnected):
        t.send(ALL_KEYS_UP)
    kb.ready = True
    kb.sent.clear()
    for callback in kb.callbacks:
        callback()
    t.send(ALL_KEYS_UP)
    assert kb.reports() == [ALL_KEYS_UP]

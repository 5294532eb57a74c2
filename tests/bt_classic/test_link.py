"""HidLink and ClassicTransport with the two HID channels as local SOCK_SEQPACKET socket pairs (message
boundaries like L2CAP's; the sandbox kernel has no Bluetooth): what goes out on the interrupt channel, the
answers on the control channel, LEDs, a host that leaves, a host that unplugs the virtual cable, and the
keyboard reconnecting on demand. L2CAP itself, bluetoothd and a real host are in test_classic_vm.py."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sttkb.gadget.bt_classic.link import HidLink
from sttkb.gadget.bt_classic.transport import ClassicTransport
from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.reports import ALL_KEYS_UP, key_report
from sttkb.gadget.typist import Typist
from tests.polling import wait_for

HOST = "00:AA:01:01:00:24"
A = key_report(0, 0x04)


def pair():
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


class Host:
    """The host's ends of one connection."""

    def __init__(self, link: HidLink, address: str = HOST) -> None:
        box_ctrl, self.ctrl = pair()
        box_intr, self.intr = pair()
        for s in (self.ctrl, self.intr):
            s.settimeout(2.0)
        assert link._install(address, box_ctrl, box_intr)

    def close(self) -> None:
        self.intr.close()
        self.ctrl.close()


@pytest.fixture
def link():
    unplugged: list[str] = []
    changes: list[tuple[str, bool]] = []
    link = HidLink("00:AA:01:00:00:23", settle_s=0.05, on_unplug=unplugged.append,
                   on_change=lambda a, c: changes.append((a, c))).start(listeners=[])
    link.unplugged, link.changes = unplugged, changes
    yield link
    link.close()


def test_reports_go_out_on_the_interrupt_channel_once_settled(link):
    with pytest.raises(HostDisconnected):
        link.send_input(A)
    host = Host(link)
    assert link.host == HOST and link.changes == [(HOST, True)]
    with pytest.raises(HostDisconnected):   # not settled yet: the host's HID driver is still attaching
        link.send_input(A)
    assert link.wait_ready(1.0)
    link.send_input(A)
    link.send_input(ALL_KEYS_UP)
    assert host.intr.recv(64) == b"\xa1" + A
    assert host.intr.recv(64) == b"\xa1" + ALL_KEYS_UP


def test_control_transactions_are_answered_and_boot_protocol_adds_the_report_id(link):
    host = Host(link)
    assert link.wait_ready(1.0)
    host.ctrl.send(b"\x70")                       # SET_PROTOCOL boot
    assert host.ctrl.recv(64) == b"\x00"          # HANDSHAKE SUCCESSFUL
    link.send_input(A)
    assert host.intr.recv(64) == b"\xa1\x01" + A
    host.ctrl.send(b"\x41\x01")                   # GET_REPORT input, ID 1
    assert host.ctrl.recv(64) == b"\xa1\x01" + A
    host.intr.send(b"\xa2\x01\x02")               # Caps Lock LED, boot output report
    deadline = time.monotonic() + 2.0
    while link.leds != 0x02 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert link.leds == 0x02


def test_host_leaving_raises_host_disconnected_and_is_noticed(link):
    host = Host(link)
    assert link.wait_ready(1.0)
    host.close()
    assert wait_for(lambda: link.host is None and link.changes[-1] == (HOST, False), 10.0)
    with pytest.raises(HostDisconnected):
        link.send_input(A)
    assert not link.wait_ready(0.05)


def test_virtual_cable_unplug_drops_the_link_and_forgets_the_host(link):
    host = Host(link)
    host.ctrl.send(b"\x15")
    deadline = time.monotonic() + 2.0
    while not link.unplugged and time.monotonic() < deadline:
        time.sleep(0.01)
    assert link.unplugged == [HOST] and link.host is None
    assert host.intr.recv(64) == b"", "the keyboard closed its channels"


def test_one_host_at_a_time(link):
    first = Host(link)   # held: a host whose sockets are gone has left
    box_ctrl, _c = pair()
    box_intr, _i = pair()
    assert not link._install("00:AA:01:02:00:25", box_ctrl, box_intr)
    assert link.host == HOST
    first.close()


class FakeLink:
    """A link whose connect() makes a host appear (socket pairs) after a moment."""

    def __init__(self, real: HidLink) -> None:
        self.real = real
        self.connects: list[str] = []
        self.hosts: list[Host] = []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def connect(self, address: str) -> bool:
        self.connects.append(address)
        time.sleep(0.05)
        self.hosts.append(Host(self.real, address))
        return True


def test_transport_reconnects_when_the_typist_waits_and_types_the_rest(link):
    fake = FakeLink(link)
    transport = ClassicTransport(fake, reconnect_target=lambda: HOST, min_interval_s=0.0, retry_interval_s=0.2)
    assert transport.wait_ready(0) is False and fake.connects == [], "a status poll does not reconnect"
    typist = Typist(transport, layout="us", key_delay_s=0.0, retry_interval_s=0.05)
    try:
        typist.type_text("ab")
        assert typist.wait_idle(5.0)
        assert fake.connects == [HOST], "one reconnection, started by the typist waiting for the host"
        got = []
        host = fake.hosts[0]
        host.intr.settimeout(0.2)
        try:
            while True:
                got.append(host.intr.recv(64))
        except socket.timeout:
            pass
        assert got[0] == b"\xa1" + ALL_KEYS_UP, "after a pause the typist first lets go of every key"
        assert b"\xa1" + key_report(0, 0x04) in got and b"\xa1" + key_report(0, 0x05) in got
        assert got[-1] == b"\xa1" + ALL_KEYS_UP
    finally:
        typist.close()


def test_transport_retries_no_faster_than_its_interval(link):
    calls: list[float] = []

    class NoHost(FakeLink):
        def connect(self, address):
            calls.append(time.monotonic())
            return False

    transport = ClassicTransport(NoHost(link), reconnect_target=lambda: HOST, retry_interval_s=0.3)
    end = time.monotonic() + 0.8
    while time.monotonic() < end:
        transport.wait_ready(0.02)
    assert 2 <= len(calls) <= 3
    assert ClassicTransport(NoHost(link), reconnect_target=lambda: None).reconnect(now=True) is False


def test_close_is_safe_twice_and_wakes_waiters(link):
    waiter = threading.Thread(target=link.wait_ready, args=(5.0,))
    t0 = time.monotonic()
    waiter.start()
    link.close()
    link.close()
    waiter.join(6.0)
    assert time.monotonic() - t0 < 1.0


def test_connect_pages_first_and_never_opens_channels_to_a_host_that_does_not_answer(monkeypatch):
    asked: list[str] = []
    opened: list[tuple] = []
    monkeypatch.setattr("sttkb.gadget.bt_classic.l2cap.connect", lambda *a, **k: opened.append(a) or pair()[0])
    for answer in (False, None):
        link = HidLink("00:AA:01:00:00:23", answers_page=lambda a, r=answer: asked.append(a) or r)
        assert link.connect(HOST) is False
    assert asked == [HOST, HOST] and opened == [], "no L2CAP connection unless the host answered the page"


def test_no_reconnect_right_after_the_link_went_down(link):
    calls: list[str] = []

    class Counting(FakeLink):
        def connect(self, address):
            calls.append(address)
            return False

    transport = ClassicTransport(Counting(link), reconnect_target=lambda: HOST, retry_interval_s=0.3)
    link.dropped_at = time.monotonic()
    assert transport.reconnect() is False and calls == [], "a host that just left may still answer a page"
    assert wait_for(lambda: transport.reconnect(), 10.0)

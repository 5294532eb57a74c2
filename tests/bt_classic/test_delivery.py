"""Delivery tracking on Bluetooth Classic: the shared tracker (sttkb.gadget.ble.delivery) reading the interrupt
channel's frames (sttkb.gadget.bt_classic.interrupt), and ClassicTransport sending again exactly what a lost link
dropped. Monitor frames are built from the Core specification's layouts in tests/ble/hci_frames.py (the sandbox
kernel has no Bluetooth); the channels are SOCK_SEQPACKET socket pairs as in test_link.py. The qemu VM test
(test_classic_vm.py) runs the same code on a real kernel's monitor with a real host."""

from __future__ import annotations

import socket

import pytest

from sttkb.gadget.ble.delivery import DeliveryTracker
from sttkb.gadget.bt_classic import l2cap
from sttkb.gadget.bt_classic.interrupt import InterruptChannel
from sttkb.gadget.bt_classic.link import HidLink
from sttkb.gadget.bt_classic.transport import ClassicTransport
from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.reports import ALL_KEYS_UP, key_report
from sttkb.gadget.typist import Typist
from tests.ble import hci_frames as f
from tests.ble.hci_frames import FakeMonitor
from tests.bt_classic.test_link import HOST, FakeLink
from tests.bt_classic.test_link import Host as HostEnds
from tests.polling import wait_for

H, H2 = 0x000B, 0x000C        # ACL handles of two connections
INTR, CTRL = 0x0041, 0x0040   # the host's channel IDs
A, B, C = (key_report(0, k) for k in (4, 5, 6))


def report_frame(handle: int, report: bytes, *, cid: int = INTR, boot: bool = False) -> bytes:
    """One input report as the kernel hands it to the controller: DATA|Input, [boot report ID], the 8 bytes."""
    return f.acl_tx(handle, f.l2cap(b"\xa1" + (b"\x01" if boot else b"") + report, cid))


def tracker_on(handle: int = H, cid: int = INTR) -> DeliveryTracker:
    frames = InterruptChannel()
    frames.use(handle, cid)
    t = DeliveryTracker(0, frames)
    t.expect_link(handle)
    return t


def test_completed_reports_are_delivered_and_the_rest_is_lost_in_order_when_the_acl_link_goes():
    t = tracker_on()
    for r in (A, ALL_KEYS_UP, B, ALL_KEYS_UP, C):
        t.handed_over(r)
    for r in (A, ALL_KEYS_UP, B):
        t.feed(report_frame(H, r))
    t.feed(f.completed(H, 2))
    assert t.take_lost() == [], "nothing is lost while the link is up"
    t.feed(f.disconnected(H, reason=0x15))    # the host's adapter powered off
    assert t.take_lost() == [B, ALL_KEYS_UP, C], "in flight, then never sent: oldest first"
    assert t.take_lost() == []


def test_only_the_interrupt_channel_counts_not_the_same_bytes_answered_on_the_control_channel():
    t = tracker_on()
    t.handed_over(A)
    t.feed(report_frame(H, A, cid=CTRL))        # GET_REPORT(Input) answered with the last report
    t.feed(report_frame(H2, A))                 # another ACL link
    t.feed(f.completed(H, 1))
    assert t.pending == 1 and t.trusted
    t.feed(report_frame(H, A))
    t.feed(f.completed(H, 1))
    assert t.pending == 0 and t.completed_reports == 1


def test_boot_protocol_reports_carry_the_report_id_and_count_too():
    t = tracker_on()
    t.handed_over(A)
    t.feed(report_frame(H, A, boot=True))
    t.feed(f.completed(H))
    assert t.pending == 0 and t.trusted


def test_reports_the_kernel_still_held_are_lost_with_the_link_it_was_told_about():
    # Handed to the socket, never given to the controller: the tracker knows the link from expect_link().
    t = tracker_on()
    t.handed_over(A)
    t.feed(report_frame(H, A))
    t.feed(f.completed(H))
    t.handed_over(B)
    t.feed(f.disconnected(H2))
    assert t.take_lost() == [], "another link going is not ours"
    t.feed(f.disconnected(H))
    assert t.take_lost() == [B]


def test_an_untrusted_tracker_starts_afresh_with_the_next_acl_link_not_an_le_one():
    t = tracker_on()
    t.handed_over(A)
    t.feed(report_frame(H, B))
    assert not t.trusted
    t.feed(f.connected(H2))
    assert not t.trusted, "an LE connection is not the keyboard's"
    t.feed(f.acl_connected(H2))
    assert t.trusted and t.pending == 0


def test_channel_ids_of_a_socket_that_is_not_l2cap_are_unknown():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        assert l2cap.channel_ids(a) is None


# ---- the transport -----------------------------------------------------------------------------------------
class Host(HostEnds):
    """The host's ends of one connection, on ACL ``handle`` with the interrupt channel ``INTR``."""

    def __init__(self, link: HidLink, handle: int) -> None:
        super().__init__(link)
        link._conn.channel = (handle, INTR)   # what the kernel tells for a real L2CAP socket

    def received(self) -> list[bytes]:
        self.intr.settimeout(0.3)
        got = []
        try:
            while True:
                got.append(self.intr.recv(64)[1:])
        except socket.timeout:
            return got


@pytest.fixture
def link():
    link = HidLink("00:AA:01:00:00:23", settle_s=0.05).start(listeners=[])
    yield link
    link.close()


def transport_on(link: HidLink) -> ClassicTransport:
    return ClassicTransport(link, monitor=FakeMonitor(DeliveryTracker(0, InterruptChannel())), min_interval_s=0.0)


def lose_link(transport: ClassicTransport, host: Host, handle: int, sent: list[bytes], completed: int) -> None:
    """What the box's monitor shows when the ACL link goes with ``completed`` of ``sent`` reports completed; and
    the host's side going away."""
    for r in sent:
        transport.tracker.feed(report_frame(handle, r))
    transport.tracker.feed(f.completed(handle, completed))
    transport.tracker.feed(f.disconnected(handle, reason=0x15))
    host.close()
    assert wait_for(lambda: transport.link.host is None, 10.0)


def type_a_and_lose_its_release(transport: ClassicTransport, link: HidLink) -> None:
    """A host on ACL ``H`` gets "a" pressed and released; the link goes with only the press completed."""
    first = Host(link, H)
    assert link.wait_ready(1.0)
    for r in (A, ALL_KEYS_UP):
        transport.send(r)
    first.received()
    lose_link(transport, first, H, [A, ALL_KEYS_UP], completed=1)


def test_what_the_link_lost_goes_again_first_on_the_next_connection_and_nothing_else_twice(link):
    transport = transport_on(link)
    first = Host(link, H)
    assert link.wait_ready(1.0)
    sent = [A, ALL_KEYS_UP, B, ALL_KEYS_UP]
    for r in sent:
        transport.send(r)
    assert first.received() == sent, "the socket took all four"
    lose_link(transport, first, H, sent, completed=2)
    with pytest.raises(HostDisconnected):
        transport.send(C)
    assert transport.resent == 0 and transport.tracker.pending == 0, "nothing taken: the typist keeps C"
    second = Host(link, H2)
    assert link.wait_ready(1.0)
    transport.send(C)
    assert second.received() == [B, ALL_KEYS_UP, C]
    assert transport.resent == 2
    transport.tracker.feed(f.acl_connected(H2))
    for r in (B, ALL_KEYS_UP, C):
        transport.tracker.feed(report_frame(H2, r))
    transport.tracker.feed(f.completed(H2, 3))
    assert transport.tracker.trusted and transport.tracker.pending == 0, "the new channel's frames are followed"
    transport.close()


def test_a_host_back_while_nothing_is_typed_still_gets_what_it_missed(link):
    transport = transport_on(link)
    type_a_and_lose_its_release(transport, link)
    second = Host(link, H2)
    transport.host_changed(HOST, True)    # the keyboard wires the link's on_change to this
    assert wait_for(lambda: transport.resent == 1, 10.0)
    assert second.received() == [ALL_KEYS_UP]
    transport.close()


def test_without_the_channel_ids_nothing_is_tracked_and_nothing_sent_twice(link):
    transport = transport_on(link)
    host = HostEnds(link)                   # socket pairs: the kernel tells no ACL handle
    assert link.wait_ready(1.0)
    transport.send(A)
    assert not transport.tracker.trusted and transport.tracker.pending == 0
    transport.tracker.feed(f.disconnected(H))
    host.close()
    assert wait_for(lambda: link.host is None, 10.0)
    again = HostEnds(link)
    assert link.wait_ready(1.0)
    transport.send(ALL_KEYS_UP)
    assert again.intr.recv(64) == b"\xa1" + ALL_KEYS_UP and transport.resent == 0
    transport.close()


def test_the_typist_types_through_a_lost_link_exactly_once(link):
    """The typist's view: the link goes with the last two reports ("b" and the release) not completed, after
    the typist finished; on the next connection the host gets exactly those two, once."""
    transport = transport_on(link)
    first = Host(link, H)
    assert link.wait_ready(1.0)
    typist = Typist(transport, layout="us", key_delay_s=0.0, retry_interval_s=0.05)
    try:
        typist.type_text("ab")
        assert typist.wait_idle(5.0)
        sent = first.received()
        assert sent == [A, B, ALL_KEYS_UP]
        lose_link(transport, first, H, sent, completed=1)   # "b" and the release never arrived
        second = Host(link, H2)
        transport.host_changed(HOST, True)
        assert wait_for(lambda: transport.resent == 2, 10.0)
        assert second.received() == [B, ALL_KEYS_UP]
    finally:
        typist.close()


def test_with_nothing_left_to_type_the_keyboard_reconnects_for_what_the_link_lost():
    """The link goes after the typist finished, with the last report not completed: the keyboard brings the host
    back by itself (as it does for text) and sends that report, once."""
    transports: list[ClassicTransport] = []
    link = HidLink("00:AA:01:00:00:23", settle_s=0.05,
                   on_change=lambda a, c: [t.host_changed(a, c) for t in transports]).start(listeners=[])
    later: list[Host] = []

    class Reconnecting(FakeLink):
        def connect(self, address: str) -> bool:
            self.connects.append(address)
            later.append(Host(self.real, H2))
            return True

    fake = Reconnecting(link)
    transport = ClassicTransport(fake, reconnect_target=lambda: HOST, min_interval_s=0.0, retry_interval_s=0.1,
                                 monitor=FakeMonitor(DeliveryTracker(0, InterruptChannel())))
    transports.append(transport)
    try:
        type_a_and_lose_its_release(transport, link)
        assert wait_for(lambda: transport.resent == 1, 3.0)
        assert fake.connects == [HOST] and later[0].received() == [ALL_KEYS_UP]
        assert transport.resent == 1
    finally:
        transport.close()

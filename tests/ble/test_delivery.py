"""Delivery tracking: which keyboard reports the controller sent before the link went down (sttkb.gadget.ble.delivery).

Fed with HCI monitor frames built in tests/ble/hci_frames.py (the sandbox kernel has no Bluetooth); the qemu VM
test runs the same tracker on a real kernel with real bluetoothd and asserts the host's text comes out whole.
"""

from __future__ import annotations

import socket
import time

from sttkb.gadget.ble.delivery import DeliveryTracker, att_notification_values, att_pdu
from sttkb.gadget.ble.hci_monitor import HciMonitor, adapter_index
from sttkb.gadget.reports import ALL_KEYS_UP, key_report
from tests.ble import hci_frames as f

H, ALT = 0x002A, 0x0040
A, B, C, D = (key_report(0, k) for k in (4, 5, 6, 7))


def tracker_with(*reports: bytes) -> DeliveryTracker:
    t = DeliveryTracker(0)
    for r in reports:
        t.handed_over(r)
    return t


def feed(t: DeliveryTracker, *frames: bytes) -> None:
    for fr in frames:
        t.feed(fr)


def test_reports_the_controller_completed_are_not_lost():
    t = tracker_with(A, ALL_KEYS_UP, B)
    feed(t, f.notification(H, A), f.notification(H, ALL_KEYS_UP), f.notification(H, B), f.completed(H, 3))
    assert t.pending == 0 and t.completed_reports == 3
    feed(t, f.disconnected(H))
    assert t.take_lost() == []


def test_link_down_loses_what_was_in_flight_and_what_never_left_in_order():
    t = tracker_with(A, ALL_KEYS_UP, B, ALL_KEYS_UP, C)
    feed(t, f.notification(H, A), f.notification(H, ALL_KEYS_UP), f.notification(H, B), f.completed(H, 2))
    assert t.take_lost() == [], "nothing is lost while the link is up"
    feed(t, f.disconnected(H))
    assert t.take_lost() == [B, ALL_KEYS_UP, C]
    assert t.take_lost() == [], "taken once"


def test_reports_handed_over_after_the_link_went_are_lost_when_the_next_link_comes():
    # The VM case: bluetoothd takes reports for a few hundred ms after the link is gone.
    t = tracker_with(A)
    feed(t, f.notification(H, A), f.completed(H), f.disconnected(H))
    t.handed_over(B)
    t.handed_over(ALL_KEYS_UP)
    assert t.take_lost() == [], "not known lost before a new link shows they never went out"
    feed(t, f.connected(ALT))
    assert t.take_lost() == [B, ALL_KEYS_UP]


def test_bluetoothds_resend_of_the_last_value_on_reconnect_is_not_a_report_of_ours():
    t = tracker_with(A)
    feed(t, f.notification(H, A), f.completed(H), f.disconnected(H))
    t.handed_over(ALL_KEYS_UP)
    feed(t, f.connected(ALT), f.notification(ALT, ALL_KEYS_UP), f.completed(ALT))
    assert t.trusted
    assert t.take_lost() == [ALL_KEYS_UP]
    t.handed_over(C)
    feed(t, f.notification(ALT, C), f.completed(ALT))
    assert t.pending == 0 and t.trusted


def test_another_hosts_link_coming_and_going_loses_nothing():
    # A stranger connects while the host types and is turned away: the host's reports are not lost by that.
    t = tracker_with(A)
    feed(t, f.notification(H, A), f.completed(H))
    t.handed_over(B)
    feed(t, f.connected(ALT), f.acl_tx(ALT, f.att(bytes([0x01, 0x10, 0x00, 0x00, 0x05]))), f.disconnected(ALT),
         f.notification(H, B), f.completed(H))
    assert t.pending == 0 and t.take_lost() == []


def test_combined_notifications_complete_together():
    t = tracker_with(A, ALL_KEYS_UP, B)
    feed(t, f.multi_notification(H, [A, ALL_KEYS_UP]), f.notification(H, B), f.completed(H, 1))
    assert t.pending == 1
    assert t.combined_reports == 2, "counted: BlueZ hosts before 5.67 ignore them"
    feed(t, f.disconnected(H))
    assert t.take_lost() == [B]


def test_a_frame_split_over_acl_packets_counts_when_its_last_packet_completes():
    t = tracker_with(A)
    pdu = f.att(bytes([0x1B, 0x12, 0x00]) + A)
    feed(t, f.acl_tx(H, pdu[:6]), f.acl_tx(H, pdu[6:], continuation=True), f.completed(H, 1))
    assert t.pending == 1, "only the first fragment went"
    feed(t, f.completed(H, 1))
    assert t.pending == 0


def test_other_controllers_battery_and_other_channels_are_ignored():
    t = tracker_with(A)
    feed(t, f.notification(H, A, index=1), f.completed(H, 1, index=1),
         f.notification(H, b"\x64", att_handle=0x0030),
         f.acl_tx(H, f.att(bytes([0x1B, 0x12, 0x00]) + A, cid=0x0005)))
    assert t.pending == 1 and t.trusted
    feed(t, f.notification(H, A), f.completed(H, 3))
    assert t.pending == 0


def test_reports_on_an_enhanced_att_bearer_count_too():
    t = tracker_with(A, B)
    feed(t, f.acl_tx(H, f.eatt(bytes([0x1B, 0x12, 0x00]) + A, cid=0x0041)), f.notification(H, B), f.completed(H, 2))
    assert t.pending == 0 and t.trusted


def test_without_any_completion_seen_nothing_is_claimed_lost():
    # Reports the monitor never saw go out (another bearer, a monitor opened too late): re-sending them could type
    # them twice, so the tracker claims nothing.
    t = tracker_with(A, B)
    feed(t, f.disconnected(H))
    assert t.take_lost() == []


def test_a_value_out_of_step_stops_tracking_until_the_next_connection():
    t = tracker_with(A, B)
    feed(t, f.notification(H, A), f.completed(H), f.notification(H, C))
    assert not t.trusted
    feed(t, f.disconnected(H))
    assert t.take_lost() == []
    t.handed_over(D)
    assert t.pending == 0
    # The next connection starts afresh: nothing from before is pending, and tracking works again.
    feed(t, f.connected(ALT))
    assert t.trusted
    t.handed_over(A)
    t.handed_over(B)
    feed(t, f.notification(ALT, A), f.completed(ALT), f.disconnected(ALT))
    assert t.take_lost() == [B]


def test_withdraw_undoes_a_report_bluetoothd_did_not_take():
    t = tracker_with(A)
    t.handed_over(B)
    t.withdraw(B)
    assert t.pending == 1


def test_att_values_of_notifications_only():
    def values(frame: bytes) -> list[bytes]:
        return att_notification_values(att_pdu(frame))
    assert values(f.att(bytes([0x1B, 0x12, 0x00]) + A)) == [A]
    assert values(f.eatt(bytes([0x1B, 0x12, 0x00]) + A, cid=0x0040)) == [A]
    assert values(f.att(bytes([0x23]) + bytes([0x12, 0, 8, 0]) + A + bytes([0x30, 0, 1, 0, 0x64]))) == [A, b"\x64"]
    assert values(f.att(bytes([0x1D, 0x12, 0x00]) + A)) == [], "indications are not reports"
    assert values(f.att(bytes([0x1B, 0x12, 0x00]) + A, cid=0x0040)) == [], "a dynamic channel frame without SDU length"
    assert values(b"\x01") == []


def test_the_monitor_reader_feeds_frames_as_the_kernel_queues_them():
    # A SOCK_SEQPACKET pair stands in for the kernel's monitor socket (one frame per read, as there).
    kernel, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monitor = HciMonitor(ours.detach(), DeliveryTracker(0))
    try:
        monitor.tracker.handed_over(A)
        kernel.send(f.notification(H, A))
        kernel.send(f.completed(H))
        assert monitor.sync()
        assert monitor.tracker.pending == 0, "sync() feeds everything queued so far"
        monitor.tracker.handed_over(B)
        kernel.send(f.notification(H, B))
        kernel.send(f.disconnected(H))
        deadline = time.monotonic() + 5
        while monitor.tracker.pending and time.monotonic() < deadline:  # the reader thread, without sync()
            time.sleep(0.02)
        assert monitor.tracker.take_lost() == [B]
    finally:
        monitor.close()
        kernel.close()
    assert monitor.sync() is False, "closed"
    assert (adapter_index("hci1"), adapter_index("00:11:22:33:44:55")) == (1, None)


def test_a_report_not_taken_is_withdrawn_even_when_its_link_went_down_meanwhile():
    # The link goes while the report is being handed over and the hand-over fails: the caller keeps the report
    # (the typist retries it), so it must not also come back as lost — that would type it twice.
    t = tracker_with(A)
    feed(t, f.notification(H, A), f.completed(H))
    t.handed_over(B)
    feed(t, f.disconnected(H), f.connected(ALT))
    t.withdraw(B)
    assert t.take_lost() == [] and t.pending == 0

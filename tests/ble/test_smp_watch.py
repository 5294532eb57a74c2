"""SmpWatch: is the pairing under way LE Secure Connections? Fed with HCI monitor frames built from the Core
specification's SMP layouts (the sandbox kernel has no Bluetooth); tests/ble/test_passkey_vm.py runs it on a real
kernel's monitor with a Secure Connections host and a legacy one."""

from __future__ import annotations

import struct

from sttkb.gadget.ble.smp_watch import MON_ACL_RX_PKT, SmpWatch
from tests.ble.hci_frames import acl_tx, att, frame, notification

KEYBOARD_DISPLAY, KEYBOARD_ONLY = 0x04, 0x02
BONDING, MITM, SC = 0x01, 0x04, 0x08


def smp(code: int, io_cap: int, auth_req: int) -> bytes:
    """An SMP Pairing Request (1) / Response (2) as an L2CAP frame on channel 6."""
    pdu = bytes([code, io_cap, 0x00, auth_req, 16, 0x07, 0x07])
    return struct.pack("<HH", len(pdu), 0x0006) + pdu


def from_host(handle: int, l2cap: bytes, index: int = 0) -> bytes:
    return frame(MON_ACL_RX_PKT, struct.pack("<HH", handle, len(l2cap)) + l2cap, index)


def exchange(watch: SmpWatch, host_auth: int, box_auth: int, handle: int = 0x40) -> None:
    watch.feed(from_host(handle, smp(1, KEYBOARD_DISPLAY, host_auth)))
    watch.feed(acl_tx(handle, smp(2, KEYBOARD_ONLY, box_auth)))


def test_both_sides_set_sc_means_secure_connections():
    watch = SmpWatch(0)
    assert watch.secure_connections() is None, "nothing seen yet: cannot tell"
    exchange(watch, BONDING | MITM | SC, BONDING | MITM | SC)
    assert watch.secure_connections() is True


def test_a_host_without_sc_means_legacy_pairing():
    watch = SmpWatch(0)
    exchange(watch, BONDING | MITM, BONDING | MITM | SC)
    assert watch.secure_connections() is False


def test_only_the_newest_pairing_counts_and_a_new_request_starts_over():
    watch = SmpWatch(0)
    exchange(watch, BONDING | MITM, BONDING | MITM | SC, handle=0x40)
    exchange(watch, BONDING | MITM | SC, BONDING | MITM | SC, handle=0x41)
    assert watch.secure_connections() is True
    watch.feed(from_host(0x41, smp(1, KEYBOARD_DISPLAY, BONDING | MITM | SC)))
    assert watch.secure_connections() is None, "a request without its response yet"


def test_other_traffic_other_controllers_and_lost_frames():
    watch = SmpWatch(1)
    exchange(watch, BONDING | SC, BONDING | SC)   # controller 0: not ours
    watch.feed(notification(0x40, bytes(8), index=1))
    watch.feed(from_host(0x40, att(b"\x0a\x03\x00"), index=1))   # an ATT read, not SMP
    assert watch.secure_connections() is None
    watch.feed(from_host(0x40, smp(1, KEYBOARD_DISPLAY, BONDING | MITM | SC), index=1))
    watch.feed(acl_tx(0x40, smp(2, KEYBOARD_ONLY, BONDING | MITM | SC), index=1))
    assert watch.secure_connections() is True
    watch.distrust("ENOBUFS")
    assert watch.secure_connections() is None, "frames were lost: prove nothing"

"""HCI monitor frames as the kernel writes them (header: opcode, controller index, length; then the HCI packet),
built from the Bluetooth Core specification's layouts, and a stand-in for the monitor reader. The sandbox kernel has
no Bluetooth, so the unit tests of delivery tracking (BLE and Classic) feed these; the qemu VM tests
(test_ble_vm.py, tests/bt_classic/test_classic_vm.py) run the same code on a real kernel's monitor."""

from __future__ import annotations

import struct

from sttkb.gadget.ble.delivery import MON_ACL_TX_PKT, MON_EVENT_PKT, MON_HEADER, DeliveryTracker


def frame(opcode: int, payload: bytes, index: int = 0) -> bytes:
    return MON_HEADER.pack(opcode, index, len(payload)) + payload


def acl_tx(handle: int, l2cap_chunk: bytes, *, continuation: bool = False, index: int = 0) -> bytes:
    flags = 0x1 if continuation else 0x0
    return frame(MON_ACL_TX_PKT, struct.pack("<HH", handle | flags << 12, len(l2cap_chunk)) + l2cap_chunk, index)


def l2cap(payload: bytes, cid: int) -> bytes:
    """A basic-mode L2CAP frame: length, channel ID, payload."""
    return struct.pack("<HH", len(payload), cid) + payload


def att(pdu: bytes, cid: int = 0x0004) -> bytes:
    return l2cap(pdu, cid)


def eatt(pdu: bytes, cid: int = 0x0040) -> bytes:
    """An Enhanced ATT bearer frame (LE credit-based channel) holding one whole SDU: SDU length, then the PDU."""
    return struct.pack("<HHH", len(pdu) + 2, cid, len(pdu)) + pdu


def notification(handle: int, value: bytes, *, att_handle: int = 0x0012, index: int = 0) -> bytes:
    return acl_tx(handle, att(bytes([0x1B]) + struct.pack("<H", att_handle) + value), index=index)


def multi_notification(handle: int, values: list[bytes], *, att_handle: int = 0x0012) -> bytes:
    body = b"".join(struct.pack("<HH", att_handle, len(v)) + v for v in values)
    return acl_tx(handle, att(bytes([0x23]) + body))


def completed(handle: int, count: int = 1, index: int = 0) -> bytes:
    return frame(MON_EVENT_PKT, bytes([0x13, 5, 1]) + struct.pack("<HH", handle, count), index)


def disconnected(handle: int, reason: int = 0x13, index: int = 0) -> bytes:
    return frame(MON_EVENT_PKT, bytes([0x05, 4, 0]) + struct.pack("<H", handle) + bytes([reason]), index)


def connected(handle: int, index: int = 0) -> bytes:
    """LE Connection Complete (status 0), peripheral role, a public peer address."""
    params = bytes([0x01, 0x00]) + struct.pack("<H", handle) + bytes([0x01, 0x00]) + bytes(6) + bytes(7)
    return frame(MON_EVENT_PKT, bytes([0x3E, len(params)]) + params, index)


def acl_connected(handle: int, index: int = 0) -> bytes:
    """BR/EDR Connection Complete (status 0) of an ACL link, encryption off."""
    params = bytes([0x00]) + struct.pack("<H", handle) + bytes(6) + bytes([0x01, 0x00])
    return frame(MON_EVENT_PKT, bytes([0x03, len(params)]) + params, index)


class FakeMonitor:
    """What a transport needs of :class:`sttkb.gadget.ble.hci_monitor.HciMonitor`: a real tracker, fed by the test."""

    def __init__(self, tracker: DeliveryTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else DeliveryTracker(0)
        self.closed = False

    def sync(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

"""Is a host in range and answering pages? One HCI Remote Name Request on a raw HCI socket, before the keyboard
opens L2CAP channels to it.

Why not just connect and see: on the Debian 6.1 kernel (6.1.0-57), closing an L2CAP socket whose BR/EDR
connection failed because the host did not answer the page ("Host is down") oopses the kernel (list corruption
in ``hci_chan_del``, docs/bluetooth.md). A name request pages the host the same way but leaves no L2CAP channel
behind when it fails, so the keyboard only connects to a host that just answered. (A host that vanishes in the
moment between the two is still possible; the window is milliseconds instead of every retry.)

Needs CAP_NET_RAW (sttkb.service grants it). Linux only.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import socket
import struct
import time

from sttkb.gadget.ble.hci_monitor import BTPROTO_HCI, SockaddrHci
from sttkb.gadget.bt_classic.l2cap import AF_BLUETOOTH, _bdaddr

log = logging.getLogger(__name__)

HCI_CHANNEL_RAW = 0
SOL_HCI = 0
HCI_FILTER = 2
HCI_COMMAND_PKT = 0x01
HCI_EVENT_PKT = 0x04
OP_REMOTE_NAME_REQUEST = 0x0419
EVT_REMOTE_NAME_COMPLETE = 0x07
EVT_COMMAND_STATUS = 0x0F
PAGE_SCAN_REPETITION_R2 = 0x02


_libc = ctypes.CDLL(None, use_errno=True)


def name_request(address: str) -> bytes:
    """The HCI command packet: Remote Name Request for ``address`` (page scan repetition R2, no clock offset)."""
    params = _bdaddr(address) + bytes([PAGE_SCAN_REPETITION_R2, 0]) + struct.pack("<H", 0)
    return struct.pack("<BHB", HCI_COMMAND_PKT, OP_REMOTE_NAME_REQUEST, len(params)) + params


def parse_event(packet: bytes, address: str) -> bool | None:
    """What one event packet says about our request: True (the host answered), False (it did not, or the
    controller refused the command), None (not about our request)."""
    if len(packet) < 3 or packet[0] != HCI_EVENT_PKT:
        return None
    code, body = packet[1], packet[3:3 + packet[2]]
    if code == EVT_COMMAND_STATUS and len(body) >= 4:
        status, _ncmd, opcode = struct.unpack_from("<BBH", body)
        if opcode == OP_REMOTE_NAME_REQUEST and status != 0:
            return False
    elif code == EVT_REMOTE_NAME_COMPLETE and len(body) >= 7 and body[1:7] == _bdaddr(address):
        return body[0] == 0
    return None


def host_answers_page(adapter_index: int, address: str, timeout_s: float = 12.0) -> bool | None:
    """Page ``address`` from controller ``adapter_index`` (hci0 = 0) with a name request: True if it answered,
    False if not (or no answer within ``timeout_s``), None if the check cannot be made (no CAP_NET_RAW, no such
    controller)."""
    try:
        sock = socket.socket(AF_BLUETOOTH, socket.SOCK_RAW, BTPROTO_HCI)
    except OSError as e:
        log.warning("cannot open an HCI socket to check whether %s is in range: %s", address, e)
        return None
    try:
        sa = SockaddrHci(AF_BLUETOOTH, adapter_index, HCI_CHANNEL_RAW)
        if _libc.bind(sock.fileno(), ctypes.byref(sa), ctypes.sizeof(sa)) < 0:
            log.warning("cannot bind an HCI socket to hci%d: %s", adapter_index, os.strerror(ctypes.get_errno()))
            return None
        events = (1 << EVT_REMOTE_NAME_COMPLETE) | (1 << EVT_COMMAND_STATUS)
        sock.setsockopt(SOL_HCI, HCI_FILTER, struct.pack("<IIIH2x", 1 << HCI_EVENT_PKT, events, 0, 0))
        sock.send(name_request(address))
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            answer = parse_event(sock.recv(512), address)
            if answer is not None:
                return answer
        return False
    except OSError as e:
        log.warning("cannot page %s to check whether it is in range (CAP_NET_RAW?): %s", address, e)
        return None
    finally:
        sock.close()

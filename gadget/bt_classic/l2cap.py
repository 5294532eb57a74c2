"""L2CAP sockets on BR/EDR (the HID control and interrupt channels), with the addresses done through libc.

Python's socket module handles Bluetooth addresses only when it was built with the Bluetooth headers; Debian's
python3 is, but a Python built without them (pyenv, some venvs) cannot bind or connect an AF_BLUETOOTH socket at
all ("bad family"). So :func:`listen`, :func:`accept` and :func:`connect` pass ``struct sockaddr_l2`` to libc
themselves, and hand back ordinary :class:`socket.socket` objects (send, recv, timeouts, close work on any
family). Linux only; the kernel's Bluetooth stack does the rest.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
import sys
import time

AF_BLUETOOTH = 31
BTPROTO_L2CAP = 0
SOL_L2CAP = 6
L2CAP_CONNINFO = 0x02
SOL_BLUETOOTH = 274
BT_SECURITY = 4
BDADDR_BREDR = 0x00

SECURITY_LOW = 1
"""No encryption (SDP-like services only)."""
SECURITY_MEDIUM = 2
"""Encrypted with a bonded key (a Just Works key counts): what the HID profile asks of keyboards."""
SECURITY_HIGH = 3
"""Encrypted with an authenticated (MITM-protected) key: a passkey bond."""


class _SockaddrL2(ctypes.Structure):
    _fields_ = [("l2_family", ctypes.c_ushort), ("l2_psm", ctypes.c_ushort), ("l2_bdaddr", ctypes.c_ubyte * 6),
                ("l2_cid", ctypes.c_ushort), ("l2_bdaddr_type", ctypes.c_ubyte)]


_libc = ctypes.CDLL(None, use_errno=True)


def _bdaddr(address: str) -> bytes:
    """'AA:BB:CC:DD:EE:FF' -> the six bytes in the kernel's order (least significant first)."""
    parts = address.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a Bluetooth address: {address!r}")
    return bytes(int(p, 16) for p in reversed(parts))


def bd_address(raw: bytes) -> str:
    """The kernel's six bytes (least significant first) -> 'AA:BB:CC:DD:EE:FF', as BlueZ writes addresses."""
    return ":".join(f"{b:02X}" for b in reversed(raw))


def _sockaddr(address: str, psm: int) -> _SockaddrL2:
    sa = _SockaddrL2()
    sa.l2_family = AF_BLUETOOTH
    sa.l2_psm = int.from_bytes(psm.to_bytes(2, "little"), sys.byteorder)  # the kernel wants little-endian
    sa.l2_bdaddr[:] = list(_bdaddr(address))
    sa.l2_bdaddr_type = BDADDR_BREDR
    return sa


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def new_socket(security: int = SECURITY_MEDIUM) -> socket.socket:
    """An L2CAP SOCK_SEQPACKET socket (one message per send/recv) with ``security``."""
    sock = socket.socket(AF_BLUETOOTH, socket.SOCK_SEQPACKET, BTPROTO_L2CAP)
    try:
        sock.setsockopt(SOL_BLUETOOTH, BT_SECURITY, struct.pack("BB", security, 0))
    except OSError:
        sock.close()
        raise
    return sock


def listen(address: str, psm: int, *, security: int = SECURITY_MEDIUM, backlog: int = 1) -> socket.socket:
    """A listening socket on PSM ``psm`` of the adapter with ``address`` ('00:00:00:00:00:00' = every adapter).
    EADDRINUSE: someone else (bluetoothd's input plugin) already listens there."""
    sock = new_socket(security)
    try:
        sa = _sockaddr(address, psm)
        _check(_libc.bind(sock.fileno(), ctypes.byref(sa), ctypes.sizeof(sa)), f"bind PSM 0x{psm:02x} on {address}")
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def accept(listener: socket.socket) -> tuple[socket.socket, str]:
    """Accept one connection (the listener must be readable); returns (socket, peer address)."""
    sa = _SockaddrL2()
    size = ctypes.c_uint(ctypes.sizeof(sa))
    fd = _check(_libc.accept4(listener.fileno(), ctypes.byref(sa), ctypes.byref(size), os.O_CLOEXEC), "accept")
    sock = socket.socket(AF_BLUETOOTH, socket.SOCK_SEQPACKET, BTPROTO_L2CAP, fileno=fd)
    return sock, bd_address(bytes(sa.l2_bdaddr))


def connect(address: str, psm: int, *, source: str = "00:00:00:00:00:00", security: int = SECURITY_MEDIUM,
            timeout: float = 15.0) -> socket.socket:
    """Connect to PSM ``psm`` of ``address`` from the adapter ``source`` within ``timeout`` seconds (the kernel
    pages the host and sets up encryption with the bonded key first)."""
    sock = new_socket(security)
    try:
        src = _sockaddr(source, 0)
        _check(_libc.bind(sock.fileno(), ctypes.byref(src), ctypes.sizeof(src)), f"bind to {source}")
        sock.setblocking(False)
        dst = _sockaddr(address, psm)
        if _libc.connect(sock.fileno(), ctypes.byref(dst), ctypes.sizeof(dst)) < 0:
            err = ctypes.get_errno()
            if err not in (errno.EINPROGRESS, errno.EAGAIN):
                raise OSError(err, f"connect to {address} PSM 0x{psm:02x}: {os.strerror(err)}")
            deadline = time.monotonic() + timeout
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLOUT)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(errno.ETIMEDOUT, f"connect to {address} PSM 0x{psm:02x}: no answer in "
                                                        f"{timeout:g} s")
                if poller.poll(left * 1000):
                    break
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect to {address} PSM 0x{psm:02x}: {os.strerror(err)}")
        sock.setblocking(True)
    except OSError:
        sock.close()
        raise
    return sock


def channel_ids(sock: socket.socket) -> tuple[int, int] | None:
    """(ACL connection handle, the peer's channel ID) of a connected L2CAP socket: where its messages go in the
    HCI monitor's ACL packets. None when the kernel does not tell (not an L2CAP socket, not connected)."""
    sa = _SockaddrL2()
    size = ctypes.c_uint(ctypes.sizeof(sa))
    try:
        info = sock.getsockopt(SOL_L2CAP, L2CAP_CONNINFO, 6)   # struct l2cap_conninfo: hci_handle, dev_class
    except OSError:
        return None
    if len(info) < 2 or _libc.getpeername(sock.fileno(), ctypes.byref(sa), ctypes.byref(size)) < 0:
        return None
    if sa.l2_family != AF_BLUETOOTH:
        return None
    return struct.unpack_from("<H", info)[0], int.from_bytes(sa.l2_cid.to_bytes(2, sys.byteorder), "little")

"""The kernel's HCI monitor channel (what btmon reads), feeding a :class:`~sttkb.gadget.ble.delivery.DeliveryTracker`
(for the BLE and the Bluetooth Classic keyboard alike) or the SMP watch.

Needs CAP_NET_RAW (sttkb.service grants it; root has it). :func:`open_monitor` returns None, with the reason logged,
where the channel cannot be opened (no Bluetooth in the kernel, no capability): typing then works as before,
without sending again the reports a dropped link lost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import select
import socket
import threading
from typing import Any, Callable

from sttkb.gadget.ble.delivery import DeliveryTracker

log = logging.getLogger(__name__)

AF_BLUETOOTH = 31
BTPROTO_HCI = 1
HCI_DEV_NONE = 0xFFFF
HCI_CHANNEL_MONITOR = 2
BATCH_S = 0.1


class SockaddrHci(ctypes.Structure):
    """The kernel's ``struct sockaddr_hci``: an HCI socket's address (controller index and channel), to bind through
    libc (also :mod:`sttkb.gadget.bt_classic.page`'s raw channel)."""
    _fields_ = [("family", ctypes.c_ushort), ("dev", ctypes.c_ushort), ("channel", ctypes.c_ushort)]


def adapter_index(name: str) -> int | None:
    """The kernel's controller index of a BlueZ adapter name: hci0 -> 0; None for anything else."""
    return int(name[3:]) if name.startswith("hci") and name[3:].isdigit() else None


class HciMonitor:
    """Reads the monitor channel on its own thread and feeds ``tracker``; :meth:`sync` catches up at once."""

    def __init__(self, fd: int, tracker: Any) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        self.tracker = tracker
        self._read_lock = threading.Lock()
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="hci-monitor", daemon=True)
        self._thread.start()

    def sync(self) -> bool:
        """Feed everything the kernel has queued so far (the kernel queues monitor frames as it sends and
        receives, so after this the tracker knows every disconnect that bluetoothd could have told us about).
        False once the socket failed (the tracker then claims nothing lost) or was closed."""
        with self._read_lock:
            while self._fd >= 0:
                try:
                    frame = os.read(self._fd, 65536)
                except BlockingIOError:
                    return True
                except OSError as e:
                    # ENOBUFS: the kernel dropped frames for us, so the count is no longer exact.
                    self.tracker.distrust(f"HCI monitor: {e.strerror}")
                    return e.errno == errno.ENOBUFS
                self.tracker.feed(frame)
            return False

    def _run(self) -> None:
        """Drain in batches: one wake-up per BATCH_S at most, not one per HCI frame (sync() catches up anyway
        before each report; this thread only keeps the socket's buffer from overflowing)."""
        while True:
            try:
                ready, _, _ = select.select([self._fd, self._stop_r], [], [])
                if self._stop_r not in ready:
                    ready, _, _ = select.select([self._stop_r], [], [], BATCH_S)
            except (OSError, ValueError):
                return
            if self._stop_r in ready or not self.sync():
                return

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(2.0)
        with self._read_lock:  # not under a sync() in the typist's thread
            os.close(self._fd)
            self._fd = -1
        os.close(self._stop_r)
        os.close(self._stop_w)


def open_monitor(adapter: str, reader: Callable[[int], Any] = DeliveryTracker,
                 purpose: str = "delivery tracking") -> HciMonitor | None:
    """A running monitor for ``adapter`` (BlueZ's name, hciN) feeding ``reader(index)`` (anything with ``feed(frame)``
    and ``distrust(why)``: the delivery tracker, :class:`sttkb.gadget.ble.smp_watch.SmpWatch`), or None if the
    kernel's monitor is out of reach (``purpose`` names what is then missing, in the log)."""
    index = adapter_index(adapter)
    if index is None:
        log.info("no %s (adapter %r is not named hciN)", purpose, adapter)
        return None
    # Through libc: Python's socket module may be built without Bluetooth, and its bind() cannot name a channel.
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = libc.socket(AF_BLUETOOTH, socket.SOCK_RAW | socket.SOCK_CLOEXEC, BTPROTO_HCI)
    if fd < 0:
        log.info("no %s (no HCI socket: %s)", purpose, os.strerror(ctypes.get_errno()))
        return None
    addr = SockaddrHci(AF_BLUETOOTH, HCI_DEV_NONE, HCI_CHANNEL_MONITOR)
    if libc.bind(fd, ctypes.byref(addr), ctypes.sizeof(addr)) != 0:
        err = ctypes.get_errno()
        os.close(fd)
        log.info("no %s (HCI monitor channel: %s; it needs root or CAP_NET_RAW)", purpose, os.strerror(err))
        return None
    return HciMonitor(fd, reader(index))

"""The transports' side of delivery tracking, for the BLE and the Bluetooth Classic keyboard alike: the HCI monitor
(:class:`~sttkb.gadget.ble.hci_monitor.HciMonitor`, whose tracker knows which reports the link lost) and the reports
still to be sent again. A transport owns one, tells its tracker each report just before handing it over, and calls
:meth:`Resender.send_lost` before every report and when a host is back, under its own send lock
(:class:`ResendingTransport` has what both transports share).
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Callable

from sttkb.gadget.ble.delivery import DeliveryTracker
from sttkb.gadget.ble.hci_monitor import HciMonitor
from sttkb.gadget.errors import HostDisconnected

log = logging.getLogger(__name__)


class Resender:
    """``monitor`` None: no delivery tracking (nothing is ever sent again)."""

    def __init__(self, monitor: HciMonitor | None) -> None:
        self.monitor = monitor
        self._queue: collections.deque[bytes] = collections.deque()
        self.resent = 0
        """Reports sent again because the link went down before the controller sent them."""

    @property
    def tracker(self) -> DeliveryTracker | None:
        return self.monitor.tracker if self.monitor is not None else None

    def collect(self) -> bool:
        """Take what the tracker now knows lost into the queue; True when something waits to be sent again."""
        monitor = self.monitor
        if monitor is not None:
            monitor.sync()
            lost = monitor.tracker.take_lost()
            if lost:
                log.info("%d report(s) did not reach the host before the link went down; they go again first",
                         len(lost))
                self._queue.extend(lost)
        return bool(self._queue)

    def send_lost(self, send: Callable[[bytes], None]) -> None:
        """Send again with ``send``, oldest first, what the tracker says never left before the last link went
        down. A report whose ``send`` raises stays first in line for the next call."""
        self.collect()
        while self._queue:
            send(self._queue[0])
            self._queue.popleft()
            self.resent += 1

    def close(self) -> None:
        """Stop delivery tracking. Safe to call twice."""
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            monitor.close()


class ResendingTransport:
    """A transport's side of delivery tracking, for a class with ``_resender``, ``_lock`` (held while sending)
    and ``_send(report)`` (raises HostDisconnected when the report was not taken)."""

    _resender: Resender
    _lock: threading.Lock

    def _send(self, report: bytes) -> None:
        raise NotImplementedError

    @property
    def tracker(self) -> DeliveryTracker | None:
        """Which reports reached the host's radio (None without delivery tracking)."""
        return self._resender.tracker

    @property
    def resent(self) -> int:
        """Reports sent again because the link went down before the controller sent them."""
        return self._resender.resent

    def _send_missed(self) -> None:
        """A host is back: send what the last link lost, even when the typist has nothing more to type."""
        with self._lock:
            try:
                self._resender.send_lost(self._send)
            except HostDisconnected as e:
                log.info("host left again before it got the missed reports: %s", e)

"""ClassicTransport: the Transport protocol over a Bluetooth Classic HID link (:mod:`sttkb.gadget.bt_classic.link`).

``send()`` puts one report on the interrupt channel, at least ``min_interval_s`` after the previous one; with no
host connected it raises HostDisconnected (the report was not sent) and the typist pauses. A keyboard brings the
link back itself (HIDReconnectInitiate): while the typist waits for the host (``wait_ready`` with a timeout), the
transport reconnects to the host ``reconnect_target()`` names — the preferred or last bonded host — at most once
every ``retry_interval_s`` (the first time ``retry_interval_s`` after the link went down), on a thread of its own, as a real keyboard reconnects when a key is pressed.
``wait_ready(0)`` (a status poll) never starts a reconnection.

Delivery tracking (as the BLE transport's, with the same parts: :class:`~sttkb.gadget.ble.resend.Resender`, the
HCI monitor and :class:`~sttkb.gadget.ble.delivery.DeliveryTracker`, here reading the interrupt channel's frames,
:class:`~sttkb.gadget.bt_classic.interrupt.InterruptChannel`): an L2CAP send succeeds once the box's kernel has
queued the message, and what the kernel or the controller still held when the ACL link went down never arrives.
The controller's Number Of Completed Packets for the interrupt channel's ACL link say which did leave; the
others are sent again, oldest first, before anything else once a host is ready — also when the typist has
nothing more to type: then the keyboard reconnects for them itself, as for text, once the tracker knows them lost
(within ``LOSS_WATCH_S`` of the link going down). Without the monitor (no CAP_NET_RAW) typing works and lost reports
are not sent again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from sttkb.gadget.ble.hci_monitor import HciMonitor
from sttkb.gadget.ble.resend import Resender, ResendingTransport
from sttkb.gadget.bt_classic.interrupt import InterruptChannel
from sttkb.gadget.bt_classic.link import HidLink
from sttkb.gadget.errors import HostDisconnected

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL_S = 0.010
DEFAULT_RETRY_INTERVAL_S = 2.0
LOSS_WATCH_S = 10.0
"""How long after the host went the transport looks for reports that link lost (the ACL link's Disconnection
Complete can come seconds after the channels closed)."""


class ClassicTransport(ResendingTransport):
    """Reports go to the host connected on ``link`` (the transport starts nothing; it closes the link).

    ``monitor`` (optional: :func:`sttkb.gadget.ble.hci_monitor.open_monitor` with a tracker whose ``frames`` is an
    :class:`~sttkb.gadget.bt_classic.interrupt.InterruptChannel`) gives delivery tracking; the transport closes it.
    Call :meth:`host_changed` when the link's host comes or goes (the keyboard wires the link's ``on_change``)."""

    name = "bluetooth-classic"

    def __init__(self, link: HidLink, *, reconnect_target: Callable[[], str | None] = lambda: None,
                 min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
                 retry_interval_s: float = DEFAULT_RETRY_INTERVAL_S, monitor: HciMonitor | None = None) -> None:
        self.link = link
        self._resender = Resender(monitor)
        self._lock = threading.Lock()
        self.reconnect_target = reconnect_target
        self.min_interval_s = min_interval_s
        self.retry_interval_s = retry_interval_s
        self._next_at = 0.0
        self._last_attempt = -1e9
        self._reconnecting: threading.Thread | None = None
        self._closed = threading.Event()
        self.reconnects = 0
        """Reconnections this transport started (for status and tests)."""

    def wait_ready(self, timeout: float) -> bool:
        if self.link.wait_ready(0):
            return True
        if timeout <= 0:
            return False
        self.reconnect()
        return self.link.wait_ready(timeout)

    def reconnect(self, *, now: bool = False) -> bool:
        """Start connecting to the target host in the background, unless connected, already trying, or tried less
        than ``retry_interval_s`` ago (``now`` ignores that). True if an attempt was started."""
        if self.link.host is not None or (self._reconnecting is not None and self._reconnecting.is_alive()):
            return False
        since = time.monotonic() - max(self._last_attempt, getattr(self.link, "dropped_at", -1e9))
        if not now and since < self.retry_interval_s:
            return False   # also not right after a drop: a host that just left may still answer a page
        target = self.reconnect_target()
        if not target:
            return False
        self._last_attempt = time.monotonic()
        self.reconnects += 1
        log.info("reconnecting to %s over Bluetooth Classic", target)
        self._reconnecting = threading.Thread(target=self.link.connect, args=(target,), name="bt-classic-reconnect",
                                              daemon=True)
        self._reconnecting.start()
        return True

    def send(self, report: bytes) -> None:
        """Send one report (after any the last link lost); raise HostDisconnected if no host takes it."""
        with self._lock:
            self._resender.send_lost(self._send)
            self._send(report)

    def _send(self, report: bytes) -> None:
        now = time.monotonic()
        if self._next_at > now:
            time.sleep(self._next_at - now)
        tracker = self.tracker
        handed: list[bool] = []

        def hand_over(channel: tuple[int, int] | None) -> None:
            """Just before the kernel gets the report: tell the tracker which channel, then the report."""
            if tracker is None:
                return
            frames = tracker.frames
            if channel is None:
                tracker.distrust("the kernel does not tell the interrupt channel's ACL link")
                return
            if isinstance(frames, InterruptChannel) and frames.channel != channel:
                frames.use(*channel)
                tracker.expect_link(channel[0])
            tracker.handed_over(report)
            handed.append(True)

        try:
            self.link.send_input(report, before=hand_over)
        except HostDisconnected:
            if handed and tracker is not None:
                tracker.withdraw(report)
            raise
        self._next_at = time.monotonic() + self.min_interval_s

    def host_changed(self, address: str, connected: bool) -> None:
        """The link's host came or went. Came: once it is ready, send what the last link lost, even when the typist
        has nothing more to type. Went: if that link lost reports, bring a host back for them."""
        if self._resender.monitor is not None:
            threading.Thread(target=self._host_back if connected else self._watch_loss, daemon=True,
                             name="bt-classic-resend").start()

    def _host_back(self) -> None:
        if self.link.wait_ready(self.link.settle_s + 5.0):
            self._send_missed()

    def _watch_loss(self) -> None:
        """Reconnect (as the typist does while it waits) while reports the last link lost wait to be sent again
        and no host is there; they go once one is ready (:meth:`_host_back`)."""
        deadline = time.monotonic() + LOSS_WATCH_S
        while not self._closed.is_set() and self.link.host is None:
            with self._lock:
                waiting = self._resender.collect()
            if waiting:
                self.wait_ready(self.retry_interval_s)
            elif time.monotonic() > deadline or self._closed.wait(0.5):
                return

    def leds(self) -> int:
        return self.link.leds

    def close(self) -> None:
        """Close the link and stop delivery tracking."""
        self._closed.set()
        self.link.close()
        self._resender.close()

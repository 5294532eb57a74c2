"""ClassicTransport: the Transport protocol over a Bluetooth Classic HID link (:mod:`sttkb.gadget.bt_classic.link`).

``send()`` puts one report on the interrupt channel, at least ``min_interval_s`` after the previous one; with no
host connected it raises HostDisconnected (the report was not sent) and the typist pauses. A keyboard brings the
link back itself (HIDReconnectInitiate): while the typist waits for the host (``wait_ready`` with a timeout), the
transport reconnects to the host ``reconnect_target()`` names — the preferred or last bonded host — at most once
every ``retry_interval_s`` (the first time ``retry_interval_s`` after the link went down), on a thread of its own, as a real keyboard reconnects when a key is pressed.
``wait_ready(0)`` (a status poll) never starts a reconnection.

Limit: an L2CAP send succeeds once the box's kernel has queued the message. What the controller or the host
drops while the link goes down is not seen here (no delivery tracking yet, unlike the BLE transport).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from sttkb.gadget.bt_classic.link import HidLink

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL_S = 0.010
DEFAULT_RETRY_INTERVAL_S = 2.0


class ClassicTransport:
    """Reports go to the host connected on ``link`` (the transport starts nothing; it closes the link)."""

    name = "bluetooth-classic"

    def __init__(self, link: HidLink, *, reconnect_target: Callable[[], str | None] = lambda: None,
                 min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
                 retry_interval_s: float = DEFAULT_RETRY_INTERVAL_S) -> None:
        self.link = link
        self.reconnect_target = reconnect_target
        self.min_interval_s = min_interval_s
        self.retry_interval_s = retry_interval_s
        self._next_at = 0.0
        self._last_attempt = -1e9
        self._reconnecting: threading.Thread | None = None
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
        now = time.monotonic()
        if self._next_at > now:
            time.sleep(self._next_at - now)
        self.link.send_input(report)
        self._next_at = time.monotonic() + self.min_interval_s

    def leds(self) -> int:
        return self.link.leds

    def close(self) -> None:
        self.link.close()

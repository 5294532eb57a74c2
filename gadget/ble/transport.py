"""BleTransport: the Transport protocol over the BLE HID input report (notifications through bluetoothd).

``send()`` hands one 8-byte report to bluetoothd as an Input Report notification and paces reports at least
``min_interval_s`` apart; if no bonded host is connected and subscribed it raises HostDisconnected (the report
was not sent) and the typist pauses and resumes at that report once :meth:`wait_ready` says the host is back.

Notifications are not acknowledged: a report that bluetoothd accepted just before the link dropped may still be
lost in the air (see docs/bluetooth.md for what the VM test measured).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING

from gadget.ble.errors import BluetoothError
from gadget.errors import HostDisconnected

if TYPE_CHECKING:
    from gadget.ble.keyboard import BleKeyboard

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL_S = 0.010
"""Default gap between two notifications (seconds): about one 7.5-15 ms connection event each."""


class BleTransport:
    """Reports go to the bonded host subscribed to :class:`BleKeyboard`'s input report."""

    name = "bluetooth"

    def __init__(self, keyboard: "BleKeyboard", *, min_interval_s: float | None = None,
                 send_timeout_s: float = 2.0) -> None:
        """``min_interval_s`` defaults to the keyboard's [bluetooth] report_interval_ms."""
        self._kb = keyboard
        if min_interval_s is None:
            ms = getattr(keyboard.settings, "report_interval_ms", None)
            min_interval_s = ms / 1000.0 if ms is not None else DEFAULT_MIN_INTERVAL_S
        self.min_interval_s = min_interval_s
        self.send_timeout_s = send_timeout_s
        self._last_send = 0.0
        self._lock = threading.Lock()
        self.sent = 0

    def wait_ready(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a bonded host is connected and subscribed."""
        return self._kb.wait_ready(timeout)

    def send(self, report: bytes) -> None:
        """Notify one 8-byte report; raise HostDisconnected if no host listens (then it was NOT sent)."""
        if len(report) != 8:
            raise ValueError(f"a keyboard report has 8 bytes, got {len(report)}")
        with self._lock:
            wait = self._last_send + self.min_interval_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                sent = self._kb.run(self._kb.notify(report), self.send_timeout_s)
            except (FutureTimeout, BluetoothError) as e:
                raise HostDisconnected(f"Bluetooth keyboard not running ({e or 'timeout'})",
                                       reason="bluetooth-down") from e
            if not sent:
                raise HostDisconnected("no Bluetooth host is connected and listening; it resumes when the host "
                                       "reconnects (pair one with `sttkb bt pair`)", reason="disconnected")
            self._last_send = time.monotonic()
            self.sent += 1

    def leds(self) -> int:
        return self._kb.leds

    def close(self) -> None:
        """Nothing to release: the keyboard (GATT app) outlives its transports; BleKeyboard.close() ends it."""

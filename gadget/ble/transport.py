"""BleTransport: the Transport protocol over the BLE HID input report (notifications through bluetoothd).

``send()`` hands one report to bluetoothd as an Input Report notification and paces reports at least
``min_interval_s`` apart; if no bonded host is connected and subscribed it raises HostDisconnected (the report
was not sent) and the typist pauses and resumes at that report once :meth:`wait_ready` says the host is back.

Notifications are not acknowledged at the ATT layer, and the last reports before a link drops never arrive (still
in bluetoothd's or the kernel's queue, in the controller, or handed to bluetoothd after the link was gone). Where
the transport has delivery tracking (an :class:`~sttkb.gadget.ble.hci_monitor.HciMonitor` feeding a
:class:`~sttkb.gadget.ble.delivery.DeliveryTracker`: which reports the controller completed before the link went;
the transport owns both and is the only one to touch them), those reports are sent again, in order, before anything else once a
host is ready, also when the typist has nothing more to type. When the host vanishes, one all-keys-up report is
handed over regardless: bluetoothd keeps the last value it could not send and sends it when the host is back, and
that must not be a key press.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, Protocol

from sttkb.gadget.ble.errors import BluetoothError
from sttkb.gadget.ble.hci_monitor import HciMonitor
from sttkb.gadget.ble.resend import Resender, ResendingTransport
from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.reports import ALL_KEYS_UP, REPORT_LENGTH

log = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL_S = 0.010
"""Default gap between two notifications (seconds): about one 7.5-15 ms connection event each."""


class Peripheral(Protocol):
    """What the transport needs of :class:`sttkb.gadget.ble.peripheral.BlePeripheral`."""

    settings: object
    leds: int

    def send_report(self, report: bytes, *, unready: bool = False, timeout_s: float = 2.0) -> bool: ...
    def wait_ready(self, timeout: float) -> bool: ...
    def on_ready(self, callback: Callable[[], None]) -> None: ...
    def host_report_interval_s(self) -> float | None: ...
    def remove_on_ready(self, callback: Callable[[], None]) -> None: ...


class BleTransport(ResendingTransport):
    """Reports go to the bonded host subscribed to the peripheral's input report.

    ``monitor`` (optional, see :func:`sttkb.gadget.ble.hci_monitor.open_monitor`) gives delivery tracking; the
    transport closes it. ``min_interval_s`` defaults to the peripheral's [bluetooth] report_interval_ms; a host with
    its own slower pace (`sttkb bt pace`, kept in bluetooth.json) gets that instead.
    """

    name = "bluetooth"

    def __init__(self, peripheral: Peripheral, *, monitor: HciMonitor | None = None,
                 min_interval_s: float | None = None, send_timeout_s: float = 2.0) -> None:
        self._peripheral = peripheral
        self._resender = Resender(monitor)
        if min_interval_s is None:
            ms = getattr(peripheral.settings, "report_interval_ms", None)
            min_interval_s = ms / 1000.0 if ms is not None else DEFAULT_MIN_INTERVAL_S
        self.min_interval_s = min_interval_s
        self.send_timeout_s = send_timeout_s
        self._last_send = 0.0
        self._lock = threading.Lock()
        self._released_while_away = False
        self.sent = 0
        peripheral.on_ready(self._host_ready)

    def wait_ready(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a bonded host is connected and subscribed."""
        return self._peripheral.wait_ready(timeout)

    def send(self, report: bytes) -> None:
        """Notify one report; raise HostDisconnected if no host listens (then it was NOT sent)."""
        if len(report) != REPORT_LENGTH:
            raise ValueError(f"a keyboard report has {REPORT_LENGTH} bytes, got {len(report)}")
        with self._lock:
            self._resender.send_lost(self._send)
            self._send(report)
            self.sent += 1

    def interval_s(self) -> float:
        """The least time between two reports now: ``min_interval_s``, or the connected host's own slower pace."""
        own = self._peripheral.host_report_interval_s()
        return self.min_interval_s if own is None else max(self.min_interval_s, own)

    def _send(self, report: bytes) -> None:
        wait = self._last_send + self.interval_s() - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            sent = self._hand_over(report)
        except (FutureTimeout, BluetoothError) as e:
            raise HostDisconnected(f"Bluetooth keyboard not running ({e or 'timeout'})",
                                   reason="bluetooth-down") from e
        if not sent:
            self._release_while_away()
            raise HostDisconnected("no Bluetooth host is connected and listening; it resumes when the host "
                                   "reconnects (pair one with `sttkb bt pair`)", reason="disconnected")
        self._last_send = time.monotonic()
        self._released_while_away = False

    def _release_while_away(self) -> None:
        """Once per absence: all keys up, so the value bluetoothd keeps for the host's return is no key press."""
        if self._released_while_away:
            return
        self._released_while_away = True
        try:
            self._hand_over(ALL_KEYS_UP, unready=True)
        except (FutureTimeout, BluetoothError) as e:
            log.debug("all keys up for the absent host: %s", e)

    def _hand_over(self, report: bytes, *, unready: bool = False) -> bool:
        """Give ``report`` to bluetoothd, telling the tracker first (so the kernel cannot send it before the
        tracker expects it) and taking it back if bluetoothd did not take it."""
        tracker = self.tracker
        if tracker is not None:
            tracker.handed_over(report)
        sent = self._peripheral.send_report(report, unready=unready, timeout_s=self.send_timeout_s)
        if not sent and tracker is not None:
            tracker.withdraw(report)
        return sent

    def _host_ready(self) -> None:
        """A host is back: send what it missed even if the typist has nothing more to type."""
        self._send_missed()

    def leds(self) -> int:
        return self._peripheral.leds

    def close(self) -> None:
        """Stop delivery tracking. The peripheral (GATT app) outlives its transport: BlePeripheral.close() ends
        it. Safe to call twice."""
        self._peripheral.remove_on_ready(self._host_ready)
        self._resender.close()

"""The Bluetooth keyboard on both radios at once (``[bluetooth] mode = "auto"``): the LE keyboard (HID over GATT) and
the Classic keyboard (BR/EDR HID) on one dual-mode adapter, one pairing agent and one pairing window for both.

- bluetoothd runs with ``ControllerMode = dual`` (the generator writes it for "auto": :mod:`sttkb.gadget.bluetoothd_conf`).
- One agent: the LE keyboard's, which the Classic keyboard shares (bluetoothd asks one default agent anyway), so a
  code entered for a host counts whichever keyboard keeps its bond.
- One window: opening it makes the adapter pairable and discoverable for both radios (LE advertising, BR/EDR
  inquiry scan); it ends for both when a host pairs over either, or when it times out.
- A host keeps to the radio it paired over: the HCI monitor tells which (:mod:`sttkb.gadget.bt_classic.bearer_watch`),
  only that keyboard keeps the bond, records it (``sttkb bt list`` shows it) and reconnects to it; the Classic
  keyboard gives no HID channel to a host that paired over LE.
- Typing goes to whichever keyboard's host is connected; with none, to the keyboard of the preferred (else last)
  host, which then brings its link back.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

from sttkb.gadget.bt_classic.bearer_watch import BearerWatch
from sttkb.gadget.ble.hci_monitor import HciMonitor, open_monitor
from sttkb.gadget.ble.hosts import DEFAULT_STATE_DIR, Host, HostState
from sttkb.keyboard import PasskeyRequest

log = logging.getLogger(__name__)

RADIOS = ("le", "classic")
"""The keyboards of "auto", in the order their typists are tried."""


class OneResult:
    """``on_done(paired)`` once for two windows that end together: True as soon as either reports a host, False
    only when both ended without one."""

    def __init__(self, on_done: Callable[[bool], None] | None, count: int = 2) -> None:
        self._on_done = on_done
        self._left = count
        self._lock = threading.Lock()

    def part(self, paired: bool) -> None:
        with self._lock:
            if self._on_done is None:
                return
            self._left -= 1
            if not paired and self._left > 0:
                return
            on_done, self._on_done = self._on_done, None
        on_done(paired)


class BothRadios:
    """The two started peripherals as one :class:`~sttkb.keyboard.PairingWindow` (and ``close()``)."""

    def __init__(self, le: Any, classic: Any, monitor: HciMonitor | None) -> None:
        self.le = le
        self.classic = classic
        self._monitor = monitor

    def bearer_of(self, address: str) -> str | None:
        """The radio ``address`` paired over; None when the HCI monitor cannot tell."""
        if self._monitor is None or not self._monitor.sync():
            return None
        return self._monitor.tracker.radio_of(address)

    @property
    def pairing_window_open(self) -> bool:
        return self.le.pairing_window_open or self.classic.pairing_window_open

    def open_pairing_window(self, timeout_s: float | None = None,
                            on_done: Callable[[bool], None] | None = None) -> None:
        one = OneResult(on_done)
        self.le.open_pairing_window(timeout_s, one.part)
        self.classic.open_pairing_window(timeout_s, one.part)

    def close_pairing_window(self) -> None:
        self.le.close_pairing_window()
        self.classic.close_pairing_window()

    def on_passkey_request(self, handler: Callable[[PasskeyRequest], None] | None) -> None:
        self.le.on_passkey_request(handler)    # the one agent, shared

    def hosts(self) -> list[Host]:
        return self.le.hosts()

    def close(self) -> None:
        try:
            self.classic.close()
        finally:
            try:
                self.le.close()
            finally:
                if self._monitor is not None:
                    self._monitor.close()
                    self._monitor = None


def keyboard_for_waiting_text(state: HostState) -> int:
    """Which keyboard (index in :data:`RADIOS`) text waits on when no host is connected: the one the preferred
    host, else the last one, paired over (LE when not known)."""
    state.reload_if_changed()
    target = state.preferred or state.last
    radio = state.radio.get(target or "", "le")
    return RADIOS.index(radio) if radio in RADIOS else 0


def open_both_keyboards(settings: Any, *, state_dir: str | Path = DEFAULT_STATE_DIR,
                        on_pairing_change: Callable[[bool], None] | None = None, start_timeout_s: float = 20.0,
                        bus_address: str | None = None, track_delivery: bool = True,
                        check_version: bool = True) -> tuple[BothRadios, Any, Any]:
    """Start both keyboards on the adapter; return (both, LE transport, Classic transport). Raises as
    :func:`~sttkb.gadget.ble.keyboard.open_ble_keyboard` and
    :func:`~sttkb.gadget.bt_classic.keyboard.open_classic_keyboard` do; nothing is left registered then."""
    from sttkb.gadget.ble.keyboard import open_ble_keyboard
    from sttkb.gadget.bt_classic.keyboard import open_classic_keyboard

    le, le_transport = open_ble_keyboard(settings, state_dir=state_dir, on_pairing_change=on_pairing_change,
                                         track_delivery=track_delivery, start_timeout_s=start_timeout_s,
                                         bus_address=bus_address, check_version=check_version)
    try:
        classic, classic_transport = open_classic_keyboard(
            settings, state_dir=state_dir, start_timeout_s=start_timeout_s, bus_address=bus_address,
            track_delivery=track_delivery, agent=le.agent)
    except BaseException:
        le_transport.close()
        le.close()
        raise
    monitor = open_monitor(le.adapter_name, BearerWatch, "telling which radio a host paired over (each new host "
                                                         "is then kept by the LE keyboard)")
    both = BothRadios(le, classic, monitor)
    le.bearer_of = classic.bearer_of = both.bearer_of
    return both, le_transport, classic_transport

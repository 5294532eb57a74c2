"""The Bluetooth LE keyboard, assembled: a started :class:`~sttkb.gadget.ble.peripheral.BlePeripheral` and the
:class:`~sttkb.gadget.ble.transport.BleTransport` that types through it, with delivery tracking where the kernel's
HCI monitor can be opened. The keyboard factory calls :func:`open_ble_keyboard`; nothing else builds the pair.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from sttkb.gadget.ble.hci_monitor import open_monitor
from sttkb.gadget.ble.hosts import DEFAULT_STATE_DIR
from sttkb.gadget.ble.peripheral import BlePeripheral
from sttkb.gadget.ble.transport import BleTransport


def open_ble_keyboard(settings: Any, *, state_dir: str | Path = DEFAULT_STATE_DIR,
                      on_pairing_change: Callable[[bool], None] | None = None, track_delivery: bool = True,
                      start_timeout_s: float = 20.0, bus_address: str | None = None,
                      check_version: bool = True) -> tuple[BlePeripheral, BleTransport]:
    """Register the keyboard with bluetoothd and return (peripheral, transport).

    ``settings`` is :class:`sttkb.config.keyboard.BluetoothSettings`. The peripheral serves the pairing window
    (``open_pairing_window``/``close_pairing_window``) and the hosts; the transport takes the typist's reports.
    Close the transport (the typist does) and then the peripheral. Raises
    :class:`~sttkb.gadget.ble.errors.BluetoothError` subclasses (BluezUnavailable, AdapterNotFound, ...) when
    bluetoothd or the adapter is missing; nothing is left registered then.
    ``track_delivery=False`` skips the HCI monitor (the reports a dropped link lost are then not sent again).
    ``bus_address`` (a private D-Bus) and ``check_version=False`` are for tests.
    """
    peripheral = BlePeripheral(settings, state_dir=state_dir, on_pairing_change=on_pairing_change,
                               bus_address=bus_address, check_version=check_version).start(start_timeout_s)
    monitor = open_monitor(peripheral.adapter_name) if track_delivery else None
    return peripheral, BleTransport(peripheral, monitor=monitor)

"""The Bluetooth Classic keyboard, assembled: a started :class:`~sttkb.gadget.bt_classic.peripheral.ClassicPeripheral`
(record, agent, window, hosts), the :class:`~sttkb.gadget.bt_classic.link.HidLink` listening on the HID PSMs, and
the :class:`~sttkb.gadget.bt_classic.transport.ClassicTransport` the typist types through. Only bonded hosts get a
channel; the keyboard reconnects to the last (or preferred) one when there is something to type, and once at
start when ``[bluetooth] reconnect`` is on — each time only after the host answered a page
(:mod:`sttkb.gadget.bt_classic.page`). Delivery tracking where the kernel's HCI monitor can be opened (the
transport sends again what a lost link dropped).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

from sttkb.gadget.ble.delivery import DeliveryTracker
from sttkb.gadget.ble.hosts import DEFAULT_STATE_DIR
from sttkb.gadget.ble.hci_monitor import adapter_index, open_monitor
from sttkb.gadget.bt_classic.interrupt import InterruptChannel
from sttkb.gadget.bt_classic.link import HidLink
from sttkb.gadget.bt_classic.page import host_answers_page
from sttkb.gadget.bt_classic.peripheral import ClassicPeripheral
from sttkb.gadget.bt_classic.transport import ClassicTransport


def open_classic_keyboard(settings: Any, *, state_dir: str | Path = DEFAULT_STATE_DIR,
                          on_pairing_change: Callable[[bool], None] | None = None, start_timeout_s: float = 20.0,
                          bus_address: str | None = None, track_delivery: bool = True,
                          agent: Any = None) -> tuple[ClassicPeripheral, ClassicTransport]:
    """Publish the keyboard with bluetoothd, listen for hosts; return (peripheral, transport).

    ``settings`` is :class:`sttkb.config.keyboard.BluetoothSettings`. Close the transport (the typist does; it
    closes the link) and then the peripheral. Raises BluetoothError subclasses when bluetoothd or the adapter is
    missing, TransportError when the HID PSMs are taken (bluetoothd's input plugin); nothing is left registered.
    ``track_delivery=False`` skips the HCI monitor (the reports a dropped link lost are then not sent again).
    ``agent``: the LE keyboard's pairing agent, shared (both keyboards on one adapter, ``mode = "auto"``).
    """
    peripheral = ClassicPeripheral(settings, state_dir=state_dir, on_pairing_change=on_pairing_change,
                                   bus_address=bus_address, agent=agent).start(start_timeout_s)
    transports: list[ClassicTransport] = []

    def host_changed(address: str, connected: bool) -> None:
        peripheral.host_connected(address, connected)
        for transport in transports:
            transport.host_changed(address, connected)

    try:
        index = adapter_index(peripheral.adapter_name)
        link = HidLink(peripheral.address, allow=peripheral.is_bonded, on_unplug=peripheral.forget,
                       on_change=host_changed, settle_s=settings.reconnect_settle_s,
                       answers_page=None if index is None else functools.partial(host_answers_page, index)).start()
    except BaseException:
        peripheral.close()
        raise
    tracker = functools.partial(DeliveryTracker, frames=InterruptChannel())
    monitor = open_monitor(peripheral.adapter_name, tracker) if track_delivery else None
    transport = ClassicTransport(link, reconnect_target=peripheral.reconnect_target,
                                 min_interval_s=settings.report_interval_ms / 1000.0, monitor=monitor)
    transports.append(transport)
    if getattr(settings, "reconnect", True):
        transport.reconnect(now=True)
    return peripheral, transport

"""One-shot Bluetooth operations for the CLI, straight on bluetoothd (the keyboard app may run in the daemon).

Each function opens its own D-Bus connection. Because the pairing window is the adapter's Pairable/Discoverable
properties (with bluetoothd's timeouts), `sttkb bt pair` here and the daemon's keyboard agree on it; the daemon
re-reads the state file, so `sttkb bt use` reaches it too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.errors import BluetoothError
from sttkb.gadget.ble.hosts import Host, HostState, hosts_from_objects, match_host

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterStatus:
    adapter: str
    address: str
    alias: str
    powered: bool
    pairable: bool
    discoverable: bool
    advertising: int
    """Active LE advertisements (0 = no keyboard app is advertising: the daemon is not running)."""
    hosts: list[Host]


async def _objects(bus, adapter: str) -> tuple[str, dict[str, Any]]:
    objects = await bluez.managed_objects(bus)
    return bluez.adapter_path(objects, adapter), objects


async def status(adapter: str, bus_address: str | None = None) -> AdapterStatus:
    bus = await bluez.connect_system_bus(bus_address)
    try:
        path, objects = await _objects(bus, adapter)
        props = objects[path][defs.ADAPTER]
        adv = objects[path].get(defs.LE_ADVERTISING_MANAGER, {})
        return AdapterStatus(adapter=adapter, address=str(props.get("Address", "")),
                             alias=str(props.get("Alias", "")), powered=bool(props.get("Powered")),
                             pairable=bool(props.get("Pairable")), discoverable=bool(props.get("Discoverable")),
                             advertising=int(adv.get("ActiveInstances", 0)),
                             hosts=hosts_from_objects(objects, path))
    finally:
        bus.disconnect()


async def forget(adapter: str, query: str, state: HostState, bus_address: str | None = None) -> Host:
    """Remove a bonded host and its keys from BlueZ; it must pair again."""
    bus = await bluez.connect_system_bus(bus_address)
    try:
        path, objects = await _objects(bus, adapter)
        host = match_host(hosts_from_objects(objects, path), query)
        await bluez.call(bus, path, defs.ADAPTER, "RemoveDevice", "o", [host.path], what=f"forget {host.address}")
        state.forget(host.address)
        return host
    finally:
        bus.disconnect()


async def use(adapter: str, query: str, state: HostState, bus_address: str | None = None,
              connect_timeout_s: float = 15.0) -> tuple[Host, bool]:
    """Prefer this bonded host: remember it, drop other connected hosts, try to connect. (host, connected)."""
    bus = await bluez.connect_system_bus(bus_address)
    try:
        path, objects = await _objects(bus, adapter)
        hosts = hosts_from_objects(objects, path)
        host = match_host(hosts, query)
        state.set_preferred(host.address)
        for other in hosts:
            if other.connected and other.path != host.path:
                log.info("disconnecting %s to switch to %s", other.address, host.address)
                try:
                    await bluez.call(bus, other.path, defs.DEVICE, "Disconnect", what=f"disconnect {other.address}")
                except BluetoothError as e:
                    log.info("%s", e)
        if host.connected:
            return host, True
        try:
            await asyncio.wait_for(bluez.call(bus, host.path, defs.DEVICE, "Connect",
                                              what=f"connect to {host.address}"), connect_timeout_s)
            return host, True
        except (BluetoothError, asyncio.TimeoutError) as e:
            log.info("connect to %s: %s", host.address, e)
            return host, False
    finally:
        bus.disconnect()


async def open_window(adapter: str, timeout_s: float, bus_address: str | None = None) -> None:
    """Make the adapter pairable + discoverable for ``timeout_s`` seconds (bluetoothd closes it after)."""
    bus = await bluez.connect_system_bus(bus_address)
    try:
        path, _ = await _objects(bus, adapter)
        t = max(1, int(round(timeout_s)))
        await bluez.set_property(bus, path, defs.ADAPTER, "PairableTimeout", "u", t)
        await bluez.set_property(bus, path, defs.ADAPTER, "DiscoverableTimeout", "u", t)
        await bluez.set_property(bus, path, defs.ADAPTER, "Pairable", "b", True)
        await bluez.set_property(bus, path, defs.ADAPTER, "Discoverable", "b", True)
    finally:
        bus.disconnect()


async def close_window(adapter: str, bus_address: str | None = None) -> None:
    bus = await bluez.connect_system_bus(bus_address)
    try:
        path, _ = await _objects(bus, adapter)
        await bluez.set_property(bus, path, defs.ADAPTER, "Discoverable", "b", False)
        await bluez.set_property(bus, path, defs.ADAPTER, "Pairable", "b", False)
    finally:
        bus.disconnect()


async def wait_for_new_bond(adapter: str, before: set[str], timeout_s: float,
                            bus_address: str | None = None, poll_s: float = 0.5) -> Host | None:
    """Poll until a host not in ``before`` (addresses) is bonded, or the window closes / times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = await status(adapter, bus_address)
        for h in st.hosts:
            if h.is_bonded and h.address not in before:
                return h
        if not st.pairable:
            return None
        await asyncio.sleep(poll_s)
    return None

"""One-shot Bluetooth operations for the CLI, straight on bluetoothd (the keyboard app may run in the daemon).

Each function opens its own D-Bus connection and does what the running peripheral would do, through the same
:class:`~sttkb.gadget.ble.adapter.Adapter`. Because the pairing window is the adapter's Pairable/Discoverable
properties (with bluetoothd's timeouts), `sttkb bt pair` here and the daemon's keyboard agree on it; the daemon
re-reads the state file, so `sttkb bt use` reaches it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.adapter import Adapter
from sttkb.gadget.ble.hosts import Host, HostState, hosts_from_objects
from sttkb.gadget.bt_classic.sdp_record import HID_UUID

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
    """Active LE advertisements (0 = no LE keyboard app is advertising)."""
    hosts: list[Host]
    classic_record: bool = False
    """The Classic keyboard's HID service record is published (a Classic keyboard app is running)."""

    @property
    def keyboard_running(self) -> bool:
        """A keyboard app (the daemon's, or `sttkb bt pair`'s) serves this adapter, over either radio."""
        return self.advertising > 0 or self.classic_record


@contextlib.asynccontextmanager
async def _adapter(name: str, bus_address: str | None) -> AsyncIterator[tuple[Adapter, dict[str, Any]]]:
    """The adapter on a D-Bus connection of its own (closed after), with bluetoothd's object tree."""
    bus = await bluez.connect_system_bus(bus_address)
    try:
        yield await Adapter.find(bus, name)
    finally:
        bus.disconnect()


async def status(adapter: str, bus_address: str | None = None) -> AdapterStatus:
    async with _adapter(adapter, bus_address) as (ad, objects):
        props = objects[ad.path][defs.ADAPTER]
        adv = objects[ad.path].get(defs.LE_ADVERTISING_MANAGER, {})
        return AdapterStatus(adapter=adapter, address=str(props.get("Address", "")),
                             alias=str(props.get("Alias", "")), powered=bool(props.get("Powered")),
                             pairable=bool(props.get("Pairable")), discoverable=bool(props.get("Discoverable")),
                             advertising=int(adv.get("ActiveInstances", 0)),
                             hosts=hosts_from_objects(objects, ad.path),
                             classic_record=HID_UUID in (props.get("UUIDs") or []))


async def forget(adapter: str, query: str, state: HostState, bus_address: str | None = None) -> Host:
    """Remove a bonded host and its keys from BlueZ; it must pair again."""
    async with _adapter(adapter, bus_address) as (ad, objects):
        return await ad.forget(query, hosts_from_objects(objects, ad.path), state)


async def use(adapter: str, query: str, state: HostState, bus_address: str | None = None,
              connect_timeout_s: float = 15.0) -> tuple[Host, bool]:
    """Prefer this bonded host: remember it, drop other connected hosts, try to connect. (host, connected)."""
    async with _adapter(adapter, bus_address) as (ad, objects):
        return await ad.use(query, hosts_from_objects(objects, ad.path), state, connect_timeout_s=connect_timeout_s)


async def open_window(adapter: str, timeout_s: float, bus_address: str | None = None) -> None:
    """Make the adapter pairable + discoverable for ``timeout_s`` seconds (bluetoothd closes it after)."""
    async with _adapter(adapter, bus_address) as (ad, _objects):
        await ad.set_pairing_window(True, timeout_s)


async def close_window(adapter: str, bus_address: str | None = None) -> None:
    async with _adapter(adapter, bus_address) as (ad, _objects):
        await ad.set_pairing_window(False)


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

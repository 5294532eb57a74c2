"""What the keyboard does to the Bluetooth adapter and its hosts, over one D-Bus connection to bluetoothd.

Used by both sides: the running peripheral (:mod:`sttkb.gadget.ble.peripheral`) and the one-shot CLI operations
(:mod:`sttkb.gadget.ble.hostctl`), so `sttkb bt use` and the daemon follow the same rules.

- The pairing window IS the adapter's ``Pairable``/``Discoverable`` properties, with bluetoothd's own
  ``PairableTimeout``/``DiscoverableTimeout`` closing it: if sttkb crashes, the window still closes.
- Host policy (:func:`judge_connection`, pure): outside the window a connected device that is not bonded is
  dropped at once (a host may *pair without bonding* while the adapter is not pairable; it must not get to read
  keystrokes); one host at a time: the preferred one (`sttkb bt use`) wins, else the one that was there first.
- The last host typed to is remembered (:class:`~sttkb.gadget.ble.hosts.HostState`) and reconnected after boot.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from dbus_fast.aio import MessageBus

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.errors import BluetoothError, BluezCallFailed
from sttkb.gadget.ble.hosts import Host, HostState, match_host

log = logging.getLogger(__name__)

BUSY_TRIES = 10
BUSY_WAIT_S = 0.2
"""How often, and how far apart (seconds), a property the adapter answers "Busy" to is set again."""
ONE_HOST_AT_A_TIME = "one host at a time (`sttkb bt use HOST` picks which)"


@dataclass(frozen=True)
class Verdict:
    """What the host policy says about one connected device."""

    drop: str | None = None
    """Object path of the device to disconnect, if any."""
    why: str = ""
    typing_to: str | None = None
    """Address of the host the keyboard now types to (remembered as the last host)."""


def judge_connection(host: Host, hosts: list[Host], *, window_open: bool, preferred: str | None) -> Verdict:
    """The host policy for ``host`` (just connected or changed) among ``hosts`` (all devices on the adapter)."""
    if not host.connected:
        return Verdict()
    if not host.is_bonded:
        return Verdict() if window_open else Verdict(host.path, "not bonded and the pairing window is closed")
    others = [h for h in hosts if h.connected and h.is_bonded and h.path != host.path]
    if not others:
        return Verdict(typing_to=host.address)
    if host.address == preferred:
        return Verdict(others[0].path, ONE_HOST_AT_A_TIME, typing_to=host.address)
    return Verdict(host.path, ONE_HOST_AT_A_TIME)


class Adapter:
    """One BlueZ adapter (``path``, e.g. /org/bluez/hci0) reached through ``bus``."""

    def __init__(self, bus: MessageBus, path: str) -> None:
        self.bus = bus
        self.path = path

    @property
    def name(self) -> str:
        """BlueZ's name of the adapter (hci0), whatever the setting named it by (the name or its address)."""
        return self.path.rsplit("/", 1)[-1]

    @classmethod
    async def find(cls, bus: MessageBus, adapter: str) -> tuple["Adapter", dict[str, dict[str, Any]]]:
        """The adapter named ``adapter`` (hci0 or its address) and bluetoothd's whole object tree, unwrapped."""
        objects = await bluez.managed_objects(bus)
        return cls(bus, bluez.adapter_path(objects, adapter)), objects

    async def prepare(self, props: dict[str, Any], alias: str) -> None:
        """Power the adapter on and give it the keyboard's name (the GAP Device Name hosts show once connected);
        ``props`` are its current Adapter1 properties."""
        if not props.get("Powered"):
            await self._set("Powered", "b", True)
        if props.get("Alias") != alias:
            await self._set("Alias", "s", alias)

    async def pairable(self) -> bool:
        return bool(await bluez.get_property(self.bus, self.path, defs.ADAPTER, "Pairable"))

    async def set_pairing_window(self, open_: bool, seconds: float = 0.0) -> None:
        """Open the window for ``seconds`` (bluetoothd closes it after them), or close it."""
        if open_:
            t = max(1, int(round(seconds)))
            await self._set("PairableTimeout", "u", t)
            await self._set("DiscoverableTimeout", "u", t)
            await self._set("Pairable", "b", True)
            await self._set("Discoverable", "b", True)
        else:
            # Pairable first: it is what refuses new pairings. Discoverable can fail where Pairable does not (in
            # dual mode the kernel also re-programs LE advertising for it, and a controller may answer that
            # "Command Disallowed": mgmt then says Busy); bluetoothd's own DiscoverableTimeout ends it then.
            await self._set("Pairable", "b", False)
            try:
                await self._set("Discoverable", "b", False)
            except BluezCallFailed as e:
                log.warning("the adapter stays visible until bluetoothd's timeout ends it (%s); pairing is closed", e)

    async def _set(self, name: str, signature: str, value: Any) -> None:
        """Set an Adapter1 property; "Busy" (the kernel is still switching the controller's scan modes, e.g.
        right after a bond over BR/EDR in dual mode) is waited out and tried again."""
        for attempt in range(BUSY_TRIES):
            try:
                await bluez.set_property(self.bus, self.path, defs.ADAPTER, name, signature, value)
                return
            except BluezCallFailed as e:
                if "Busy" not in str(e) or attempt == BUSY_TRIES - 1:
                    raise
                log.debug("adapter busy setting %s; trying again", name)
                await asyncio.sleep(BUSY_WAIT_S)

    # ---- hosts ------------------------------------------------------------------------------------------------
    async def forget(self, query: str, hosts: list[Host], state: HostState) -> Host:
        """Remove the bonded host ``query`` names and its keys; it must pair again to type."""
        host = match_host(hosts, query)
        await bluez.call(self.bus, self.path, defs.ADAPTER, "RemoveDevice", "o", [host.path],
                         what=f"forget {host.address}")
        state.forget(host.address)
        return host

    async def use(self, query: str, hosts: list[Host], state: HostState, *,
                  connect_timeout_s: float = 15.0) -> tuple[Host, bool]:
        """Prefer the bonded host ``query`` names: remember it, drop every other connected host, try to connect
        to it. Returns (host, connected now)."""
        host = match_host(hosts, query)
        state.set_preferred(host.address)
        for other in hosts:
            if other.connected and other.path != host.path:
                await self.disconnect(other.path, f"switching to {host.address}")
        if host.connected:
            return host, True
        return host, await self.connect(host, connect_timeout_s)

    async def reconnect_last(self, hosts: list[Host], state: HostState, *, radio: str = "le",
                             timeout_s: float = 30.0) -> None:
        """Connect to the preferred host, else the last one typed to, if it is bonded, paired over ``radio`` (or
        not known over which) and not connected."""
        state.reload()
        target = state.preferred or state.last
        for h in hosts:
            if (target and h.address == target and h.is_bonded and not h.connected
                    and state.paired_over(h.address, radio)):
                log.info("reconnecting to the last host %s (%s)", h.address, h.name)
                await self.connect(h, timeout_s)

    async def connect(self, host: Host, timeout_s: float) -> bool:
        """Device1.Connect: works when the host is connectable; otherwise it reconnects to our advertisement."""
        try:
            await asyncio.wait_for(bluez.call(self.bus, host.path, defs.DEVICE, "Connect",
                                              what=f"connect to {host.address}"), timeout_s)
            return True
        except (BluetoothError, asyncio.TimeoutError) as e:
            log.info("could not connect to %s (%s); waiting for it to reconnect", host.address, e)
            return False

    async def disconnect(self, path: str, why: str) -> None:
        log.warning("disconnecting %s: %s", path, why)
        try:
            await bluez.call(self.bus, path, defs.DEVICE, "Disconnect", what=f"disconnect {path}")
        except BluetoothError as e:
            log.info("disconnect %s: %s", path, e)

    async def trust(self, host: Host) -> None:
        """Mark a newly bonded host trusted (bluetoothd then lets it reconnect without asking the agent)."""
        try:
            await bluez.set_property(self.bus, host.path, defs.DEVICE, "Trusted", "b", True)
        except BluetoothError as e:
            log.info("could not mark %s trusted: %s", host.address, e)

    async def apply_policy(self, host: Host, hosts: list[Host], state: HostState, *, window_open: bool) -> None:
        """Drop whom :func:`judge_connection` says to; remember the host typed to."""
        state.reload()  # `sttkb bt use` in another process may have changed the preferred host
        verdict = judge_connection(host, hosts, window_open=window_open, preferred=state.preferred)
        if verdict.drop is not None:
            await self.disconnect(verdict.drop, verdict.why)
        if verdict.typing_to is not None:
            state.set_last(verdict.typing_to)

"""What the peripheral registered with bluetoothd's managers (agent, GATT application, advertisement), so that
closing undoes exactly that, in reverse order; and the advertisement's re-registration when its discoverable
flag changes (BlueZ reads an advertisement's properties only when it is registered). Loop thread only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dbus_fast.aio import MessageBus

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.advertisement import Advertisement
from sttkb.gadget.ble.errors import BluetoothError

log = logging.getLogger(__name__)

_UNREGISTER = {defs.AGENT_MANAGER: "UnregisterAgent", defs.GATT_MANAGER: "UnregisterApplication",
               defs.LE_ADVERTISING_MANAGER: "UnregisterAdvertisement"}


class Registrations:
    """Registrations made through ``bus``, each as (manager path, manager interface, registered object path)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self._made: list[tuple[str, str, str]] = []

    async def register(self, path: str, iface: str, member: str, signature: str, body: list[Any],
                       what: str) -> None:
        """Call ``member`` (RegisterAgent, ...) on a manager; ``body[0]`` is the object registered."""
        await bluez.call(self.bus, path, iface, member, signature, body, what=what)
        if (path, iface, body[0]) not in self._made:
            self._made.append((path, iface, body[0]))

    async def unregister(self, path: str, iface: str, obj: str) -> None:
        """Undo one registration (an error is only logged: bluetoothd may have dropped it already)."""
        if (path, iface, obj) in self._made:
            self._made.remove((path, iface, obj))
        try:
            await bluez.call(self.bus, path, iface, _UNREGISTER[iface], "o", [obj])
        except BluetoothError as e:
            log.debug("%s: %s", _UNREGISTER[iface], e)

    async def unregister_all(self) -> None:
        for path, iface, obj in reversed(list(self._made)):
            await self.unregister(path, iface, obj)


class Advertising:
    """The keyboard's advertisement on ``adapter_path``: registered once, re-registered when its discoverable
    flag changes (one change at a time)."""

    def __init__(self, registrations: Registrations, adapter_path: str, advertisement: Advertisement) -> None:
        self._registrations = registrations
        self._adapter_path = adapter_path
        self.advertisement = advertisement
        self._registered = False
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._lock:
            await self._register()

    async def set_discoverable(self, discoverable: bool) -> None:
        async with self._lock:
            if self.advertisement.discoverable == discoverable:
                return
            self.advertisement.discoverable = discoverable
            if not self._registered:
                return  # start() registers it with the flag already set
            await self._registrations.unregister(self._adapter_path, defs.LE_ADVERTISING_MANAGER,
                                                 self.advertisement.path)
            self._registered = False
            await self._register()

    async def _register(self) -> None:
        await self._registrations.register(self._adapter_path, defs.LE_ADVERTISING_MANAGER, "RegisterAdvertisement",
                                           "oa{sv}", [self.advertisement.path, {}], "start advertising")
        self._registered = True

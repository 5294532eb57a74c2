"""The laptop side in the VM tests: a BLE central on hci1 (BlueZ over dbus-fast) that finds, pairs with and
listens to the keyboard on hci0.

Only for tests/ble/vm guests. It talks to BlueZ's client API directly (Device1, GattCharacteristic1), which is
what bleak does inside: bleak's connect() kept failing here with "failed to discover services, device
disconnected" although the link was up — its cached Connected flag lagged behind the ATT link on these fast
virtual controllers, then bleak itself called Disconnect. Polling BlueZ's own properties has no such race.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from sttkb.gadget.ble import bluez, defs
from tests.ble.vm.host_agent import HostAgent

log = logging.getLogger("vm-host")


class Host:
    """A BLE central on ``adapter`` that receives the keyboard's input reports."""

    def __init__(self, adapter: str = "hci1", capability: str = "KeyboardDisplay", on_display=None) -> None:
        """``capability``: the host's pairing agent — KeyboardDisplay (a laptop: against a keyboard that enters
        codes it shows one, ``on_display(passkey)``) or NoInputNoOutput (a host without a display: Just Works)."""
        self.adapter = adapter
        self.capability = capability
        self._on_display = on_display
        self.adapter_path = f"/org/bluez/{adapter}"
        self.bus: MessageBus | None = None
        self.device_path = ""
        self.address = ""
        self.reports: list[tuple[float, bytes]] = []
        self.report_event = asyncio.Event()
        self.input_path = ""

    async def open(self) -> None:
        self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        self.bus.add_message_handler(self._on_message)
        self.agent = HostAgent(self._on_display)
        self.bus.export("/sttkb_test/host_agent", self.agent)
        await self._call(defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "RegisterAgent", "os",
                         ["/sttkb_test/host_agent", self.capability])
        await bluez.call(self.bus, "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                         [f"type='signal',sender='{defs.BLUEZ_SERVICE}',member='PropertiesChanged'"],
                         destination="org.freedesktop.DBus")

    async def close(self) -> None:
        """Unregister the host's agent and leave the bus (a new Host may then register another)."""
        if self.bus is None:
            return
        try:
            await self._call(defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "UnregisterAgent", "o", ["/sttkb_test/host_agent"])
        except Exception as e:  # noqa: BLE001
            log.info("UnregisterAgent: %s", e)
        self.bus.disconnect()
        self.bus = None

    async def _call(self, path: str, iface: str, member: str, sig: str = "", body: list | None = None) -> list:
        assert self.bus is not None
        return await bluez.call(self.bus, path, iface, member, sig, body or [], what=f"{member} {path}")

    async def _objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        assert self.bus is not None
        return await bluez.managed_objects(self.bus)

    async def find(self, timeout: float = 30.0) -> str:
        """Scan until a device advertising the HID service UUID shows up; returns its address."""
        await self._discover({"Transport": Variant("s", "le"), "UUIDs": Variant("as", [defs.UUID_HID])},
                             lambda dev: defs.UUID_HID in dev.get("UUIDs", []), timeout, "no HID keyboard advertising")
        return self.address

    async def _discover(self, discovery_filter: dict[str, Variant], is_keyboard: Callable[[dict[str, Any]], bool],
                        timeout: float, not_found: str) -> dict[str, Any]:
        """Scan with ``discovery_filter`` until a device on this adapter passes ``is_keyboard(its Device1
        properties)``; it becomes the device this host talks to. Its properties; RuntimeError(``not_found``) after
        ``timeout`` seconds."""
        await self._call(self.adapter_path, defs.ADAPTER, "SetDiscoveryFilter", "a{sv}", [discovery_filter])
        await self._call(self.adapter_path, defs.ADAPTER, "StartDiscovery")
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for path, ifaces in (await self._objects()).items():
                    dev = ifaces.get(defs.DEVICE)
                    if dev and path.startswith(self.adapter_path + "/") and is_keyboard(dev):
                        self.device_path, self.address = path, dev["Address"]
                        self.name = dev.get("Name", "")
                        return dev
                await asyncio.sleep(0.3)
        finally:
            await self._call(self.adapter_path, defs.ADAPTER, "StopDiscovery")
        raise RuntimeError(not_found)

    async def advertised_discoverable(self) -> bool | None:
        """Did the last advertisement carry the LE Limited/General Discoverable flag? (What "add device"
        dialogs filter on.) None if BlueZ has not seen the flags."""
        try:
            flags = await self.prop("AdvertisingFlags")
        except Exception as e:  # noqa: BLE001 - experimental property (bluetoothd -E)
            log.info("AdvertisingFlags: %s", e)
            return None
        return bool(flags[0] & 0x03) if flags else False

    async def find_any(self, timeout: float) -> bool:
        try:
            await self.find(timeout)
            return True
        except RuntimeError:
            return False

    async def forget(self) -> None:
        """Adapter1.RemoveDevice: drop the keyboard and its keys on the host side."""
        await self._call(self.adapter_path, defs.ADAPTER, "RemoveDevice", "o", [self.device_path])
        self.device_path = ""

    async def prop(self, name: str) -> Any:
        assert self.bus is not None
        return await bluez.get_property(self.bus, self.device_path, defs.DEVICE, name)

    async def connect(self, attempts: int = 5, timeout: float = 30.0) -> None:
        """Device1.Connect, then wait for ServicesResolved (retrying if the link drops meanwhile)."""
        for i in range(attempts):
            try:
                await self._call(self.device_path, defs.DEVICE, "Connect")
            except Exception as e:  # noqa: BLE001
                log.info("Connect attempt %d: %s", i + 1, e)
                await asyncio.sleep(1.0)
                continue
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not await self.prop("Connected"):
                    break
                if await self.prop("ServicesResolved"):
                    return
                await asyncio.sleep(0.1)
            log.info("connect attempt %d: link dropped before services resolved", i + 1)
            await asyncio.sleep(1.0)
        raise RuntimeError("cannot connect to the keyboard")

    async def pair(self, timeout: float = 30.0) -> None:
        """Device1.Pair (connects if needed), then wait for ServicesResolved."""
        if not await self.prop("Paired"):
            try:
                await self._call(self.device_path, defs.DEVICE, "Pair")
            except Exception as e:  # noqa: BLE001 - may race with an automatic pairing
                if not await self.prop("Paired"):
                    raise RuntimeError(f"pairing failed: {e}") from e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.prop("Connected") and await self.prop("ServicesResolved"):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("paired, but services did not resolve")

    async def characteristic(self, service_uuid: str, uuid: str, need: str = "") -> str:
        """Object path of characteristic ``uuid`` in service ``service_uuid`` (with flag ``need``, if given)."""
        objects = await self._objects()
        services = {p for p, i in objects.items() if defs.GATT_SERVICE in i and p.startswith(self.device_path)
                    and i[defs.GATT_SERVICE]["UUID"] == service_uuid}
        for path, ifaces in sorted(objects.items()):
            ch = ifaces.get(defs.GATT_CHARACTERISTIC)
            if ch and ch["Service"] in services and ch["UUID"] == uuid and (not need or need in ch["Flags"]):
                return path
        raise RuntimeError(f"no characteristic {uuid} in service {service_uuid}")

    async def services(self) -> list[str]:
        objects = await self._objects()
        return [i[defs.GATT_SERVICE]["UUID"] for p, i in objects.items()
                if defs.GATT_SERVICE in i and p.startswith(self.device_path + "/")]

    async def read(self, service_uuid: str, uuid: str) -> bytes:
        path = await self.characteristic(service_uuid, uuid)
        (value,) = await self._call(path, defs.GATT_CHARACTERISTIC, "ReadValue", "a{sv}", [{}])
        return bytes(value)

    async def write(self, service_uuid: str, uuid: str, value: bytes, need: str = "") -> None:
        path = await self.characteristic(service_uuid, uuid, need)
        await self._call(path, defs.GATT_CHARACTERISTIC, "WriteValue", "aya{sv}", [value, {}])

    async def subscribe(self) -> None:
        self.input_path = await self.characteristic(defs.UUID_HID, defs.UUID_REPORT, need="notify")
        await self._call(self.input_path, defs.GATT_CHARACTERISTIC, "StartNotify")

    def _on_message(self, msg: Message) -> None:
        if (msg.message_type == MessageType.SIGNAL and msg.member == "PropertiesChanged"
                and self.input_path and msg.path == self.input_path and msg.body[0] == defs.GATT_CHARACTERISTIC):
            value = msg.body[1].get("Value")
            if value is not None:
                self.reports.append((time.monotonic(), bytes(value.value)))
                self.report_event.set()
        return None

    async def wait_reports(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.reports) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.report_event.clear()
            try:
                await asyncio.wait_for(self.report_event.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return True

    async def disconnect(self) -> None:
        try:
            await self._call(self.device_path, defs.DEVICE, "Disconnect")
        except Exception as e:  # noqa: BLE001
            log.info("disconnect: %s", e)
        self.input_path = ""

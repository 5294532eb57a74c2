"""The Bluetooth Classic keyboard's side of bluetoothd: the HID service record (SDP), the pairing agent and window,
and the bonded hosts, over dbus-fast on a loop thread of its own (as the BLE peripheral does).

bluetoothd only publishes the record here (``ProfileManager1.RegisterProfile`` with ``Role = server``, a
``ServiceRecord`` and no PSM, so it listens on nothing itself) and runs pairing (Secure Simple Pairing) through
the agent. The HID channels are the keyboard's own L2CAP sockets (:mod:`sttkb.gadget.bt_classic.link`), which
is why bluetoothd must not run its input plugin on the box: it listens on the same PSMs as a HID *host*
(services/bluetooth/bluetooth.service.d/sttkb.conf starts it with ``--noplugin=input,hog``). The record is
published only when bluetoothd runs BR/EDR: with ``ControllerMode = le`` it refuses SDP records (it logs
"Failed to register service record" and the call still succeeds).

The pairing agent, the window and the host list are the BLE keyboard's (:mod:`sttkb.gadget.ble.agent`,
:mod:`~sttkb.gadget.ble.pairing_window`, :mod:`~sttkb.gadget.ble.adapter`): the adapter's Pairable/Discoverable
are one window for both radios.

No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from the annotations.
"""

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Callable, Optional

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.adapter import Adapter
from sttkb.gadget.ble.agent import PairingAgent
from sttkb.gadget.ble.devices import DeviceTable
from sttkb.gadget.ble.errors import BluetoothError, BluezUnavailable
from sttkb.gadget.ble.hosts import DEFAULT_STATE_DIR, Host, HostState
from sttkb.gadget.ble.loop_thread import LoopThread
from sttkb.gadget.ble.pairing_window import PairingWindowControl
from sttkb.gadget.ble.registrations import Registrations
from sttkb.gadget.bt_classic.sdp_record import HID_UUID, HidRecord, record_xml

log = logging.getLogger(__name__)

PROFILE_UUID = "df310e7b-641e-4bfd-95b1-6095a2f1ab7a"
"""The name the record is registered under with bluetoothd: sttkb's own, not the HID service class (0x1124) that
the record itself carries. bluetoothd refuses a second registration of a UUID one of its plugins has (its input
plugin registers 0x1124 as the HID *host*); with Role = server, no PSM and a ServiceRecord, the registration's UUID
names the registration and nothing else — hosts see the record's ServiceClassIDList."""
PROFILE_MANAGER = "org.bluez.ProfileManager1"
PROFILE = "org.bluez.Profile1"
APP_ROOT = "/org/sttkb/classic"


class HidProfile(ServiceInterface):
    """The Profile1 object bluetoothd holds for the registered record. It opens no channels for us (no PSM was
    given), so only Release and RequestDisconnection can come."""

    def __init__(self, path: str) -> None:
        super().__init__(PROFILE)
        self.path = path
        self.released = False

    @method()
    def Release(self):  # noqa: N802 (D-Bus names)
        self.released = True
        log.warning("bluetoothd released the HID service record (bluetoothd restarting?)")

    @method()
    def RequestDisconnection(self, device: "o"):  # noqa: N802
        log.info("bluetoothd asks to disconnect %s", device)


class ClassicPeripheral:
    """The keyboard's record, agent and pairing window on one adapter. ``start()`` registers; ``close()`` undoes.

    ``settings`` is :class:`sttkb.config.keyboard.BluetoothSettings` (name, adapter, pairing, pairing_timeout_s).
    Blocking methods are safe from any thread."""

    def __init__(self, settings: Any, *, record: Optional[HidRecord] = None,
                 state_dir: "str | Path" = DEFAULT_STATE_DIR, bus_address: Optional[str] = None,
                 app_root: str = APP_ROOT, on_pairing_change: Optional[Callable[[bool], None]] = None) -> None:
        self.settings = settings
        self.record = record or HidRecord(name=settings.name)
        self.state = HostState(state_dir)
        self.on_pairing_change = on_pairing_change
        self._bus_address = bus_address
        self.pairing_mode = getattr(settings, "pairing", "passkey")
        self.profile = HidProfile(f"{app_root}/hid")
        self.agent = PairingAgent(f"{app_root}/agent", is_open=lambda: self.pairing_window_open,
                                  is_bonded=lambda path: self._devices.is_bonded(path), mode=self.pairing_mode,
                                  describe=self._describe_host)
        self._loop = LoopThread("sttkb-bt-classic")
        self._bus: Optional[MessageBus] = None
        self._adapter: Optional[Adapter] = None
        self._devices = DeviceTable("")
        self._window: Optional[PairingWindowControl] = None
        self._registrations: Optional[Registrations] = None
        self._profile_registered = False
        self.record_published = False
        """bluetoothd lists the HID service among the adapter's UUIDs (it serves the record over SDP)."""
        self.address = ""
        """The adapter's BR/EDR address, once started."""

    # ---- life cycle -------------------------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "ClassicPeripheral":
        if self._loop.running:
            return self
        self._loop.start()
        try:
            self._loop.run(self._setup(), timeout)
        except FutureTimeout as e:
            self.close()
            raise BluezUnavailable(f"bluetoothd did not answer within {timeout:g} s: is there a Bluetooth adapter "
                                   "and is bluetooth.service running? (`systemctl status bluetooth`)") from e
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if not self._loop.running:
            return
        try:
            if self._bus is not None:
                self._loop.run(self._teardown(), 10.0)
        except (BluetoothError, FutureTimeout) as e:
            log.warning("Bluetooth Classic keyboard teardown: %s", e)
        self._loop.stop()

    async def _setup(self) -> None:
        self._bus = bus = await bluez.connect_system_bus(self._bus_address)
        self._registrations = reg = Registrations(bus)
        bus.add_message_handler(self._on_signal)
        await bluez.call(bus, "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                         [f"type='signal',sender='{defs.BLUEZ_SERVICE}'"], destination="org.freedesktop.DBus",
                         what="watch BlueZ signals")
        self._adapter, objects = await Adapter.find(bus, self.settings.adapter)
        props = objects[self._adapter.path][defs.ADAPTER]
        self.address = str(props.get("Address", ""))
        self._devices = DeviceTable(self._adapter.path, objects)
        self._window = PairingWindowControl(self._adapter.set_pairing_window, self._window_changed,
                                            self._loop.spawn)
        await self._adapter.prepare(props, self.settings.name)
        await self._adapter.set_pairing_window(False)

        bus.export(self.agent.path, self.agent)
        await reg.register(defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "RegisterAgent", "os",
                           [self.agent.path, self.agent.capability], "register the pairing agent")
        await bluez.call(bus, defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "RequestDefaultAgent", "o", [self.agent.path],
                         what="make sttkb the default pairing agent")
        bus.export(self.profile.path, self.profile)
        options = {"Name": Variant("s", f"{self.settings.name} HID"), "Role": Variant("s", "server"),
                   "ServiceRecord": Variant("s", record_xml(self.record)),
                   "RequireAuthentication": Variant("b", True), "RequireAuthorization": Variant("b", False)}
        await bluez.call(bus, defs.BLUEZ_ROOT, PROFILE_MANAGER, "RegisterProfile", "osa{sv}",
                         [self.profile.path, PROFILE_UUID, options], what="publish the HID service record")
        self._profile_registered = True
        uuids = await bluez.get_property(bus, self._adapter.path, defs.ADAPTER, "UUIDs")
        self.record_published = HID_UUID in (uuids or [])
        if not self.record_published:
            log.warning("bluetoothd took the HID service record but does not publish it on %s: it runs LE only "
                        "(ControllerMode = le); Bluetooth Classic hosts will not find the keyboard",
                        self.settings.adapter)
        if await self._adapter.pairable():
            await self._window.follow(True)
        log.info("Bluetooth Classic keyboard %r ready on %s %s (%d bonded host(s))", self.settings.name,
                 self.settings.adapter, self.address, sum(1 for h in self._devices.hosts() if h.bonded))

    async def _teardown(self) -> None:
        bus = self._bus
        assert bus is not None
        if self._adapter is not None and self._window is not None and self._window.is_open:
            await self._adapter.set_pairing_window(False)
        if self._profile_registered:
            self._profile_registered = False
            try:
                await bluez.call(bus, defs.BLUEZ_ROOT, PROFILE_MANAGER, "UnregisterProfile", "o",
                                 [self.profile.path])
            except BluetoothError as e:
                log.debug("UnregisterProfile: %s", e)
        if self._registrations is not None:
            await self._registrations.unregister_all()
        self._loop.cancel_tasks()
        bus.disconnect()
        self._bus = None

    @property
    def adapter_name(self) -> str:
        """BlueZ's name of the adapter in use (hci0), once started."""
        return self._adapter.name if self._adapter is not None else ""

    # ---- pairing window ---------------------------------------------------------------------------------------
    @property
    def pairing_window_open(self) -> bool:
        return self._window is not None and self._window.is_open

    def open_pairing_window(self, timeout_s: Optional[float] = None,
                            on_done: Optional[Callable[[bool], None]] = None) -> None:
        seconds = float(timeout_s if timeout_s is not None else self.settings.pairing_timeout_s)
        self._loop.run(self._control().open(seconds, on_done))

    def close_pairing_window(self) -> None:
        self._loop.run(self._control().close())

    def on_passkey_request(self, handler: Optional[Callable[[Any], None]]) -> None:
        """``handler(request)`` gets the code a host shows while pairing (SSP passkey entry, the same agent and
        spoken-code path as BLE: :mod:`sttkb.gadget.ble.agent`)."""
        self.agent.passkey_handler = handler

    def _control(self) -> PairingWindowControl:
        if self._window is None:
            raise BluetoothError("the Bluetooth keyboard is not started")
        return self._window

    async def _window_changed(self, open_: bool) -> None:
        if self.on_pairing_change is not None:
            try:
                self.on_pairing_change(open_)
            except Exception:  # noqa: BLE001 (a callback must not break the keyboard)
                log.exception("pairing LED callback failed")

    # ---- hosts ------------------------------------------------------------------------------------------------
    def hosts(self) -> list:
        return self._loop.run(self._hosts())

    async def _hosts(self) -> "list[Host]":
        return self._devices.hosts()

    def is_bonded(self, address: str) -> bool:
        """Does bluetoothd hold a stored key for ``address`` on this adapter (Device1.Bonded; a pairing without
        bonding does not count)? The link's ``allow``."""
        return self._loop.run(self._is_bonded(address), 5.0)

    async def _is_bonded(self, address: str) -> bool:
        return any(h.address.upper() == address.upper() and h.bonded for h in self._devices.hosts())

    def reconnect_target(self) -> Optional[str]:
        """The bonded host to reconnect to: the preferred one (`sttkb bt use`), else the last one typed to."""
        self.state.reload_if_changed()
        target = self.state.preferred or self.state.last
        return target if target and self.is_bonded(target) else None

    def host_connected(self, address: str, connected: bool) -> None:
        """The link's ``on_change``: remember the host typed to."""
        if connected:
            self.state.set_last(address)

    def forget(self, address: str) -> None:
        """Remove a host and its keys (the host unplugged the virtual cable: it removed the bond on its side)."""
        try:
            self._loop.run(self._forget(address), 10.0)
        except (BluetoothError, FutureTimeout) as e:
            log.warning("could not forget %s: %s", address, e)

    async def _forget(self, address: str) -> None:
        assert self._adapter is not None
        host = await self._adapter.forget(address, self._devices.hosts(), self.state)
        self._devices.remove(host.path)
        log.info("forgot %s: its virtual cable was unplugged", address)

    def _describe_host(self, path: str) -> str:
        host = self._devices.host(path)
        return (host.name or host.address) if host is not None else path.rsplit("/", 1)[-1]

    async def _paired(self, path: str) -> None:
        host = self._devices.host(path)
        if host is None or self._adapter is None or self._window is None:
            return
        if not self._window.is_open:
            log.warning("host %s paired while the window was closed", host.address)
        method_ = "passkey" if path in self.agent.passkey_entered else "just-works"
        self.agent.passkey_entered.discard(path)
        log.info("paired with %s (%s) over Bluetooth Classic by %s", host.address, host.name or "no name", method_)
        self.state.set_pairing(host.address, method_)
        await self._adapter.trust(host)
        self.state.set_last(host.address)
        await self._window.host_paired()

    # ---- signals ----------------------------------------------------------------------------------------------
    def _on_signal(self, msg: Message) -> None:
        if msg.message_type != MessageType.SIGNAL or not msg.path or self._adapter is None:
            return None
        try:
            if msg.member == "PropertiesChanged" and msg.interface == defs.PROPERTIES:
                iface, changed = msg.body[0], bluez.unwrap(msg.body[1])
                if iface == defs.DEVICE and self._devices.owns(msg.path):
                    self._device_changed(msg.path, changed)
                elif (iface == defs.ADAPTER and msg.path == self._adapter.path and "Pairable" in changed
                      and self._window is not None):
                    self._loop.spawn(self._window.follow(bool(changed["Pairable"])))
            elif msg.member == "InterfacesAdded" and msg.interface == defs.OBJECT_MANAGER:
                path, ifaces = msg.body[0], msg.body[1]
                if defs.DEVICE in ifaces and self._devices.owns(path):
                    self._device_changed(path, bluez.unwrap(ifaces[defs.DEVICE]))
            elif msg.member == "InterfacesRemoved" and msg.interface == defs.OBJECT_MANAGER:
                path, ifaces = msg.body[0], msg.body[1]
                if defs.DEVICE in ifaces:
                    self._devices.remove(path)
        except (IndexError, KeyError, TypeError) as e:
            log.debug("ignoring odd BlueZ signal %s: %s", msg.member, e)
        return None

    def _device_changed(self, path: str, changed: dict) -> None:
        before = self._devices.host(path)
        self._devices.update(path, changed)
        after = self._devices.host(path)
        # Only a stored key counts (Device1.Bonded, BlueZ 5.63+): a host may pair *without bonding* while the
        # window is closed (the kernel allows it), and must get neither trust nor a HID channel.
        if after is not None and after.bonded and not (before is not None and before.bonded):
            self._loop.spawn(self._paired(path))

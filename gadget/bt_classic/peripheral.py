"""The Bluetooth Classic keyboard's side of bluetoothd: the HID service record (SDP), the pairing agent and window,
and the bonded hosts, over dbus-fast on a loop thread of its own (as the BLE peripheral does).

bluetoothd only publishes the record here (``ProfileManager1.RegisterProfile`` with ``Role = server``, a
``ServiceRecord`` and no PSM, so it listens on nothing itself) and runs pairing (Secure Simple Pairing) through
the agent. The HID channels are the keyboard's own L2CAP sockets (:mod:`sttkb.gadget.bt_classic.link`), which
is why bluetoothd must not run its input plugin on the box: it listens on the same PSMs as a HID *host*
(services/bluetooth/bluetooth.service.d/50-sttkb.conf starts it with ``--noplugin=input,hog``). The record is
published only when bluetoothd runs BR/EDR: with ``ControllerMode = le`` it refuses SDP records (it logs
"Failed to register service record" and the call still succeeds).

The loop thread, the connection to bluetoothd, the pairing agent, the window and the host list are the BLE
keyboard's (:class:`~sttkb.gadget.ble.bluez_peripheral.BluezPeripheral`, the base class of both): the adapter's
Pairable/Discoverable are one window for both radios.

No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from the annotations.
"""

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Callable, Optional

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.bluez_peripheral import BluezPeripheral
from sttkb.gadget.ble.errors import BluetoothError
from sttkb.gadget.ble.hosts import DEFAULT_STATE_DIR
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


class ClassicPeripheral(BluezPeripheral):
    """The keyboard's record, agent and pairing window on one adapter. ``start()`` registers; ``close()`` undoes.

    ``settings`` is :class:`sttkb.config.keyboard.BluetoothSettings` (name, adapter, pairing, pairing_timeout_s).
    Blocking methods are safe from any thread."""

    kind = "Bluetooth Classic keyboard"
    radio = "classic"

    def __init__(self, settings: Any, *, record: Optional[HidRecord] = None,
                 state_dir: "str | Path" = DEFAULT_STATE_DIR, bus_address: Optional[str] = None,
                 app_root: str = APP_ROOT, on_pairing_change: Optional[Callable[[bool], None]] = None,
                 agent: Optional[Any] = None) -> None:
        super().__init__(settings, state_dir=state_dir, bus_address=bus_address, app_root=app_root,
                         on_pairing_change=on_pairing_change, loop_name="sttkb-bt-classic", agent=agent)
        self.record = record or HidRecord(name=settings.name)
        self.profile = HidProfile(f"{app_root}/hid")
        self._profile_registered = False
        self.record_published = False
        """bluetoothd lists the HID service among the adapter's UUIDs (it serves the record over SDP)."""
        self.address = ""
        """The adapter's BR/EDR address, once started."""

    # ---- life cycle -------------------------------------------------------------------------------------------
    async def _setup(self) -> None:
        bus, _reg, props = await self._connect()
        self.address = str(props.get("Address", ""))
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
                        "(ControllerMode = le), so Bluetooth Classic hosts will not find the keyboard. After "
                        "setting [bluetooth] mode = \"classic\", run `sudo systemctl daemon-reload && sudo "
                        "systemctl restart bluetooth sttkb` (or reboot): bluetoothd reads its mode only at start",
                        self.settings.adapter)
        if await self._adapter.pairable():
            await self._window.follow(True)
        log.info("Bluetooth Classic keyboard %r ready on %s %s (%d bonded host(s))", self.settings.name,
                 self.settings.adapter, self.address, sum(1 for h in self._devices.hosts() if h.bonded))

    async def _unpublish(self, bus: MessageBus) -> None:
        if self._profile_registered:
            self._profile_registered = False
            try:
                await bluez.call(bus, defs.BLUEZ_ROOT, PROFILE_MANAGER, "UnregisterProfile", "o",
                                 [self.profile.path])
            except BluetoothError as e:
                log.debug("UnregisterProfile: %s", e)

    # ---- hosts ------------------------------------------------------------------------------------------------
    def is_bonded(self, address: str) -> bool:
        """Does bluetoothd hold a stored key for ``address`` on this adapter (Device1.Bonded; a pairing without
        bonding does not count), and did it pair with this keyboard (a host that paired over LE keeps to LE,
        even with a BR/EDR key derived from that pairing)? The link's ``allow``."""
        return self._loop.run(self._is_bonded(address), 5.0)

    async def _is_bonded(self, address: str) -> bool:
        self.state.reload_if_changed()
        return any(h.address.upper() == address.upper() and h.bonded and self.state.paired_over(h.address, self.radio)
                   for h in self._devices.hosts())

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

    async def _paired(self, path: str) -> None:
        host = self._devices.host(path)
        if host is None or self._adapter is None or self._window is None or not self._bonded_here(host):
            return
        method_ = self._pairing_method(host, path)
        log.info("paired with %s (%s) over Bluetooth Classic by %s", host.address, host.name or "no name", method_)
        await self._keep_bond(host, method_)

    # ---- signals ----------------------------------------------------------------------------------------------
    def _device_changed(self, path: str, changed: dict) -> None:
        before = self._devices.host(path)
        self._devices.update(path, changed)
        after = self._devices.host(path)
        # Only a stored key counts (Device1.Bonded, BlueZ 5.63+): a host may pair *without bonding* while the
        # window is closed (the kernel allows it), and must get neither trust nor a HID channel.
        if after is not None and after.bonded and not (before is not None and before.bonded):
            self._loop.spawn(self._paired(path))

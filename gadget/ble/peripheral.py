"""The Bluetooth LE keyboard's peripheral at run time: the GATT HID application, the advertisement and the pairing
agent registered with bluetoothd, the pairing window and host policy applied as BlueZ reports hosts coming and
going, and readiness (a bonded host connected and subscribed) for the transport.

:class:`BlePeripheral` is a :class:`~sttkb.gadget.ble.bluez_peripheral.BluezPeripheral` (the loop thread, the
connection to bluetoothd, the agent and the pairing window, shared with the Bluetooth Classic keyboard); its public
methods are plain blocking calls, safe from any thread (the daemon, the typist's thread, the CLI). Who is dropped
and when the window opens are decided in :mod:`sttkb.gadget.ble.adapter` and
:mod:`sttkb.gadget.ble.pairing_window`; which reports reached the host is the transport's business
(:mod:`sttkb.gadget.ble.transport`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from sttkb.gadget.ble import bluez_version, defs, hci_monitor
from sttkb.gadget.ble.advertisement import Advertisement
from sttkb.gadget.ble.bluez_peripheral import BluezPeripheral
from sttkb.gadget.ble.gatt import all_objects
from sttkb.gadget.ble.hid_service import HidServices
from sttkb.gadget.ble.hosts import DEFAULT_STATE_DIR, Host
from sttkb.gadget.ble.registrations import Advertising
from sttkb.gadget.ble.smp_watch import SmpWatch
from sttkb.gadget.reports import REPORT_DESCRIPTOR

log = logging.getLogger(__name__)

APP_ROOT = "/org/sttkb/keyboard"


class BlePeripheral(BluezPeripheral):
    """One BLE HID keyboard peripheral on one adapter. ``start()`` registers everything; ``close()`` undoes it.

    ``settings`` is a :class:`sttkb.config.keyboard.BluetoothSettings` (name, adapter, pairing_timeout_s,
    reconnect, reconnect_settle_s: after a host (re)connects, wait this long before typing to it — a bonded host
    keeps its subscription across connections, so BlueZ gives no signal when the host is ready to take keys
    again). ``on_pairing_change(open)`` is called (from the loop
    thread) when the window opens or closes: the LED layer hooks in there. ``bus_address`` selects a private bus
    (tests); default: the system bus.
    """

    kind = "BLE keyboard"
    radio = "le"

    def __init__(self, settings: Any, *, report_map: bytes = REPORT_DESCRIPTOR,
                 state_dir: str | Path = DEFAULT_STATE_DIR,
                 bus_address: str | None = None, app_root: str = APP_ROOT, check_version: bool = True,
                 on_pairing_change: Callable[[bool], None] | None = None) -> None:
        super().__init__(settings, state_dir=state_dir, bus_address=bus_address, app_root=app_root,
                         on_pairing_change=on_pairing_change, loop_name="sttkb-ble")
        self._app_root = app_root
        self._check_version = check_version
        self.advertisement = Advertisement(f"{app_root}/advertisement0", settings.name, discoverable=False)
        self.hid = HidServices(app_root, report_map, on_subscription=lambda _on: self._update_ready(),
                               security="secure" if self.pairing_mode == "passkey-only" else "encrypt")
        self._smp = None   # passkey-only: the HCI monitor reading the SMP feature exchange
        self._advertising: Advertising | None = None
        self._setup_done = False
        self._connected_at: dict[str, float] = {}
        self._ready = threading.Event()
        self._on_ready: list[Callable[[], None]] = []

    # ---- life cycle -------------------------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "BlePeripheral":
        """Connect to bluetoothd and register agent, GATT application and advertisement (blocks, seconds)."""
        if self._loop.running:
            return self
        if self._check_version:
            bluez_version.check_supported(bluez_version.installed_version())
        super().start(timeout)
        if self.pairing_mode == "passkey-only":
            self._smp = hci_monitor.open_monitor(self.adapter_name, SmpWatch,
                                                 "check for LE Secure Connections (passkey pairing is refused)")
        return self

    def close(self) -> None:
        """Unregister from BlueZ, disconnect from D-Bus, stop the loop thread. Safe to call twice."""
        if self._smp is not None:
            self._smp.close()
            self._smp = None
        super().close()
        self._ready.clear()

    async def _setup(self) -> None:
        bus, reg, _props = await self._connect()
        for obj in all_objects(self.hid.services):
            bus.export(obj.path, obj)
        await reg.register(self._adapter.path, defs.GATT_MANAGER, "RegisterApplication", "oa{sv}",
                           [self._app_root, {}], f"register the HID GATT application on {self.settings.adapter}")
        bus.export(self.advertisement.path, self.advertisement)
        self._advertising = Advertising(reg, self._adapter.path, self.advertisement)
        await self._advertising.start()
        self._setup_done = True
        # A window opened by another process (`sttkb bt pair`) while we started: follow it.
        if await self._adapter.pairable():
            await self._window.follow(True)
        log.info("BLE keyboard %r ready on %s (%d bonded host(s))", self.settings.name, self.settings.adapter,
                 sum(1 for h in self._devices.hosts() if h.is_bonded))
        await self._apply_policy_to_all()
        self._update_ready()
        if getattr(self.settings, "reconnect", True):
            self._loop.spawn(self._adapter.reconnect_last(self._devices.hosts(), self.state, radio=self.radio))

    async def _teardown(self) -> None:
        self._setup_done = False
        await super()._teardown()

    # ---- pairing window ---------------------------------------------------------------------------------------
    def _secure_connections(self) -> bool | None:
        """Whether the pairing under way is LE Secure Connections (None: cannot tell)."""
        if self._smp is None:
            return None
        self._smp.sync()
        return self._smp.tracker.secure_connections()

    async def _window_changed(self, open_: bool) -> None:
        if self._advertising is not None:
            await self._advertising.set_discoverable(open_)
        await super()._window_changed(open_)
        if not open_:
            await self._apply_policy_to_all()

    def _follows_adapter_window(self) -> bool:
        return self._setup_done

    # ---- hosts ------------------------------------------------------------------------------------------------
    @property
    def connected_host(self) -> Host | None:
        return self._devices.connected_host

    def host_report_interval_s(self) -> float | None:
        """The connected host's own least time between two key reports (`sttkb bt pace`), seconds; None when it
        has none. Follows the state file, so a pace set while the daemon runs applies from the next report."""
        host = self._devices.connected_host
        if host is None:
            return None
        self.state.reload_if_changed()
        ms = self.state.pace.get(host.address)
        return ms / 1000.0 if ms is not None else None

    def forget(self, query: str) -> Host:
        """Remove a bonded host (its keys too); it must pair again to type."""
        return self._loop.run(self._forget(query))

    async def _forget(self, query: str) -> Host:
        assert self._adapter is not None
        host = await self._adapter.forget(query, self._devices.hosts(), self.state)
        self._devices.remove(host.path)
        self._update_ready()
        return host

    def use(self, query: str) -> tuple[Host, bool]:
        """Prefer this bonded host: disconnect any other, try to connect to it. (host, connected now)."""
        return self._loop.run(self._use(query), 40.0)

    async def _use(self, query: str) -> tuple[Host, bool]:
        assert self._adapter is not None
        return await self._adapter.use(query, self._devices.hosts(), self.state)

    async def _apply_policy(self, path: str) -> None:
        host = self._devices.host(path)
        if host is not None and self._adapter is not None:
            await self._adapter.apply_policy(host, self._devices.hosts(), self.state,
                                             window_open=self.pairing_window_open)

    async def _apply_policy_to_all(self) -> None:
        for path in self._devices.paths:
            await self._apply_policy(path)

    async def _paired(self, path: str) -> None:
        host = self._devices.host(path)
        if host is None or self._adapter is None or self._window is None or not self._bonded_here(host):
            return
        method = self._pairing_method(host, path)
        if method != "passkey" and self.pairing_mode == "passkey-only":
            # The agent refuses Just Works in this mode; a bond made some other way is removed, not used.
            log.warning("host %s bonded without entering a code; [bluetooth] pairing = \"passkey-only\": "
                        "removing it", host.address)
            await self._adapter.forget(host.address, self._devices.hosts(), self.state)
            self._devices.remove(path)
            return
        log.info("paired with %s (%s) by %s", host.address, host.name or "no name",
                 "passkey" if method == "passkey" else "Just Works (not authenticated: no code was entered)")
        await self._keep_bond(host, method)
        await self._apply_policy(path)

    # ---- signals ----------------------------------------------------------------------------------------------
    def _device_removed(self, path: str) -> None:
        if self._devices.remove(path):
            self._update_ready()

    def _device_changed(self, path: str, changed: dict[str, Any]) -> None:
        change = self._devices.update(path, changed)
        if change.connected is not None:
            if change.connected:
                self._connected_at[path] = time.monotonic()
            host = self._devices.host(path)
            log.info("host %s %s", host.address if host else path, "connected" if change.connected else "disconnected")
        if change.bonded_now:
            self._loop.spawn(self._paired(path))
        elif change.connected is not None:
            self._loop.spawn(self._apply_policy(path))
        self._update_ready()

    # ---- typing -----------------------------------------------------------------------------------------------
    def _update_ready(self) -> None:
        """Recompute readiness (loop thread): a bonded host connected for reconnect_settle_s and subscribed."""
        host = self._devices.connected_host
        if host is None or not self.hid.subscribed:
            self._ready.clear()
            return
        wait = self._connected_at.get(host.path, 0.0) + self.settings.reconnect_settle_s - time.monotonic()
        if wait > 0:
            self._ready.clear()
            asyncio.get_running_loop().call_later(wait + 0.01, self._update_ready)
            return
        if not self._ready.is_set():
            log.info("host %s ready for keys", host.address)
            self._ready.set()
            for callback in list(self._on_ready):
                threading.Thread(target=callback, name="ble-host-ready", daemon=True).start()

    @property
    def ready(self) -> bool:
        """A bonded host is connected, settled and subscribed to the input report."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on a thread of its own each time a host becomes ready for keys."""
        self._on_ready.append(callback)

    def remove_on_ready(self, callback: Callable[[], None]) -> None:
        if callback in self._on_ready:
            self._on_ready.remove(callback)

    def send_report(self, report: bytes, *, unready: bool = False, timeout_s: float = 2.0) -> bool:
        """Hand one input report to bluetoothd if a bonded host listens; False otherwise (then it was not sent).

        ``unready=True`` sends it whenever a host is subscribed, ready or not: for the all-keys-up report after a
        host vanished (bluetoothd keeps the last value it could not send and sends it when the host is back).
        Raises BluetoothError when the peripheral is not running, FutureTimeout after ``timeout_s`` seconds."""
        return self._loop.run(self._notify(report, unready), timeout_s)

    async def _notify(self, report: bytes, unready: bool) -> bool:
        if not (self.ready or unready) or not self.hid.subscribed:
            return False
        return self.hid.send_input(report)

    @property
    def leds(self) -> int:
        return self.hid.leds

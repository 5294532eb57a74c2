"""The Bluetooth LE keyboard at run time: GATT HID app + advertisement + agent + pairing window + host policy.

:class:`BleKeyboard` owns one asyncio loop in a background thread (dbus-fast is asyncio); its public methods are
plain blocking calls that are safe from any thread (the daemon, the typist's thread, the CLI).

The pairing window IS the adapter's ``Pairable``/``Discoverable`` properties, with bluetoothd's own
``PairableTimeout``/``DiscoverableTimeout`` closing it: if sttkb crashes, the window still closes, and
`sttkb bt pair` from another process opens the same window the daemon's keyboard follows.

Host policy (see docs/bluetooth.md):
- outside the window, a connected device that is not bonded is disconnected at once (a host may *pair without
  bonding* even while the adapter is not pairable; it must not get to read keystrokes);
- one host at a time: if a second bonded host connects, the preferred one (`sttkb bt use`) stays, else the one
  that was there first;
- the last host typed to is remembered and reconnected after boot.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Callable, Coroutine, TypeVar

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.advertisement import Advertisement
from sttkb.gadget.ble.agent import PairingAgent
from sttkb.gadget.ble.errors import BluetoothError, BluezUnavailable
from sttkb.gadget.ble.gatt import all_objects
from sttkb.gadget.ble.hci_monitor import HciMonitor, open_monitor
from sttkb.gadget.ble.hid_service import HidServices
from sttkb.gadget.ble.hosts import DEFAULT_STATE_DIR, Host, HostState, host_from_props, match_host
from sttkb.gadget.reports import REPORT_DESCRIPTOR

log = logging.getLogger(__name__)
T = TypeVar("T")

APP_ROOT = "/org/sttkb/keyboard"


class BleKeyboard:
    """One BLE HID keyboard on one adapter. ``start()`` registers everything; ``close()`` undoes it.

    ``settings`` is a :class:`sttkb.config.keyboard.BluetoothSettings` (name, adapter, pairing_timeout_s,
    reconnect). ``settle_s``: after a host (re)connects, wait this long (seconds) before typing to it — a bonded
    host keeps its subscription across connections, so BlueZ gives no signal when the host is ready to take keys
    again. ``on_pairing_change(open)`` is called (from the loop thread) when the window opens or closes:
    the LED layer hooks in there. ``bus_address`` selects a private bus (tests); default: the system bus.
    """

    def __init__(self, settings: Any, *, report_map: bytes = REPORT_DESCRIPTOR,
                 state_dir: str | Path = DEFAULT_STATE_DIR,
                 bus_address: str | None = None, app_root: str = APP_ROOT, check_version: bool = True,
                 settle_s: float | None = None, on_pairing_change: Callable[[bool], None] | None = None,
                 track_delivery: bool = True) -> None:
        self.settings = settings
        self.state = HostState(state_dir)
        self.on_pairing_change = on_pairing_change
        self._bus_address = bus_address
        self._app_root = app_root
        self._check_version = check_version
        self.hid = HidServices(app_root, report_map,
                               on_subscription=lambda _on: self._update_ready())
        self.advertisement = Advertisement(f"{app_root}/advertisement0", settings.name, discoverable=False)
        self.agent = PairingAgent(f"{app_root}/agent", is_open=lambda: self.pairing_window_open,
                                  is_bonded=self._is_bonded_path)
        self.adapter_path = ""
        self.pairing_window_open = False
        self._devices: dict[str, dict[str, Any]] = {}
        self._on_done: Callable[[bool], None] | None = None
        self._window_timer: asyncio.TimerHandle | None = None
        self._ready = threading.Event()
        self._bus: MessageBus | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._registered: list[tuple[str, str, str]] = []  # (path, interface, unregister member)
        self._tasks: set[asyncio.Task] = set()
        self._adv_registered = False
        self._adv_lock: asyncio.Lock | None = None
        self._setup_done = False
        self.settle_s = float(settle_s if settle_s is not None else getattr(settings, "reconnect_settle_s", 1.0))
        self._connected_at: dict[str, float] = {}
        self._track_delivery = track_delivery
        self.monitor: HciMonitor | None = None
        """Delivery tracking from the kernel's HCI monitor (None where it cannot be opened: no CAP_NET_RAW, no kernel
        Bluetooth, or track_delivery=False)."""
        self._on_ready: list[Callable[[], None]] = []

    # ---- life cycle -------------------------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "BleKeyboard":
        """Connect to bluetoothd and register agent, GATT application and advertisement (blocks, seconds)."""
        if self._thread is not None:
            return self
        if self._check_version:
            bluez.check_bluez_version(bluez.bluez_version())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sttkb-ble", daemon=True)
        self._thread.start()
        try:
            self.run(self._setup(), timeout)
        except FutureTimeout as e:
            self.close()
            # Seen on a box without a Bluetooth controller: bluetooth.service is skipped, and D-Bus holds the
            # call while it tries to activate org.bluez.
            raise BluezUnavailable(f"bluetoothd did not answer within {timeout:g} s: is there a Bluetooth adapter "
                                   "and is bluetooth.service running? (`systemctl status bluetooth`)") from e
        except BaseException:
            self.close()
            raise
        if self._track_delivery:  # the adapter as BlueZ names it: the setting may be its address
            self.monitor = open_monitor(self.adapter_path.rsplit("/", 1)[-1])
        return self

    def close(self) -> None:
        """Unregister from BlueZ, disconnect from D-Bus, stop the loop thread. Safe to call twice."""
        if self._loop is None:
            return
        try:
            if self._bus is not None:
                self.run(self._teardown(), 10.0)
        except (BluetoothError, FutureTimeout) as e:
            log.warning("BLE keyboard teardown: %s", e)
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5.0)
        loop.close()
        self._ready.clear()
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None

    def __enter__(self) -> "BleKeyboard":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 10.0) -> T:
        """Run ``coro`` on the keyboard's loop from another thread and return its result (seconds)."""
        if self._loop is None:
            coro.close()
            raise BluetoothError("the Bluetooth keyboard is not started")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except FutureTimeout:
            fut.cancel()
            raise

    async def _setup(self) -> None:
        self._adv_lock = asyncio.Lock()
        self._bus = bus = await bluez.connect_system_bus(self._bus_address)
        bus.add_message_handler(self._on_signal)
        await self._add_match(f"type='signal',sender='{defs.BLUEZ_SERVICE}'")
        objects = await bluez.managed_objects(bus)
        self.adapter_path = bluez.adapter_path(objects, self.settings.adapter)
        self._devices = {p: i[defs.DEVICE] for p, i in objects.items()
                         if defs.DEVICE in i and p.startswith(self.adapter_path + "/")}
        adapter = objects[self.adapter_path][defs.ADAPTER]
        if not adapter.get("Powered"):
            await bluez.set_property(bus, self.adapter_path, defs.ADAPTER, "Powered", "b", True)
        if adapter.get("Alias") != self.settings.name:  # the GAP Device Name hosts show once connected
            await bluez.set_property(bus, self.adapter_path, defs.ADAPTER, "Alias", "s", self.settings.name)
        # Whatever window was left open by a previous run is closed: pairing needs a fresh user action.
        await self._set_window_properties(False, 0)

        bus.export(self.agent.path, self.agent)
        await bluez.call(bus, defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "RegisterAgent", "os",
                         [self.agent.path, defs.AGENT_CAPABILITY], what="register the pairing agent")
        self._registered.append((defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "UnregisterAgent"))
        await bluez.call(bus, defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "RequestDefaultAgent", "o", [self.agent.path],
                         what="make sttkb the default pairing agent")

        for obj in all_objects(self.hid.services):
            bus.export(obj.path, obj)
        await bluez.call(bus, self.adapter_path, defs.GATT_MANAGER, "RegisterApplication", "oa{sv}",
                         [self._app_root, {}], what=f"register the HID GATT application on {self.settings.adapter}")
        self._registered.append((self.adapter_path, defs.GATT_MANAGER, "UnregisterApplication"))

        bus.export(self.advertisement.path, self.advertisement)
        async with self._adv_lock:
            await self._register_advertisement()
        self._setup_done = True
        # A window opened by another process (`sttkb bt pair`) while we started: follow it.
        if await bluez.get_property(bus, self.adapter_path, defs.ADAPTER, "Pairable"):
            await self._window_changed(True)
        log.info("BLE keyboard %r ready on %s (%d bonded host(s))", self.settings.name, self.settings.adapter,
                 sum(1 for h in self.hosts_now() if h.is_bonded))
        for path in list(self._devices):
            await self._apply_policy(path)
        self._update_ready()
        if getattr(self.settings, "reconnect", True):
            self._spawn(self._reconnect_last())

    async def _teardown(self) -> None:
        bus = self._bus
        assert bus is not None
        if self.pairing_window_open:
            await self._set_window_properties(False, 0)
        for path, iface, member in reversed(self._registered):
            arg = {defs.AGENT_MANAGER: self.agent.path, defs.GATT_MANAGER: self._app_root,
                   defs.LE_ADVERTISING_MANAGER: self.advertisement.path}[iface]
            try:
                await bluez.call(bus, path, iface, member, "o", [arg])
            except BluetoothError as e:
                log.debug("unregister %s: %s", member, e)
        self._registered.clear()
        for task in list(self._tasks):
            task.cancel()
        bus.disconnect()
        self._bus = None

    async def _add_match(self, rule: str) -> None:
        assert self._bus is not None
        await bluez.call(self._bus, "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s", [rule],
                         destination="org.freedesktop.DBus", what="watch BlueZ signals")

    async def _register_advertisement(self) -> None:
        """Register the advertisement (caller holds ``_adv_lock``)."""
        assert self._bus is not None
        await bluez.call(self._bus, self.adapter_path, defs.LE_ADVERTISING_MANAGER, "RegisterAdvertisement",
                         "oa{sv}", [self.advertisement.path, {}], what="start advertising")
        self._adv_registered = True
        if (self.adapter_path, defs.LE_ADVERTISING_MANAGER, "UnregisterAdvertisement") not in self._registered:
            self._registered.append((self.adapter_path, defs.LE_ADVERTISING_MANAGER, "UnregisterAdvertisement"))

    async def _set_advertisement_discoverable(self, discoverable: bool) -> None:
        """Re-register the advertisement so BlueZ picks up the new discoverable flag."""
        assert self._adv_lock is not None
        async with self._adv_lock:
            if self.advertisement.discoverable == discoverable or self._bus is None:
                return
            self.advertisement.discoverable = discoverable
            if not self._adv_registered:
                return  # setup registers it with the flag already set
            try:
                await bluez.call(self._bus, self.adapter_path, defs.LE_ADVERTISING_MANAGER,
                                 "UnregisterAdvertisement", "o", [self.advertisement.path])
            except BluetoothError as e:
                log.debug("unregister advertisement: %s", e)
            self._adv_registered = False
            await self._register_advertisement()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("Bluetooth background task failed: %s", t.exception())
        task.add_done_callback(done)

    # ---- pairing window ---------------------------------------------------------------------------------------
    def open_pairing_window(self, timeout_s: float | None = None,
                            on_done: Callable[[bool], None] | None = None) -> None:
        """Be discoverable and pairable for ``timeout_s`` seconds (default: settings); return at once.

        ``on_done(paired)`` is called once: True when a host paired (the window then closes), False when the
        window closed without one.
        """
        seconds = float(timeout_s if timeout_s is not None else self.settings.pairing_timeout_s)
        self.run(self._open_window(seconds, on_done))

    def close_pairing_window(self) -> None:
        """Close the window now (``on_done(False)`` follows unless a host already paired)."""
        self.run(self._set_window_properties(False, 0))

    async def _open_window(self, seconds: float, on_done: Callable[[bool], None] | None) -> None:
        if self._on_done is not None and self._on_done is not on_done:
            self._finish_window(False)
        self._on_done = on_done
        await self._set_window_properties(True, seconds)
        # bluetoothd's own timeouts close the window; this timer is the second lock (and covers BlueZ builds
        # that ignore PairableTimeout while an agent is registered).
        if self._window_timer is not None:
            self._window_timer.cancel()
        loop = asyncio.get_running_loop()
        self._window_timer = loop.call_later(seconds + 1.0, lambda: self._spawn(self._set_window_properties(False, 0)))

    async def _set_window_properties(self, open_: bool, seconds: float) -> None:
        bus, path = self._bus, self.adapter_path
        assert bus is not None
        if open_:
            t = max(1, int(round(seconds)))
            await bluez.set_property(bus, path, defs.ADAPTER, "PairableTimeout", "u", t)
            await bluez.set_property(bus, path, defs.ADAPTER, "DiscoverableTimeout", "u", t)
            await bluez.set_property(bus, path, defs.ADAPTER, "Pairable", "b", True)
            await bluez.set_property(bus, path, defs.ADAPTER, "Discoverable", "b", True)
        else:
            await bluez.set_property(bus, path, defs.ADAPTER, "Discoverable", "b", False)
            await bluez.set_property(bus, path, defs.ADAPTER, "Pairable", "b", False)
        await self._window_changed(open_)

    async def _window_changed(self, open_: bool) -> None:
        """Follow the adapter's Pairable property (set by us, by `sttkb bt pair` elsewhere, or by its timeout)."""
        if open_ == self.pairing_window_open:
            return
        self.pairing_window_open = open_
        log.info("pairing window %s", "open: hosts can find and pair with the keyboard" if open_ else "closed")
        if not open_ and self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None
        await self._set_advertisement_discoverable(open_)
        if self.on_pairing_change is not None:
            try:
                self.on_pairing_change(open_)
            except Exception:  # noqa: BLE001 (a callback must not break the keyboard)
                log.exception("pairing LED callback failed")
        if not open_:
            self._finish_window(False)
            for path in list(self._devices):
                await self._apply_policy(path)

    def _finish_window(self, paired: bool) -> None:
        cb, self._on_done = self._on_done, None
        if cb is not None:
            try:
                cb(paired)
            except Exception:  # noqa: BLE001
                log.exception("pairing on_done callback failed")

    # ---- hosts ------------------------------------------------------------------------------------------------
    def hosts_now(self) -> list[Host]:
        """The devices BlueZ knows on this adapter (as last seen by the loop)."""
        return sorted((host_from_props(p, d) for p, d in self._devices.items()), key=lambda h: h.address)

    def hosts(self) -> list[Host]:
        return self.run(self._hosts())

    async def _hosts(self) -> list[Host]:
        return self.hosts_now()

    @property
    def connected_host(self) -> Host | None:
        for h in self.hosts_now():
            if h.connected and h.is_bonded:
                return h
        return None

    def forget(self, query: str) -> Host:
        """Remove a bonded host (its keys too); it must pair again to type."""
        return self.run(self._forget(query))

    async def _forget(self, query: str) -> Host:
        host = match_host(self.hosts_now(), query)
        assert self._bus is not None
        await bluez.call(self._bus, self.adapter_path, defs.ADAPTER, "RemoveDevice", "o", [host.path],
                         what=f"forget {host.address}")
        self._devices.pop(host.path, None)
        self.state.forget(host.address)
        self._update_ready()
        return host

    def use(self, query: str) -> Host:
        """Prefer this bonded host: disconnect any other, try to connect to it. Returns the host."""
        return self.run(self._use(query), 40.0)

    async def _use(self, query: str) -> Host:
        host = match_host(self.hosts_now(), query)
        self.state.set_preferred(host.address)
        assert self._bus is not None
        for other in self.hosts_now():
            if other.connected and other.path != host.path:
                await self._disconnect(other.path, "switching to " + host.address)
        await self._try_connect(host.path)
        return host

    async def _reconnect_last(self) -> None:
        self.state.reload()
        target = self.state.preferred or self.state.last
        if not target:
            return
        for h in self.hosts_now():
            if h.address == target and h.is_bonded and not h.connected:
                log.info("reconnecting to the last host %s (%s)", h.address, h.name)
                await self._try_connect(h.path)

    async def _try_connect(self, path: str) -> None:
        """Device1.Connect: works when the host is connectable; otherwise it reconnects to our advertisement."""
        assert self._bus is not None
        try:
            await asyncio.wait_for(bluez.call(self._bus, path, defs.DEVICE, "Connect", what=f"connect to {path}"),
                                   30.0)
        except (BluetoothError, asyncio.TimeoutError) as e:
            log.info("could not connect to %s (%s); waiting for it to reconnect", path, e)

    async def _disconnect(self, path: str, why: str) -> None:
        assert self._bus is not None
        log.warning("disconnecting %s: %s", path, why)
        try:
            await bluez.call(self._bus, path, defs.DEVICE, "Disconnect", what=f"disconnect {path}")
        except BluetoothError as e:
            log.info("disconnect %s: %s", path, e)

    def _is_bonded_path(self, path: str) -> bool:
        d = self._devices.get(path, {})
        return bool(d.get("Paired") or d.get("Bonded"))

    async def _apply_policy(self, path: str) -> None:
        self.state.reload()  # `sttkb bt use` in another process may have changed the preferred host
        d = self._devices.get(path)
        if d is None or not d.get("Connected"):
            return
        host = host_from_props(path, d)
        if not host.is_bonded:
            if not self.pairing_window_open:
                await self._disconnect(path, "not bonded and the pairing window is closed")
            return
        others = [h for h in self.hosts_now() if h.connected and h.is_bonded and h.path != path]
        if others:
            keep_new = host.address == self.state.preferred
            loser = others[0].path if keep_new else path
            await self._disconnect(loser, "one host at a time (`sttkb bt use HOST` picks which)")
            if not keep_new:
                return
        self.state.set_last(host.address)

    # ---- signals ----------------------------------------------------------------------------------------------
    def _on_signal(self, msg: Message) -> None:
        if msg.message_type != MessageType.SIGNAL or not msg.path:
            return None
        try:
            if msg.member == "PropertiesChanged" and msg.interface == defs.PROPERTIES:
                iface, changed = msg.body[0], bluez.unwrap(msg.body[1])
                if iface == defs.DEVICE and msg.path.startswith(self.adapter_path + "/"):
                    self._device_changed(msg.path, changed)
                elif (iface == defs.ADAPTER and msg.path == self.adapter_path and "Pairable" in changed
                      and self._setup_done):
                    self._spawn(self._window_changed(bool(changed["Pairable"])))
            elif msg.member == "InterfacesAdded" and msg.interface == defs.OBJECT_MANAGER:
                path, ifaces = msg.body[0], msg.body[1]
                if defs.DEVICE in ifaces and path.startswith(self.adapter_path + "/"):
                    self._devices[path] = {}
                    self._device_changed(path, bluez.unwrap(ifaces[defs.DEVICE]))
            elif msg.member == "InterfacesRemoved" and msg.interface == defs.OBJECT_MANAGER:
                path, ifaces = msg.body[0], msg.body[1]
                if defs.DEVICE in ifaces and self._devices.pop(path, None) is not None:
                    self._update_ready()
        except (IndexError, KeyError, TypeError) as e:
            log.debug("ignoring odd BlueZ signal %s: %s", msg.member, e)
        return None

    def _device_changed(self, path: str, changed: dict[str, Any]) -> None:
        d = self._devices.setdefault(path, {})
        was_bonded = bool(d.get("Paired") or d.get("Bonded"))
        d.update(changed)
        now_bonded = bool(d.get("Paired") or d.get("Bonded"))
        if changed.get("Connected"):
            self._connected_at[path] = time.monotonic()
        if "Connected" in changed:
            log.info("host %s %s", d.get("Address", path), "connected" if changed["Connected"] else "disconnected")
        if now_bonded and not was_bonded:
            self._spawn(self._paired(path))
        elif "Connected" in changed:
            self._spawn(self._apply_policy(path))
        self._update_ready()

    async def _paired(self, path: str) -> None:
        d = self._devices.get(path, {})
        address = str(d.get("Address", path))
        if not self.pairing_window_open:
            # Only possible through a race with the window closing; the kernel refuses bonding when not pairable.
            log.warning("host %s paired while the window was closed", address)
        log.info("paired with %s (%s)", address, d.get("Alias") or d.get("Name") or "no name")
        assert self._bus is not None
        try:
            await bluez.set_property(self._bus, path, defs.DEVICE, "Trusted", "b", True)
        except BluetoothError as e:
            log.info("could not mark %s trusted: %s", address, e)
        self.state.set_last(address)
        cb, self._on_done = self._on_done, None  # the window closes first, then on_done(True)
        if self.pairing_window_open:
            await self._set_window_properties(False, 0)
        self._on_done = cb
        self._finish_window(True)
        await self._apply_policy(path)

    # ---- typing -----------------------------------------------------------------------------------------------
    def _update_ready(self) -> None:
        """Recompute readiness (loop thread): a bonded host connected for ``settle_s`` and subscribed."""
        host = self.connected_host
        if host is None or not self.hid.subscribed:
            self._ready.clear()
            return
        wait = self._connected_at.get(host.path, 0.0) + self.settle_s - time.monotonic()
        if wait > 0:
            self._ready.clear()
            asyncio.get_running_loop().call_later(wait + 0.01, self._update_ready)
            return
        if not self._ready.is_set():
            log.info("host %s ready for keys", host.address)
            self._ready.set()
            for callback in self._on_ready:
                threading.Thread(target=callback, name="ble-host-ready", daemon=True).start()

    @property
    def ready(self) -> bool:
        """A bonded host is connected and subscribed to the input report."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on a thread of its own each time a host becomes ready for keys."""
        self._on_ready.append(callback)

    def remove_on_ready(self, callback: Callable[[], None]) -> None:
        if callback in self._on_ready:
            self._on_ready.remove(callback)

    async def notify(self, report: bytes, *, unready: bool = False) -> bool:
        """Send one input report if a bonded host listens; False otherwise (then it was not sent).

        ``unready=True`` sends it whenever a host is subscribed, ready or not: for the all-keys-up report after a
        host vanished (bluetoothd keeps the last value it could not send and sends it when the host is back)."""
        if not (self.ready or unready) or not self.hid.subscribed:
            return False
        tracker = self.monitor.tracker if self.monitor is not None else None
        if tracker is not None:
            tracker.handed_over(report)
        sent = self.hid.send_input(report)
        if not sent and tracker is not None:
            tracker.withdraw(report)
        return sent

    @property
    def leds(self) -> int:
        return self.hid.leds

    def transport(self, **kwargs: Any) -> "BleTransport":
        from sttkb.gadget.ble.transport import BleTransport
        return BleTransport(self, **kwargs)


"""What both Bluetooth keyboards (LE: :mod:`sttkb.gadget.ble.peripheral`, Classic:
:mod:`sttkb.gadget.bt_classic.peripheral`) do the same way with bluetoothd: one asyncio loop on a thread of its own
(dbus-fast is asyncio), the connection to the system bus and BlueZ's signals, the adapter, the devices on it, the
pairing agent and the pairing window (the adapter's Pairable/Discoverable are one window for both radios).

:class:`BluezPeripheral` is their base class. Its public methods are plain blocking calls, safe from any thread
(the daemon, the typist's thread, the CLI); what a keyboard publishes (a GATT application and an advertisement,
or an SDP record) and what it does when a host comes or goes are the subclass's.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Callable

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.adapter import Adapter
from sttkb.gadget.ble.agent import PairingAgent
from sttkb.gadget.ble.devices import DeviceTable
from sttkb.gadget.ble.errors import BluetoothError, BluezUnavailable
from sttkb.gadget.ble.hosts import Host, HostState
from sttkb.gadget.ble.loop_thread import LoopThread
from sttkb.gadget.ble.pairing_window import PairingWindowControl
from sttkb.gadget.ble.registrations import Registrations
from sttkb.keyboard import PasskeyRequest

log = logging.getLogger(__name__)


class BluezPeripheral:
    """A keyboard's agent and pairing window on one adapter. ``start()`` registers; ``close()`` undoes.

    ``settings`` is a :class:`sttkb.config.keyboard.BluetoothSettings` (name, adapter, pairing,
    pairing_timeout_s). ``on_pairing_change(open)`` is called (from the loop thread) when the window opens or
    closes: the LED layer hooks in there. ``bus_address`` selects a private bus (tests); default: the system bus.

    A subclass completes ``_setup()`` (it starts with :meth:`_connect`), handles ``_device_changed`` and may
    unregister its own objects in ``_unpublish``.
    """

    kind = "Bluetooth keyboard"
    """What the log calls this keyboard."""
    radio = ""
    """The ``[bluetooth] mode`` this keyboard serves ("le" | "classic"): kept per host when it pairs."""

    def __init__(self, settings: Any, *, state_dir: str | Path, bus_address: str | None, app_root: str,
                 on_pairing_change: Callable[[bool], None] | None, loop_name: str,
                 agent: PairingAgent | None = None) -> None:
        self.settings = settings
        self.state = HostState(state_dir)
        self.on_pairing_change = on_pairing_change
        self._bus_address = bus_address
        self.pairing_mode = getattr(settings, "pairing", "passkey")
        self._own_agent = agent is None
        """False: ``agent`` is the other keyboard's on the same adapter (``mode = "auto"``), registered by it."""
        self.agent = agent or PairingAgent(f"{app_root}/agent", is_open=lambda: self.pairing_window_open,
                                           is_bonded=lambda path: self._devices.is_bonded(path),
                                           mode=self.pairing_mode, describe=self._describe_host,
                                           secure_connections=self._secure_connections)
        self.bearer_of: Callable[[str], str | None] | None = None
        """With both keyboards on one adapter (``mode = "auto"``): which radio a host paired over ("le" |
        "classic"; None: cannot tell), so that only that keyboard keeps the bond. None: this keyboard keeps every
        bond (one keyboard)."""
        self._loop = LoopThread(loop_name)
        self._bus: MessageBus | None = None
        self._adapter: Adapter | None = None
        self._devices = DeviceTable("")
        self._window: PairingWindowControl | None = None
        self._registrations: Registrations | None = None

    # ---- life cycle -------------------------------------------------------------------------------------------
    def start(self, timeout: float = 20.0) -> "BluezPeripheral":
        """Connect to bluetoothd and register what this keyboard needs (blocks, seconds)."""
        if self._loop.running:
            return self
        self._loop.start()
        try:
            self._loop.run(self._setup(), timeout)
        except FutureTimeout as e:
            self.close()
            # Seen on a box without a Bluetooth controller: bluetooth.service is skipped, and D-Bus holds the
            # call while it tries to activate org.bluez.
            raise BluezUnavailable(f"bluetoothd did not answer within {timeout:g} s: is there a Bluetooth adapter "
                                   "and is bluetooth.service running? (`systemctl status bluetooth`)") from e
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> "BluezPeripheral":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Unregister from BlueZ, disconnect from D-Bus, stop the loop thread. Safe to call twice."""
        if not self._loop.running:
            return
        try:
            if self._bus is not None:
                self._loop.run(self._teardown(), 10.0)
        except (BluetoothError, FutureTimeout) as e:
            log.warning("%s teardown: %s", self.kind, e)
        self._loop.stop()

    @property
    def adapter_name(self) -> str:
        """BlueZ's name of the adapter in use (hci0), once started (the setting may name it by its address)."""
        return self._adapter.name if self._adapter is not None else ""

    async def _setup(self) -> None:
        raise NotImplementedError

    async def _connect(self) -> tuple[MessageBus, Registrations, dict[str, Any]]:
        """The first part of every ``_setup()``: connect to bluetoothd, watch its signals, find and prepare the
        adapter, close a window left open and register the pairing agent as the default one. Returns the bus, the
        registrations and the adapter's properties."""
        self._bus = bus = await bluez.connect_system_bus(self._bus_address)
        self._registrations = reg = Registrations(bus)
        bus.add_message_handler(self._on_signal)
        await bluez.call(bus, "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                         [f"type='signal',sender='{defs.BLUEZ_SERVICE}'"], destination="org.freedesktop.DBus",
                         what="watch BlueZ signals")
        self._adapter, objects = await Adapter.find(bus, self.settings.adapter)
        props = objects[self._adapter.path][defs.ADAPTER]
        self._devices = DeviceTable(self._adapter.path, objects)
        self._window = PairingWindowControl(self._adapter.set_pairing_window, self._window_changed,
                                            self._loop.spawn)
        await self._adapter.prepare(props, self.settings.name)
        # Whatever window was left open by a previous run is closed: pairing needs a fresh user action.
        await self._adapter.set_pairing_window(False)

        if self._own_agent:
            bus.export(self.agent.path, self.agent)
            await reg.register(defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "RegisterAgent", "os",
                               [self.agent.path, self.agent.capability], "register the pairing agent")
            await bluez.call(bus, defs.BLUEZ_ROOT, defs.AGENT_MANAGER, "RequestDefaultAgent", "o",
                             [self.agent.path], what="make sttkb the default pairing agent")
        return bus, reg, props

    async def _teardown(self) -> None:
        bus = self._bus
        assert bus is not None
        if self._adapter is not None and self._window is not None and self._window.is_open:
            await self._adapter.set_pairing_window(False)
        await self._unpublish(bus)
        if self._registrations is not None:
            await self._registrations.unregister_all()
        self._loop.cancel_tasks()
        bus.disconnect()
        self._bus = None

    async def _unpublish(self, bus: MessageBus) -> None:
        """Undo what the subclass registered outside :class:`Registrations` (teardown, loop thread)."""

    # ---- pairing window ---------------------------------------------------------------------------------------
    @property
    def pairing_window_open(self) -> bool:
        return self._window is not None and self._window.is_open

    def open_pairing_window(self, timeout_s: float | None = None,
                            on_done: Callable[[bool], None] | None = None) -> None:
        """Be discoverable and pairable for ``timeout_s`` seconds (default: settings); return once it is open
        (``on_pairing_change(True)`` has run).

        ``on_done(paired)`` is called once: True when a host paired (the window then closes), False when the
        window closed without one.
        """
        seconds = float(timeout_s if timeout_s is not None else self.settings.pairing_timeout_s)
        self._loop.run(self._window_control().open(seconds, on_done))

    def close_pairing_window(self) -> None:
        """Close the window now (``on_done(False)`` follows unless a host already paired)."""
        self._loop.run(self._window_control().close())

    def on_passkey_request(self, handler: Callable[[PasskeyRequest], None] | None) -> None:
        """``handler(request)`` gets the code a host shows while pairing (LE passkey entry or SSP passkey entry:
        the same agent and spoken-code path, :mod:`sttkb.gadget.ble.agent`)."""
        self.agent.passkey_handler = handler

    def _secure_connections(self) -> bool | None:
        """Whether the pairing under way is LE Secure Connections (None: cannot tell)."""
        return None

    def _window_control(self) -> PairingWindowControl:
        if self._window is None:
            raise BluetoothError("the Bluetooth keyboard is not started")
        return self._window

    async def _window_changed(self, open_: bool) -> None:
        if self.on_pairing_change is not None:
            try:
                self.on_pairing_change(open_)
            except Exception:  # noqa: BLE001 (a callback must not break the keyboard)
                log.exception("pairing LED callback failed")

    def _follows_adapter_window(self) -> bool:
        """Whether a Pairable change on the adapter (another process opening or closing the window) is followed
        now."""
        return True

    # ---- hosts ------------------------------------------------------------------------------------------------
    def hosts(self) -> list[Host]:
        """The devices BlueZ knows on this adapter, as the loop last saw them."""
        return self._loop.run(self._hosts())

    async def _hosts(self) -> list[Host]:
        return self._devices.hosts()

    def _describe_host(self, path: str) -> str:
        host = self._devices.host(path)
        return (host.name or host.address) if host is not None else path.rsplit("/", 1)[-1]

    def _pairing_method(self, host: Host, path: str) -> str:
        """How ``host`` (at ``path``) just paired: "passkey" when a code was entered through the agent, else
        "just-works"."""
        assert self._window is not None
        if not self._window.is_open:
            # Only possible through a race with the window closing; the kernel refuses bonding when not pairable.
            log.warning("host %s paired while the window was closed", host.address)
        method = "passkey" if path in self.agent.passkey_entered else "just-works"
        self.agent.passkey_entered.discard(path)
        return method

    def _bonded_here(self, host: Host) -> bool:
        """Whether this keyboard keeps ``host``'s new bond: always with one keyboard; with both on the adapter,
        the one of the radio the host paired over (the LE keyboard when that cannot be told)."""
        if self.bearer_of is None:
            return True
        radio = self.bearer_of(host.address) or "le"
        if radio != self.radio:
            log.debug("%s paired over %s: the other keyboard keeps it", host.address, radio)
        return radio == self.radio

    async def _keep_bond(self, host: Host, method: str) -> None:
        """Remember how ``host`` paired, trust it, make it the last host and close the window."""
        assert self._adapter is not None and self._window is not None
        self.state.set_pairing(host.address, method, self.radio or None)
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
                      and self._follows_adapter_window() and self._window is not None):
                    self._loop.spawn(self._window.follow(bool(changed["Pairable"])))
            elif msg.member == "InterfacesAdded" and msg.interface == defs.OBJECT_MANAGER:
                path, ifaces = msg.body[0], msg.body[1]
                if defs.DEVICE in ifaces and self._devices.owns(path):
                    self._device_changed(path, bluez.unwrap(ifaces[defs.DEVICE]))
            elif msg.member == "InterfacesRemoved" and msg.interface == defs.OBJECT_MANAGER:
                path, ifaces = msg.body[0], msg.body[1]
                if defs.DEVICE in ifaces:
                    self._device_removed(path)
        except (IndexError, KeyError, TypeError) as e:
            log.debug("ignoring odd BlueZ signal %s: %s", msg.member, e)
        return None

    def _device_changed(self, path: str, changed: dict[str, Any]) -> None:
        raise NotImplementedError

    def _device_removed(self, path: str) -> None:
        self._devices.remove(path)

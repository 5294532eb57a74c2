"""Thin async access to bluetoothd over the system D-Bus: one reply check, typed errors.

Every call to bluetoothd goes through :func:`call`, which passes the reply through :func:`check_reply`; that is the
one place where ``org.bluez.Error.*`` replies become :mod:`sttkb.gadget.ble.errors` exceptions with a next step.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from sttkb.gadget.ble import defs
from sttkb.gadget.ble.errors import AdapterNotFound, AlreadyExists, BluezCallFailed, BluezUnavailable, NotPermitted

log = logging.getLogger(__name__)

#: Hints appended to the message of an error reply, by D-Bus error name.
_HINTS = {
    defs.DBUS_SERVICE_UNKNOWN: "bluetoothd is not running. Start it: `sudo systemctl start bluetooth`.",
    defs.DBUS_ACCESS_DENIED: "D-Bus policy denied the call. Run sttkb as root or as a user in the "
                             "'bluetooth' group.",
    defs.DBUS_UNKNOWN_OBJECT: "The adapter or device is gone (unplugged, powered off, removed).",
    defs.ERR_NOT_READY: "The adapter is not powered. Power it: `bluetoothctl power on` "
                        "(is it blocked? `rfkill unblock bluetooth`).",
    defs.ERR_NOT_PERMITTED: "BlueZ does not allow this now.",
    defs.ERR_ALREADY_EXISTS: "It is already registered: is another sttkb running? (`sttkb status`)",
    defs.ERR_DOES_NOT_EXIST: "BlueZ does not know it (already removed?).",
}


def check_reply(reply: Message, what: str) -> Message:
    """Return ``reply`` if it is a method return; raise the fitting typed error for an error reply.

    ``what`` names the operation for the message ("register the GATT application on hci0").
    """
    if reply.message_type != MessageType.ERROR:
        return reply
    name = reply.error_name or "unknown"
    detail = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
    hint = _HINTS.get(name, "")
    message = f"cannot {what}: {name.removeprefix(defs.ERROR_PREFIX)}" + (f" ({detail})" if detail else "")
    if hint:
        message += f". {hint}"
    if name == defs.DBUS_SERVICE_UNKNOWN:
        raise BluezUnavailable(message)
    if name in (defs.DBUS_ACCESS_DENIED, defs.ERR_NOT_PERMITTED, defs.ERR_NOT_AUTHORIZED):
        raise NotPermitted(message)
    if name == defs.ERR_ALREADY_EXISTS:
        raise AlreadyExists(message)
    raise BluezCallFailed(message, dbus_error=name)


async def connect_system_bus(bus_address: str | None = None) -> MessageBus:
    """Connect to the system bus (or ``bus_address``, e.g. a test's private bus)."""
    address = bus_address or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    try:
        if address:
            return await MessageBus(bus_address=address).connect()
        return await MessageBus(bus_type=BusType.SYSTEM).connect()
    except (OSError, ValueError) as e:
        raise BluezUnavailable(f"cannot connect to the system D-Bus ({e}). Is dbus running?") from e


async def call(bus: MessageBus, path: str, interface: str, member: str, signature: str = "",
               body: list[Any] | None = None, *, what: str = "", destination: str = defs.BLUEZ_SERVICE) -> list[Any]:
    """Call a method on bluetoothd and return the reply body; raise a typed error for an error reply."""
    reply = await bus.call(Message(destination=destination, path=path, interface=interface, member=member,
                                   signature=signature, body=body or []))
    assert reply is not None
    return check_reply(reply, what or f"{interface.rsplit('.', 1)[-1]}.{member} on {path}").body


async def get_property(bus: MessageBus, path: str, interface: str, name: str) -> Any:
    """One property's value (unwrapped from its Variant)."""
    (value,) = await call(bus, path, defs.PROPERTIES, "Get", "ss", [interface, name],
                          what=f"read {name} of {path}")
    return value.value


async def set_property(bus: MessageBus, path: str, interface: str, name: str, signature: str, value: Any) -> None:
    """Set one property (``signature`` is its D-Bus type: 'b' for bool, 'u' for uint32, ...)."""
    await call(bus, path, defs.PROPERTIES, "Set", "ssv", [interface, name, Variant(signature, value)],
               what=f"set {name}={value!r} on {path}")


async def managed_objects(bus: MessageBus) -> dict[str, dict[str, dict[str, Any]]]:
    """bluetoothd's object tree as {path: {interface: {property: plain value}}}."""
    (objects,) = await call(bus, "/", defs.OBJECT_MANAGER, "GetManagedObjects",
                            what="list BlueZ objects")
    return {path: {iface: unwrap(props) for iface, props in ifaces.items()} for path, ifaces in objects.items()}


def unwrap(props: dict[str, Any]) -> dict[str, Any]:
    """{name: Variant} -> {name: value}."""
    return {k: (v.value if isinstance(v, Variant) else v) for k, v in props.items()}


def adapter_path(objects: dict[str, dict[str, Any]], adapter: str) -> str:
    """The object path of adapter ``adapter`` ('hci0' or its address); raise AdapterNotFound with the choices."""
    adapters = {path: ifaces[defs.ADAPTER] for path, ifaces in objects.items() if defs.ADAPTER in ifaces}
    for path, props in adapters.items():
        if path.rsplit("/", 1)[-1] == adapter or str(props.get("Address", "")).upper() == adapter.upper():
            return path
    have = ", ".join(p.rsplit("/", 1)[-1] for p in sorted(adapters)) or "none"
    raise AdapterNotFound(f"Bluetooth adapter {adapter!r} not found (present: {have}). Set [bluetooth] adapter "
                          f"in the config, or check `bluetoothctl list` / `rfkill list`.")

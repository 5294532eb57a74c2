"""The devices BlueZ knows on the keyboard's adapter, kept current from its signals. Pure: no I/O, no clock.

The peripheral feeds it the Device1 properties from GetManagedObjects, then every PropertiesChanged /
InterfacesAdded / InterfacesRemoved for a device under the adapter, and asks it who is connected and bonded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sttkb.gadget.ble import defs
from sttkb.gadget.ble.hosts import Host, host_from_props


@dataclass(frozen=True)
class DeviceChange:
    """What one update changed."""

    connected: bool | None = None
    """True/False when the link came up/went down; None when the update did not say."""
    bonded_now: bool = False
    """The device got its keys with this update (it just paired)."""


def _bonded(props: dict[str, Any]) -> bool:
    return bool(props.get("Paired") or props.get("Bonded"))


class DeviceTable:
    """Device1 properties by object path, for the devices under ``adapter_path``."""

    def __init__(self, adapter_path: str, objects: dict[str, dict[str, dict[str, Any]]] | None = None) -> None:
        self.adapter_path = adapter_path
        self._props: dict[str, dict[str, Any]] = {}
        for path, ifaces in (objects or {}).items():
            if defs.DEVICE in ifaces and self.owns(path):
                self._props[path] = dict(ifaces[defs.DEVICE])

    def owns(self, path: str) -> bool:
        """Is ``path`` a device object under this adapter?"""
        return path.startswith(self.adapter_path + "/")

    def update(self, path: str, changed: dict[str, Any]) -> DeviceChange:
        props = self._props.setdefault(path, {})
        was_bonded = _bonded(props)
        props.update(changed)
        connected = bool(changed["Connected"]) if "Connected" in changed else None
        return DeviceChange(connected=connected, bonded_now=_bonded(props) and not was_bonded)

    def remove(self, path: str) -> bool:
        """Forget a device BlueZ removed; True if it was known."""
        return self._props.pop(path, None) is not None

    @property
    def paths(self) -> list[str]:
        return list(self._props)

    def host(self, path: str) -> Host | None:
        props = self._props.get(path)
        return host_from_props(path, props) if props is not None else None

    def hosts(self) -> list[Host]:
        """Every device, sorted by address."""
        return sorted((host_from_props(p, d) for p, d in self._props.items()), key=lambda h: h.address)

    def is_bonded(self, path: str) -> bool:
        return _bonded(self._props.get(path, {}))

    @property
    def connected_host(self) -> Host | None:
        """The bonded host that is connected (the policy keeps it to one)."""
        return next((h for h in self.hosts() if h.connected and h.is_bonded), None)

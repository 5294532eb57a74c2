"""Bonded hosts: who they are (from BlueZ's Device1 objects), which one to prefer, and the state file.

The state file (``<state_dir>/bluetooth.json``, default /var/lib/sttkb) remembers the last host that was typed to
and the host chosen with `sttkb bt use`, so the keyboard reconnects to it after boot, and how each host paired
("passkey": the user entered the code it showed, an authenticated bond; "just-works": no code, not authenticated). Pure functions except
:class:`HostState` (a small JSON file, written atomically).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sttkb.gadget.ble import defs
from sttkb.gadget.ble.errors import BluetoothError, HostNotFound

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path("/var/lib/sttkb")
STATE_FILE = "bluetooth.json"
MAX_PACE_MS = 200.0
"""The slowest per-host pace `sttkb bt pace` accepts (milliseconds between two key reports)."""
SLOW_PACE_MS = 30.0
"""`sttkb bt pace HOST slow`: three times the default report interval, for a host that drops keys."""
RADIO_NAMES = {"le": "LE", "classic": "Classic"}
"""The radio a host paired over (as ``[bluetooth] mode``) → how `sttkb bt list` names it."""
MODE_NAMES = {**RADIO_NAMES, "auto": "LE and Classic"}
"""``[bluetooth] mode`` → the keyboard(s) it runs, as `sttkb bt status` and errors name them."""


@dataclass(frozen=True)
class Host:
    """A remote device BlueZ knows on our adapter."""

    path: str
    address: str
    name: str
    paired: bool
    bonded: bool
    connected: bool
    trusted: bool

    @property
    def is_bonded(self) -> bool:
        """Has stored keys: it may reconnect. (BlueZ < 5.63 has no "Bonded"; Paired is the best we have there.)"""
        return self.bonded or self.paired

    def describe(self, *, preferred: bool = False, last: bool = False, pairing: str | None = None,
                 pace_ms: float | None = None, radio: str | None = None) -> str:
        """One line for `sttkb bt list`; ``pairing`` is how it paired (:attr:`HostState.pairing`), if known;
        ``pace_ms`` its own pace (:attr:`HostState.pace`), if set; ``radio`` the keyboard it paired with
        (:attr:`HostState.radio`), if known."""
        how = {"passkey": "passkey (authenticated)", "just-works": "Just Works (not authenticated)"}.get(
            pairing or "", "paired before sttkb recorded how" if self.is_bonded else "")
        over = RADIO_NAMES.get(radio or "", "")
        flags = [w for w, on in (("connected", self.connected), ("bonded", self.is_bonded),
                                 (f"over {over}", bool(over)),
                                 ("preferred", preferred), ("last used", last), (how, bool(how)),
                                 (f"pace {pace_ms or 0:g} ms", pace_ms is not None)) if on]
        return f"{self.address}  {self.name or '(no name)'}" + (f"  [{', '.join(flags)}]" if flags else "")


def hosts_from_objects(objects: dict[str, dict[str, dict[str, Any]]], adapter_path: str) -> list[Host]:
    """The Device1 objects under ``adapter_path``, sorted by address. Values must already be unwrapped."""
    out = []
    for path, ifaces in objects.items():
        props = ifaces.get(defs.DEVICE)
        if props is None or props.get("Adapter", path.rsplit("/", 1)[0]) != adapter_path:
            continue
        out.append(host_from_props(path, props))
    return sorted(out, key=lambda h: h.address)


def host_from_props(path: str, props: dict[str, Any]) -> Host:
    return Host(path=path, address=str(props.get("Address", "")), name=str(props.get("Alias") or props.get("Name") or ""),
                paired=bool(props.get("Paired", False)), bonded=bool(props.get("Bonded", False)),
                connected=bool(props.get("Connected", False)), trusted=bool(props.get("Trusted", False)))


def match_host(hosts: list[Host], query: str) -> Host:
    """The bonded host whose address (any case, ':' or '_' or '-') or name equals ``query``; else a unique name prefix.

    Raise HostNotFound naming the bonded hosts when nothing or more than one matches.
    """
    bonded = [h for h in hosts if h.is_bonded]
    norm = query.strip().upper().replace("_", ":").replace("-", ":")
    exact = [h for h in bonded if h.address.upper() == norm or h.name.casefold() == query.strip().casefold()]
    if len(exact) == 1:
        return exact[0]
    prefix = [h for h in bonded if h.name.casefold().startswith(query.strip().casefold())]
    if len(exact) > 1 or (not exact and len(prefix) > 1):
        names = ", ".join(f"{h.address} ({h.name})" for h in (exact or prefix))
        raise HostNotFound(f"{query!r} matches several bonded hosts: {names}. Use the address.")
    if prefix:
        return prefix[0]
    have = ", ".join(f"{h.address} ({h.name})" for h in bonded) or "none — pair one with `sttkb bt pair`"
    raise HostNotFound(f"no bonded host matches {query!r}. Bonded hosts: {have}. See `sttkb bt list`.")


class HostState:
    """The remembered hosts: ``last`` (last host typed to) and ``preferred`` (`sttkb bt use`), by address,
    ``pairing``: address -> "passkey" | "just-works", ``radio``: address -> the keyboard it paired with ("le" |
    "classic", as ``[bluetooth] mode``), and ``pace``: address -> least milliseconds between two key reports to
    that host (its slow mode, `sttkb bt pace`; absent = [bluetooth] report_interval_ms)."""

    def __init__(self, state_dir: str | os.PathLike = DEFAULT_STATE_DIR) -> None:
        self.path = Path(state_dir) / STATE_FILE
        self.last: str | None = None
        self.preferred: str | None = None
        self.pairing: dict[str, str] = {}
        self.radio: dict[str, str] = {}
        self.pace: dict[str, float] = {}
        self._stamp: tuple[int, int] | None = None
        self._load()

    def reload(self) -> None:
        """Re-read the file (another sttkb process may have written it)."""
        self._load()

    def reload_if_changed(self) -> None:
        """Re-read the file if it changed on disk since it was last read or written (one stat)."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._load()

    def _load(self) -> None:
        try:
            st = self.path.stat()
            self._stamp = (st.st_mtime_ns, st.st_size)
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self._stamp = None
            return
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable state file %s (%s); it will be rewritten", self.path, e)
            return
        if isinstance(data, dict):
            self.last = data.get("last") if isinstance(data.get("last"), str) else None
            self.preferred = data.get("preferred") if isinstance(data.get("preferred"), str) else None
            pairing = data.get("pairing")
            self.pairing = {str(k): str(v) for k, v in pairing.items()} if isinstance(pairing, dict) else {}
            radio = data.get("radio")
            self.radio = {str(k): str(v) for k, v in radio.items()
                          if v in RADIO_NAMES} if isinstance(radio, dict) else {}
            pace = data.get("pace")
            self.pace = {str(k): float(v) for k, v in (pace.items() if isinstance(pace, dict) else ())
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= MAX_PACE_MS}

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"last": self.last, "preferred": self.preferred,
                                       "pairing": self.pairing, "radio": self.radio, "pace": self.pace}) + "\n",
                                      encoding="utf-8")
            os.replace(tmp, self.path)
            st = self.path.stat()
            self._stamp = (st.st_mtime_ns, st.st_size)
        except OSError as e:
            raise BluetoothError(f"cannot write the Bluetooth state file {self.path}: {e}. Check that the "
                                 f"directory is writable (state_dir / --state-dir).") from e

    def set_last(self, address: str) -> None:
        if self.last != address:
            self.last = address
            self.save()

    def set_preferred(self, address: str | None) -> None:
        self.preferred = address
        self.save()

    def set_pairing(self, address: str, method: str, radio: str | None = None) -> None:
        """How ``address`` bonded: "passkey" or "just-works", and with which keyboard ("le" | "classic")."""
        if self.pairing.get(address) != method or (radio is not None and self.radio.get(address) != radio):
            self.pairing[address] = method
            if radio is not None:
                self.radio[address] = radio
            self.save()

    def paired_over(self, address: str, radio: str) -> bool:
        """Whether ``address`` may use the ``radio`` keyboard: it paired over that radio, or it is not known over
        which (paired before sttkb recorded it). A host keeps to the radio it paired over."""
        return self.radio.get(address, radio) == radio

    def set_pace(self, address: str, ms: float | None) -> None:
        """``address``'s own least time between two key reports (ms); None = back to [bluetooth] report_interval_ms."""
        if ms is not None and not 0 <= ms <= MAX_PACE_MS:
            raise ValueError(f"a host's pace is 0..{MAX_PACE_MS:.0f} ms, got {ms}")
        if ms is None:
            if self.pace.pop(address, None) is None:
                return
        elif self.pace.get(address) == ms:
            return
        else:
            self.pace[address] = float(ms)
        self.save()

    def forget(self, address: str) -> None:
        changed = self.pairing.pop(address, None) is not None
        changed = self.radio.pop(address, None) is not None or changed
        changed = self.pace.pop(address, None) is not None or changed
        if self.last == address:
            self.last, changed = None, True
        if self.preferred == address:
            self.preferred, changed = None, True
        if changed:
            self.save()

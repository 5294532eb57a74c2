"""`sttkb check`: run on a laptop; find the sttkb keyboard with bleak and say what a host sees and what is wrong.

It runs on the computer to be typed into, not on the box, so it lives outside the box's Bluetooth runtime
(:mod:`sttkb.gadget.ble`), whose pure parts (BlueZ names, the report map reader, the BlueZ version) it reads.

Two halves: :func:`collect` (bleak: scan, connect, pair, read) fills a :class:`CheckReport`; :func:`analyze` is a
pure function from that report to the list of problems, each with what to do. Tests drive :func:`analyze`
directly; the VM test drives the whole thing against a real bluetoothd.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field

from sttkb.gadget.ble import defs
from sttkb.gadget.ble.bluez_version import installed_version
from sttkb.gadget.ble.report_map import parse_report_map
from sttkb.gadget.errors import Error

log = logging.getLogger(__name__)

APPEARANCE_HID_GENERIC = 0x03C0

BLUEZ_HOG_MULTI_NOTIFY_FIXED = (5, 67)
"""BlueZ releases before this one have a HID host (hog) that ignores ATT "Multiple Handle Value Notification"
PDUs; BlueZ fixed it in 5.67 ("hog-lib: Fix not handling BT_ATT_OP_HANDLE_NFY_MULT"). The box's own bluetoothd
sends its key reports that way to every host that says it accepts them, which BlueZ hosts do (see
docs/bluetooth.md: in the VM a BlueZ 5.66 host got no keys after a reconnect)."""


class CheckFailed(Error, ConnectionError):
    """`sttkb check` could not reach the keyboard at all (no adapter, not found, cannot connect)."""


@dataclass
class CheckReport:
    """What the check saw. None = could not be read (see ``errors``)."""

    name: str | None = None
    address: str | None = None
    rssi: int | None = None
    advertised_uuids: list[str] = field(default_factory=list)
    appearance: int | None = None
    connected: bool = False
    paired: bool | None = None
    services: list[str] = field(default_factory=list)
    report_map: bytes | None = None
    report_refs: list[tuple[int, int]] = field(default_factory=list)
    """(report ID, type) of every Report Reference descriptor in the HID service."""
    input_notify: bool | None = None
    battery: int | None = None
    pnp_id: bytes | None = None
    hid_information: bytes | None = None
    host_bluez: tuple[int, int] | None = None
    """BlueZ version of the computer running the check (Linux only; None elsewhere or unknown)."""
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = []
        if self.name is None and self.address is None:
            lines.append("keyboard: not found")
        else:
            lines.append(f"keyboard: {self.name or '(no name)'} {self.address or ''}"
                         + (f"  RSSI {self.rssi} dBm" if self.rssi is not None else ""))
            lines.append(f"advertises: HID {'yes' if defs.UUID_HID in self.advertised_uuids else 'NO'}"
                         + (f", appearance 0x{self.appearance:04X}" if self.appearance is not None else ""))
            lines.append(f"connected: {'yes' if self.connected else 'no'}; paired/bonded: "
                         f"{'?' if self.paired is None else ('yes' if self.paired else 'no')}")
        if self.services:
            lines.append("services: " + ", ".join(_service_name(u) for u in self.services))
        if self.report_map is not None:
            lines.append(f"report map: {len(self.report_map)} bytes — {parse_report_map(self.report_map).describe()}")
        if self.report_refs:
            lines.append("report references: " + ", ".join(
                f"id {rid} {['?', 'input', 'output', 'feature'][t] if t < 4 else t}" for rid, t in self.report_refs))
        if self.hid_information is not None and len(self.hid_information) >= 4:
            hi = self.hid_information
            lines.append(f"HID information: bcdHID {hi[1]:x}.{hi[0]:02x}, country {hi[2]}, flags 0x{hi[3]:02x}")
        if self.pnp_id is not None and len(self.pnp_id) == 7:
            p = self.pnp_id
            lines.append(f"PnP ID: source {p[0]} vendor 0x{p[1] | p[2] << 8:04X} product 0x{p[3] | p[4] << 8:04X} "
                         f"version 0x{p[5] | p[6] << 8:04X}")
        if self.battery is not None:
            lines.append(f"battery: {self.battery} %")
        if self.host_bluez is not None:
            lines.append(f"this computer: BlueZ {_version(self.host_bluez)}")
        for e in self.errors:
            lines.append(f"note: {e}")
        if self.problems:
            lines.append("PROBLEMS:")
            lines.extend(f"  - {p}" for p in self.problems)
        else:
            lines.append("OK: a host sees a bonded HID keyboard with LED output; it should type.")
        return "\n".join(lines)


def _service_name(uuid: str) -> str:
    return {defs.UUID_HID: "HID", defs.UUID_BATTERY: "Battery", defs.UUID_DEVICE_INFO: "Device Information",
            defs.uuid16(0x1800): "GAP", defs.uuid16(0x1801): "GATT"}.get(uuid, uuid)


def _version(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def local_bluez_version() -> tuple[int, int] | None:
    """The BlueZ version of this computer; None if not Linux or not found."""
    return installed_version() if sys.platform.startswith("linux") else None


def analyze(r: CheckReport) -> list[str]:
    """The problems a host would run into, each saying what to do. Pure."""
    out: list[str] = []
    if r.address is None:
        return ["no sttkb keyboard found. Open the pairing window on the box (hold the button, or `sttkb bt pair`), "
                "keep it within a few metres, and check that Bluetooth is on here. (This check looks for the LE "
                "keyboard; a box set to [bluetooth] mode = \"classic\" does not advertise over LE: pair it from "
                "this computer's Bluetooth settings instead)"]
    if r.host_bluez is not None and r.host_bluez < BLUEZ_HOG_MULTI_NOTIFY_FIXED:
        out.append(f"this computer runs BlueZ {_version(r.host_bluez)}: unless the distribution patched it, its "
                   f"keyboard driver (hog) ignores the combined notifications the box sends once this computer has "
                   f"said it accepts them (usually from the first reconnection on) — the keyboard stays connected "
                   f"but no keys arrive. Use the box as a Bluetooth Classic keyboard instead: on the box set "
                   f"[bluetooth] mode = \"classic\" in /etc/sttkb/config.toml and run `sudo systemctl daemon-reload "
                   f"&& sudo systemctl restart bluetooth sttkb`; here remove the keyboard from the Bluetooth settings; "
                   f"open the pairing window on the box (hold the button) and add it from the Bluetooth settings "
                   f"again. Or update BlueZ to {_version(BLUEZ_HOG_MULTI_NOTIFY_FIXED)} or newer (Ubuntu 24.04 and "
                   f"Debian 13 ship newer ones). USB works meanwhile")
    if defs.UUID_HID not in r.advertised_uuids:
        out.append("the advertisement does not carry the HID service UUID 0x1812: some hosts (iOS, Android) will "
                   "not list it as a keyboard. Is it really the sttkb box?")
    if r.appearance is not None and r.appearance not in (defs.APPEARANCE_KEYBOARD, APPEARANCE_HID_GENERIC):
        out.append(f"appearance 0x{r.appearance:04X} is not a keyboard (0x03C1)")
    if not r.connected:
        out.append("could not connect. If the box was paired with this computer before, remove it here and pair "
                   "again inside a pairing window; another host may hold the box (`sttkb bt use` on the box)")
        return out
    if r.services and defs.UUID_HID not in r.services:
        out.append("no HID service (0x1812): the sttkb daemon is not running on the box, or bluetoothd on this "
                   "computer hides it (Linux: its own HID host claimed it — then it already works as a keyboard)")
    if r.paired is False:
        out.append("not paired/bonded: the keys are only sent over an encrypted, bonded link. Pair inside a "
                   "pairing window (hold the button or `sttkb bt pair`, then pair from this computer)")
    if defs.UUID_HID in r.services and r.report_map is None:
        out.append("the Report Map cannot be read — usually not paired (encryption required) or the pairing was "
                   "refused because the window was closed")
    if r.report_map is not None:
        summary = parse_report_map(r.report_map)
        if summary.errors:
            out.append("the report map is malformed: " + "; ".join(summary.errors))
        if not summary.is_keyboard:
            out.append("the report map declares no keyboard collection")
        if not summary.led_output:
            out.append("the report map has no LED output report: Caps Lock state cannot reach the box")
        refs_in = {rid for rid, t in r.report_refs if t == defs.REPORT_TYPE_INPUT}
        if r.report_refs and refs_in != set(summary.input_bits):
            out.append(f"Report Reference IDs {sorted(refs_in)} do not match the report map's input reports "
                       f"{sorted(summary.input_bits)}: hosts (Windows) drop the keys")
    if defs.UUID_HID in r.services and r.input_notify is False:
        out.append("the input report cannot notify: the keys cannot reach this computer")
    if r.pnp_id is None and r.services:
        out.append("no PnP ID (Device Information): Windows and Android may treat it as a generic device "
                   "(set DeviceID in the box's bluetooth main.conf)")
    return out


async def collect(*, name: str | None = None, address: str | None = None, adapter: str | None = None,
                  scan_timeout: float = 15.0, pair: bool = True) -> CheckReport:
    """Scan, connect, (pair), read: everything a host would see. Needs bleak and a Bluetooth adapter."""
    try:
        from bleak import BleakClient, BleakScanner
        from bleak.exc import BleakError
    except ImportError as e:  # pragma: no cover - bleak is a dependency
        raise CheckFailed("`sttkb check` needs the bleak package: pip install bleak") from e
    report = CheckReport(host_bluez=local_bluez_version())
    kwargs = {"bluez": {"adapter": adapter}} if adapter else {}

    def match(dev, adv) -> bool:
        if address:
            return dev.address.upper() == address.upper()
        if name:
            return (adv.local_name or dev.name or "") == name
        return defs.UUID_HID in [u.lower() for u in adv.service_uuids]

    try:
        found = await BleakScanner.discover(timeout=scan_timeout, return_adv=True, **kwargs)
    except (BleakError, OSError) as e:
        raise CheckFailed(f"cannot scan for Bluetooth devices ({e}). Is Bluetooth on? (Linux: `bluetoothctl "
                          f"power on`, `rfkill unblock bluetooth`)") from e
    hit = next(((d, a) for d, a in found.values() if match(d, a)), None)
    if hit is None:
        report.problems = analyze(report)
        return report
    dev, adv = hit
    report.name = adv.local_name or dev.name
    report.address = dev.address
    report.rssi = adv.rssi
    report.advertised_uuids = [u.lower() for u in adv.service_uuids]
    report.appearance = _appearance(adv)
    try:
        async with BleakClient(dev, timeout=30.0, **kwargs) as client:
            report.connected = True
            if pair:
                try:
                    await client.pair()
                except (BleakError, NotImplementedError) as e:
                    report.errors.append(f"pairing: {e}")
            await _read_all(client, report)
            report.paired = await _is_paired(client, report)
    except (BleakError, asyncio.TimeoutError, OSError) as e:
        report.errors.append(f"connect: {e}")
    report.problems = analyze(report)
    return report


def _appearance(adv) -> int | None:
    data = getattr(adv, "platform_data", None)
    try:
        props = data[1] if data and len(data) > 1 and isinstance(data[1], dict) else {}
        value = props.get("Appearance")
        return int(value) if value is not None else None
    except (TypeError, ValueError, IndexError):
        return None


async def _read(client, char, report: CheckReport, what: str) -> bytes | None:
    try:
        return bytes(await client.read_gatt_char(char))
    except Exception as e:  # noqa: BLE001 - any read failure is a finding, not a crash
        report.errors.append(f"{what}: {e}")
        return None


async def _read_all(client, report: CheckReport) -> None:
    report.services = [s.uuid.lower() for s in client.services]
    for service in client.services:
        suuid = service.uuid.lower()
        for ch in service.characteristics:
            cuuid = ch.uuid.lower()
            if suuid == defs.UUID_HID and cuuid == defs.UUID_REPORT_MAP:
                report.report_map = await _read(client, ch, report, "report map")
            elif suuid == defs.UUID_HID and cuuid == defs.UUID_HID_INFORMATION:
                report.hid_information = await _read(client, ch, report, "HID information")
            elif suuid == defs.UUID_HID and cuuid == defs.UUID_REPORT:
                if "notify" in ch.properties:
                    report.input_notify = True
                elif report.input_notify is None:
                    report.input_notify = False
                for desc in ch.descriptors:
                    if desc.uuid.lower() == defs.UUID_REPORT_REFERENCE:
                        try:
                            value = bytes(await client.read_gatt_descriptor(desc.handle))
                            if len(value) >= 2:
                                report.report_refs.append((value[0], value[1]))
                        except Exception as e:  # noqa: BLE001
                            report.errors.append(f"report reference: {e}")
            elif suuid == defs.UUID_BATTERY and cuuid == defs.UUID_BATTERY_LEVEL:
                value = await _read(client, ch, report, "battery level")
                report.battery = value[0] if value else None
            elif suuid == defs.UUID_DEVICE_INFO and cuuid == defs.UUID_PNP_ID and report.pnp_id is None:
                report.pnp_id = await _read(client, ch, report, "PnP ID")


async def _is_paired(client, report: CheckReport) -> bool | None:
    """Paired state from BlueZ when bleak runs on Linux; else infer from the encrypted read having worked."""
    backend = getattr(client, "_backend", None)
    path = getattr(backend, "_device_path", None)
    if path:
        try:
            from bleak.backends.bluezdbus.manager import get_global_bluez_manager
            manager = await get_global_bluez_manager()
            return bool(manager.is_paired(path))
        except Exception:  # noqa: BLE001
            pass
    return True if report.report_map is not None else None


def run_check(**kwargs) -> CheckReport:
    """Blocking wrapper for the CLI."""
    return asyncio.run(collect(**kwargs))

"""The keyboard's GATT services: HID (0x1812) and Battery (0x180F).

Device Information (0x180A) with the PnP ID is served by bluetoothd itself from ``DeviceID`` in
services/bluetooth/main.conf (BlueZ always registers one; a second DIS from the app confused hosts, which then
see two PnP IDs).

Security (``security``): by default every HID and battery characteristic needs an *encrypted* link (BlueZ flags
``encrypt-read``, ``encrypt-write``, ``encrypt-notify``). A host that reads one unencrypted gets "Insufficient
Encryption" and starts pairing (iOS relies on this). That admits Just Works bonds, which hosts without a display
need. ``security="secure"`` (``[bluetooth] pairing = "passkey-only"``) uses BlueZ's ``secure-*`` flags instead: the
link must be encrypted with an authenticated LE Secure Connections key (a code was entered), so a Just Works or
legacy-pairing bond, even an old one, reads and subscribes to nothing.
"""

from __future__ import annotations

import logging
import struct
from typing import Callable

from sttkb.gadget.ble import defs
from sttkb.gadget.ble.gatt import GattCharacteristic, GattDescriptor, GattService
from sttkb.gadget.ble.report_map import parse_report_map
from sttkb.gadget.reports import ALL_KEYS_UP, REPORT_LENGTH

log = logging.getLogger(__name__)

HID_INFO_FLAG_REMOTE_WAKE = 0x01
HID_INFO_FLAG_NORMALLY_CONNECTABLE = 0x02

SECURITY = ("encrypt", "secure")
"""BlueZ flag prefixes: any encrypted link, or an authenticated Secure Connections one (see the module doc)."""


def hid_information(country_code: int = 0, flags: int = HID_INFO_FLAG_NORMALLY_CONNECTABLE) -> bytes:
    """HID Information value: bcdHID 1.11, country code, flags."""
    return struct.pack("<HBB", 0x0111, country_code, flags)


def report_reference(report_id: int, report_type: int) -> bytes:
    """Report Reference descriptor value: (report ID, 1 = input / 2 = output / 3 = feature)."""
    return bytes([report_id, report_type])


class HidServices:
    """The GATT objects of the keyboard under ``root`` (e.g. /org/sttkb/app), and what the host did to them.

    ``send_input(report)`` notifies a boot keyboard report on the characteristic that matches the protocol mode.
    ``leds`` is the last output report byte. ``on_subscription(subscribed)`` fires when the host starts/stops
    listening to the input report the keyboard currently uses.
    """

    def __init__(self, root: str, report_map: bytes, *, battery_level: int = 100, country_code: int = 0,
                 on_subscription: Callable[[bool], None] | None = None,
                 on_leds: Callable[[int], None] | None = None, security: str = "encrypt") -> None:
        if security not in SECURITY:
            raise ValueError(f"security {security!r}: choose one of {', '.join(SECURITY)}")
        read, write, notify = (f"{security}-{what}" for what in ("read", "write", "notify"))
        summary = parse_report_map(report_map)
        if summary.errors:
            raise ValueError(f"bad report map: {'; '.join(summary.errors)}")
        if not summary.input_bits:
            raise ValueError("the report map declares no input report")
        self.input_report_id = summary.input_report_ids()[0]
        self.output_report_id = summary.output_report_ids()[0] if summary.output_bits else None
        self.report_map = bytes(report_map)
        self.protocol_mode = defs.PROTOCOL_MODE_REPORT
        self.leds = 0
        self.suspended = False
        self._on_subscription = on_subscription
        self._on_leds = on_leds

        self.hid = GattService(f"{root}/service0", defs.UUID_HID)
        hid = self.hid
        GattCharacteristic(hid, 0, defs.UUID_HID_INFORMATION, [read], hid_information(country_code))
        GattCharacteristic(hid, 1, defs.UUID_REPORT_MAP, [read], self.report_map)
        self.protocol_mode_char = GattCharacteristic(
            hid, 2, defs.UUID_PROTOCOL_MODE, [read, "write-without-response"],
            bytes([defs.PROTOCOL_MODE_REPORT]), on_write=self._write_protocol_mode)
        GattCharacteristic(hid, 3, defs.UUID_HID_CONTROL_POINT, ["write-without-response"], b"\x00",
                           on_write=self._write_control_point)
        self.input_report = GattCharacteristic(
            hid, 4, defs.UUID_REPORT, [read, notify], ALL_KEYS_UP,
            on_notify_change=lambda on: self._notify_changed(defs.PROTOCOL_MODE_REPORT, on))
        GattDescriptor(self.input_report, 0, defs.UUID_REPORT_REFERENCE, ["read"],
                       report_reference(self.input_report_id, defs.REPORT_TYPE_INPUT))
        out_flags = [read, write, "write-without-response"]
        if self.output_report_id is not None:
            self.output_report = GattCharacteristic(hid, 5, defs.UUID_REPORT, out_flags, b"\x00",
                                                    on_write=self._write_leds)
            GattDescriptor(self.output_report, 0, defs.UUID_REPORT_REFERENCE, ["read"],
                           report_reference(self.output_report_id, defs.REPORT_TYPE_OUTPUT))
        self.boot_input = GattCharacteristic(
            hid, 6, defs.UUID_BOOT_KEYBOARD_INPUT, [read, notify], ALL_KEYS_UP,
            on_notify_change=lambda on: self._notify_changed(defs.PROTOCOL_MODE_BOOT, on))
        GattCharacteristic(hid, 7, defs.UUID_BOOT_KEYBOARD_OUTPUT, out_flags, b"\x00", on_write=self._write_leds)

        self.battery = GattService(f"{root}/service1", defs.UUID_BATTERY)
        self.battery_level = GattCharacteristic(self.battery, 0, defs.UUID_BATTERY_LEVEL,
                                                [read, notify], bytes([battery_level]))

    @property
    def services(self) -> list[GattService]:
        return [self.hid, self.battery]

    @property
    def active_input(self) -> GattCharacteristic:
        """The input characteristic the host reads keys from in the current protocol mode."""
        return self.boot_input if self.protocol_mode == defs.PROTOCOL_MODE_BOOT else self.input_report

    @property
    def subscribed(self) -> bool:
        return self.active_input.notifying

    def send_input(self, report: bytes) -> bool:
        """Notify one boot keyboard report (report IDs are not part of a HOGP value); False if nobody listens."""
        if len(report) != REPORT_LENGTH:
            raise ValueError(f"a keyboard input report has {REPORT_LENGTH} bytes, got {len(report)}")
        return self.active_input.notify(report)

    def _notify_changed(self, mode: int, on: bool) -> None:
        if mode == self.protocol_mode and self._on_subscription is not None:
            self._on_subscription(on)

    def _write_protocol_mode(self, value: bytes) -> None:
        if len(value) != 1 or value[0] not in (defs.PROTOCOL_MODE_BOOT, defs.PROTOCOL_MODE_REPORT):
            raise ValueError(f"protocol mode must be 0 or 1, got {value.hex()}")
        was = self.subscribed
        self.protocol_mode = value[0]
        log.info("host set protocol mode %s", "boot" if value[0] == defs.PROTOCOL_MODE_BOOT else "report")
        if self.subscribed != was and self._on_subscription is not None:
            self._on_subscription(self.subscribed)

    def _write_control_point(self, value: bytes) -> None:
        if len(value) != 1:
            raise ValueError("HID control point takes one byte")
        self.suspended = value[0] == defs.CONTROL_POINT_SUSPEND
        log.info("host %s", "suspended" if self.suspended else "exited suspend")

    def _write_leds(self, value: bytes) -> None:
        if len(value) < 1:
            raise ValueError("LED output report needs one byte")
        self.leds = value[0]
        log.debug("host LEDs 0x%02x", self.leds)
        if self._on_leds is not None:
            self._on_leds(self.leds)

"""The one place that builds keyboards from [keyboard], [usb] and [bluetooth] settings.

Every command that types (``sttkb run``, ``dictate``, ``type``) and the USB gadget commands come here, through the
composition root (``sttkb.cli``); nothing else constructs a typist, a transport or the gadget. The file-system roots
(configfs, sysfs) and the Bluetooth state directory are injectable, so tests build the same objects over a fake tree.

Kinds: ``usb`` (/dev/hidg0), ``bluetooth`` (through bluetoothd: BLE HID, Classic HID with
``[bluetooth] mode = "classic"``, both with "auto"), ``virtual`` (a simulated host in the
[keyboard] layout: simulate mode and tests), ``auto`` (the enabled ones of USB and Bluetooth, typing to whichever host
is connected; Bluetooth that cannot start leaves USB alone, with a warning).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from sttkb.config.keyboard import BluetoothSettings, KeyboardSettings, UsbSettings
from sttkb.errors import SttkbError
from sttkb.gadget.errors import TransportError
from sttkb.gadget.typist import Typist
from sttkb.gadget.usb.configfs import GadgetSpec, UsbGadget
from sttkb.gadget.usb.hidg import HidgTransport
from sttkb.gadget.virtual import VirtualTransport
from sttkb.keyboard import Keyboard, PairingWindow

log = logging.getLogger(__name__)

KINDS = ("auto", "usb", "bluetooth", "virtual")
USB_POLL_S = 0.001
"""How often a high-speed USB host polls the box's keyboard endpoint (f_hid's bInterval 4: 8 x 125 us)."""


@dataclass(frozen=True)
class Roots:
    """Where the keyboard side touches the system (tests and dev runs point these at a temporary tree)."""

    configfs: str = "/sys/kernel/config"
    sysfs: str = "/sys"
    bluetooth_state: str | None = None
    """Directory of the Bluetooth host list (None: $STATE_DIRECTORY or /var/lib/sttkb)."""


@dataclass
class Keyboards:
    """What :func:`build_keyboard` made."""

    keyboard: Keyboard
    """Types text to the host (a :class:`Typist`, or several behind ``FirstConnectedKeyboard``)."""
    pairing: PairingWindow | None = None
    """The Bluetooth side's pairing window, when Bluetooth is on."""
    virtual: VirtualTransport | None = None
    """kind "virtual": the simulated host (``.text`` is what it shows)."""

    def close(self) -> None:
        """Close the keyboard (all keys up, transports closed), then the Bluetooth peripheral (unregistered)."""
        try:
            self.keyboard.close()
        finally:
            close = getattr(self.pairing, "close", None)
            if close is not None:
                close()


def build_keyboard(kind: str, keyboard: KeyboardSettings, usb: UsbSettings, bluetooth: BluetoothSettings, *,
                   roots: Roots = Roots(), caps_lock: bool = False) -> Keyboards:
    """A keyboard of ``kind`` (see the module doc). Raises :class:`SttkbError` when none can be made."""
    if kind not in KINDS:
        raise ValueError(f"keyboard kind {kind!r}: choose one of {', '.join(KINDS)}")
    for name, section in (("usb", usb), ("bluetooth", bluetooth)):
        if kind == name and not section.enabled:
            raise SttkbError(f"a {name} keyboard was asked for but [{name}] enabled = false: set it to true, or "
                             f"choose another [keyboard] transport")
    if kind == "virtual":
        typist, transport = virtual_typist(keyboard, caps_lock=caps_lock)
        return Keyboards(typist, virtual=transport)
    if kind == "usb":
        return Keyboards(usb_typist(keyboard, usb, roots=roots))
    if kind == "bluetooth":
        typist, pairing = bluetooth_typist(keyboard, bluetooth, roots=roots)
        return Keyboards(typist, pairing=pairing)
    typists: list[Typist] = []
    pairing = None
    if usb.enabled:
        typists.append(usb_typist(keyboard, usb, roots=roots))
    if bluetooth.enabled:
        try:
            typist, pairing = bluetooth_typist(keyboard, bluetooth, roots=roots)
            typists.append(typist)
        except SttkbError as e:
            if not typists:
                raise
            log.warning("%s; typing over USB only", e)
    if not typists:
        raise SttkbError("no keyboard: enable [usb] or [bluetooth] (or set [keyboard] transport)")
    if len(typists) == 1:
        return Keyboards(typists[0], pairing=pairing)
    from sttkb.gadget.routing import FirstConnectedKeyboard
    return Keyboards(FirstConnectedKeyboard(typists), pairing=pairing)


def typist_over(transport, keyboard: KeyboardSettings) -> Typist:
    """A typist in the [keyboard] layout and pace over an opened transport."""
    return Typist(transport, keyboard.layout, keyboard.unmappable, keyboard.key_delay_ms / 1000.0)


# -- USB ---------------------------------------------------------------------------------------------------
def gadget_spec(usb: UsbSettings) -> GadgetSpec:
    return GadgetSpec(name=usb.gadget_name, vendor_id=usb.vendor_id, product_id=usb.product_id,
                      manufacturer=usb.manufacturer, product=usb.product, serial=usb.serial,
                      country_code=usb.country_code, max_power_ma=usb.max_power_ma,
                      serial_console=usb.serial_console)


def usb_gadget(usb: UsbSettings, *, roots: Roots = Roots()) -> UsbGadget:
    """The configfs gadget (``sttkb gadget up|down|status``)."""
    return UsbGadget(gadget_spec(usb), configfs_root=roots.configfs, sysfs_root=roots.sysfs)


def usb_transport(usb: UsbSettings, *, roots: Roots = Roots()) -> HidgTransport:
    return HidgTransport(usb.hidg_device, udc=usb.udc, sysfs_root=roots.sysfs, write_timeout_s=usb.write_timeout_s)


def usb_typist(keyboard: KeyboardSettings, usb: UsbSettings, *, roots: Roots = Roots()) -> Typist:
    return typist_over(usb_transport(usb, roots=roots), keyboard)


# -- Bluetooth ---------------------------------------------------------------------------------------------
def bluetooth_typist(keyboard: KeyboardSettings, bluetooth: BluetoothSettings, *,
                     roots: Roots = Roots()) -> tuple[Keyboard, PairingWindow]:
    """Start the Bluetooth keyboard of ``[bluetooth] mode`` (le: HID over GATT; classic: BR/EDR HID; auto: both,
    typing to whichever host is connected) and a typist over it. Raises when bluetoothd or the adapter is
    missing."""
    kw = {} if roots.bluetooth_state is None else {"state_dir": roots.bluetooth_state}
    try:
        if bluetooth.mode == "auto":
            from sttkb.gadget.both_radios import keyboard_for_waiting_text, open_both_keyboards
            from sttkb.gadget.routing import FirstConnectedKeyboard
            both, le, classic = open_both_keyboards(bluetooth, **kw)
            waiting = functools.partial(keyboard_for_waiting_text, both.le.state)
            return FirstConnectedKeyboard([typist_over(le, keyboard), typist_over(classic, keyboard)],
                                          waiting=waiting), both
        if bluetooth.mode == "classic":
            from sttkb.gadget.bt_classic.keyboard import open_classic_keyboard as open_keyboard
        else:
            from sttkb.gadget.ble.keyboard import open_ble_keyboard as open_keyboard
        peripheral, transport = open_keyboard(bluetooth, **kw)
    except SttkbError as e:
        from sttkb.gadget.ble.hosts import MODE_NAMES
        raise TransportError(f"the Bluetooth {MODE_NAMES[bluetooth.mode]} keyboard cannot start: {e}") from e
    return typist_over(transport, keyboard), peripheral


# -- simulated host ----------------------------------------------------------------------------------------
def virtual_typist(keyboard: KeyboardSettings, *, caps_lock: bool = False) -> tuple[Typist, VirtualTransport]:
    """A typist whose host is simulated (``transport.text`` is what it typed), at the configured pace, the host
    taking one report per millisecond as a high-speed USB host polls the box's keyboard."""
    transport = VirtualTransport(keyboard.layout, caps_lock=caps_lock, poll_interval_s=USB_POLL_S)
    return typist_over(transport, keyboard), transport

"""Build the keyboard side from settings: the one place that turns [keyboard]/[usb] into objects.

Used by ``sttkb type``/``sttkb gadget`` and by the daemon (through device/cli, the composition root).
"""

from __future__ import annotations

from sttkb.gadget.typist import Typist
from sttkb.gadget.usb.configfs import GadgetSpec, UsbGadget
from sttkb.gadget.usb.hidg import HidgTransport
from sttkb.gadget.virtual import VirtualTransport


def gadget_spec(usb) -> GadgetSpec:
    """A :class:`GadgetSpec` from ``[usb]`` settings (sttkb.config.keyboard.UsbSettings)."""
    return GadgetSpec(name=usb.gadget_name, vendor_id=usb.vendor_id, product_id=usb.product_id,
                      manufacturer=usb.manufacturer, product=usb.product, serial=usb.serial,
                      country_code=usb.country_code, max_power_ma=usb.max_power_ma,
                      serial_console=usb.serial_console)


def usb_gadget(usb, *, configfs_root: str = "/sys/kernel/config", sysfs_root: str = "/sys") -> UsbGadget:
    return UsbGadget(gadget_spec(usb), configfs_root=configfs_root, sysfs_root=sysfs_root)


def usb_transport(usb, *, sysfs_root: str = "/sys") -> HidgTransport:
    return HidgTransport(usb.hidg_device, udc=usb.udc, sysfs_root=sysfs_root, write_timeout_s=usb.write_timeout_s)


def usb_typist(keyboard, usb, *, sysfs_root: str = "/sys") -> Typist:
    """The USB keyboard (implements sttkb.keyboard.Keyboard): a Typist over /dev/hidg0."""
    return Typist(usb_transport(usb, sysfs_root=sysfs_root), keyboard.layout, keyboard.unmappable,
                  keyboard.key_delay_ms / 1000.0)


def virtual_typist(keyboard, *, caps_lock: bool = False) -> tuple[Typist, VirtualTransport]:
    """A Typist whose host is simulated (``transport.text`` is what it typed): simulate mode and tests."""
    transport = VirtualTransport(keyboard.layout, caps_lock=caps_lock)
    return Typist(transport, keyboard.layout, keyboard.unmappable, 0.0), transport

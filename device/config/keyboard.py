"""[keyboard], [usb] and [bluetooth] settings: how text becomes keystrokes on the host."""

from __future__ import annotations

from dataclasses import dataclass

from sttkb.config.schema import setting


@dataclass(frozen=True)
class KeyboardSettings:
    layout: str = setting("us", "The HOST's keyboard layout as XKB names: 'us', 'de', 'fr', 'gb', 'us(intl)', ...")
    unmappable: str = setting("transliterate", "Characters the layout cannot type",
                              choices=("transliterate", "skip", "linux-unicode"))
    transport: str = setting("auto", "Where to type: auto (whichever host is connected), usb, bluetooth",
                             choices=("auto", "usb", "bluetooth"))
    key_delay_ms: float = setting(0.0, "Least time between two HID reports (milliseconds). 0 = as fast as the host "
                                       "takes them: over USB each report waits for the host to poll it (at most one "
                                       "per millisecond), over Bluetooth [bluetooth] report_interval_ms applies. "
                                       "Slow mode for a host that drops or repeats keys: 10", min=0.0, max=200.0)


@dataclass(frozen=True)
class UsbSettings:
    enabled: bool = setting(True, "Present a USB keyboard (configfs HID gadget)")
    gadget_name: str = setting("sttkb", "configfs gadget directory name")
    udc: str = setting("", "USB device controller; empty = the first in /sys/class/udc")
    vendor_id: int = setting(0x1D6B, "USB idVendor", min=0, max=0xFFFF)
    product_id: int = setting(0x0104, "USB idProduct", min=0, max=0xFFFF)
    manufacturer: str = setting("sttkb", "USB manufacturer string")
    product: str = setting("sttkb speech keyboard", "USB product string")
    serial: str = setting("", "USB serial number; empty = derived from the board's serial")
    country_code: int = setting(0, "HID bCountryCode (0 = not localized, 33 = US, 9 = German, ...)",
                                min=0, max=35)
    max_power_ma: int = setting(250, "bMaxPower (milliamps)", min=2, max=500)
    serial_console: bool = setting(False, "Add a CDC-ACM serial console function")
    hidg_device: str = setting("/dev/hidg0", "HID gadget device node")
    write_timeout_s: float = setting(1.0, "Wait for the host to take a report before pausing (seconds)",
                                     min=0.05, max=30.0)


@dataclass(frozen=True)
class BluetoothSettings:
    enabled: bool = setting(True, "Present a Bluetooth keyboard (through BlueZ)")
    mode: str = setting("le", "Which Bluetooth keyboard: le (Bluetooth Low Energy, HID over GATT: phones, tablets, "
                        "Windows, macOS, Linux with BlueZ 5.67 or newer), classic (BR/EDR HID, as older "
                        "keyboards: Linux laptops with an older BlueZ, such as Debian 12 or Ubuntu 22.04) or auto "
                        "(both at once, each host keeping to the one it paired over; its LE half is not verified "
                        "yet, docs/bluetooth.md). Hosts paired over one must pair again after a change to the other", choices=("le", "classic", "auto"))
    name: str = setting("sttkb keyboard", "Name shown to hosts while pairing")
    adapter: str = setting("hci0", "BlueZ adapter")
    pairing_timeout_s: float = setting(120.0, "How long a pairing window stays open (seconds)",
                                       min=10.0, max=600.0)
    pairing: str = setting("passkey", "How hosts pair: passkey (the user says the code a host shows; Just Works for "
                           "hosts without a display), passkey-only (refuse Just Works, Secure Connections only), "
                           "just-works (no code)", choices=("passkey", "passkey-only", "just-works"))
    reconnect: bool = setting(True, "Reconnect to the last host after boot")
    report_interval_ms: float = setting(10.0, "Least time between two key reports over Bluetooth (milliseconds)",
                                        min=0.0, max=100.0)
    reconnect_settle_s: float = setting(1.0, "After a host reconnects, wait this long before typing to it (seconds)",
                                        min=0.0, max=10.0)

"""Create and remove the USB gadget through configfs (libcomposite): a HID boot keyboard, optionally a serial console.

Layout written under ``<configfs>/usb_gadget/<name>/``::

    idVendor idProduct bcdUSB bcdDevice  strings/0x409/{manufacturer,product,serialnumber}
    functions/hid.usb0/{protocol=1,subclass=1,report_length=8,report_desc}   (+ functions/acm.usb0)
    configs/c.1/{MaxPower,bmAttributes,strings/0x409/configuration}  + links to the functions
    UDC = the controller's name (binding = "plugging in")

Both :meth:`UsbGadget.up` and :meth:`UsbGadget.down` are idempotent. Roots are injectable: tests build the same
tree in a temporary directory (where files are plain files) and, in the qemu VM, against the real configfs.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import os
import shutil
from pathlib import Path

from sttkb.gadget.errors import GadgetError
from sttkb.gadget.reports import REPORT_DESCRIPTOR, REPORT_LENGTH
from sttkb.gadget.usb.hidg import udc_names, udc_state

log = logging.getLogger(__name__)

HID_FUNCTION = "hid.usb0"
ACM_FUNCTION = "acm.usb0"
CONFIG = "c.1"
LANG = "0x409"


@dataclasses.dataclass(frozen=True)
class GadgetSpec:
    """What the gadget looks like to the host (see [usb] in the config)."""

    name: str = "sttkb"
    vendor_id: int = 0x1D6B
    product_id: int = 0x0104
    manufacturer: str = "sttkb"
    product: str = "sttkb speech keyboard"
    serial: str = ""
    """Empty = derived from the board (see :func:`device_serial`)."""
    country_code: int = 0
    max_power_ma: int = 250
    serial_console: bool = False
    bcd_usb: int = 0x0200
    bcd_device: int = 0x0100


@dataclasses.dataclass(frozen=True)
class GadgetStatus:
    exists: bool
    udc: str
    """The controller the gadget is bound to ("" = not bound)."""
    state: str
    """The UDC's state: "not attached", "configured", "suspended", ... ("" if not bound)."""
    functions: tuple[str, ...]
    hidg_device: str
    """The HID function's device node (e.g. /dev/hidg0), "" if unknown."""

    def describe(self) -> str:
        if not self.exists:
            return "USB gadget: not set up (run `sttkb gadget up`)"
        if not self.udc:
            return f"USB gadget: set up but not bound to a controller ({', '.join(self.functions)})"
        return (f"USB gadget: bound to {self.udc}, state {self.state or 'unknown'}; "
                f"functions {', '.join(self.functions)}; keyboard device {self.hidg_device or 'unknown'}")


def device_serial(proc_root: Path = Path("/proc"), etc_root: Path = Path("/etc")) -> str:
    """A stable per-device serial number: the board's (device tree) serial, else a hash of /etc/machine-id."""
    try:
        raw = (proc_root / "device-tree" / "serial-number").read_bytes().strip(b"\0\n ")
        serial = raw.decode("ascii", "replace").strip()
        if serial:
            return serial.lstrip("0") or serial
    except OSError:
        pass
    try:
        machine_id = (etc_root / "machine-id").read_text().strip()
        if machine_id:
            return hashlib.sha256(b"sttkb-usb-serial:" + machine_id.encode()).hexdigest()[:16]
    except OSError:
        pass
    return "0000000000000001"


class UsbGadget:
    """One configfs gadget. ``configfs_root`` is where configfs is mounted; ``sysfs_root`` holds class/udc."""

    def __init__(self, spec: GadgetSpec, *, configfs_root: str | os.PathLike = "/sys/kernel/config",
                 sysfs_root: str | os.PathLike = "/sys", proc_root: str | os.PathLike = "/proc",
                 etc_root: str | os.PathLike = "/etc", dev_root: str | os.PathLike = "/dev") -> None:
        self.spec = spec
        self.configfs_root = Path(configfs_root)
        self.sysfs_root = Path(sysfs_root)
        self.proc_root = Path(proc_root)
        self.etc_root = Path(etc_root)
        self.dev_root = Path(dev_root)
        self.path = self.configfs_root / "usb_gadget" / spec.name

    # ---- helpers ----------------------------------------------------------------------------------------
    def _write(self, rel: str, value: str | bytes) -> None:
        path = self.path / rel
        try:
            if isinstance(value, bytes):
                path.write_bytes(value)
            else:
                path.write_text(value + "\n" if value and not value.endswith("\n") else value)
        except OSError as e:
            raise GadgetError(f"cannot write {path}: {e.strerror}"
                              + (" (the gadget is bound: run `sttkb gadget down` first)"
                                 if e.errno == errno.EBUSY else "")) from e

    def _read(self, rel: str) -> str:
        try:
            return (self.path / rel).read_text().strip()
        except OSError:
            return ""

    def _mkdir(self, rel: str) -> None:
        try:
            (self.path / rel).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GadgetError(f"cannot create {self.path / rel}: {e.strerror}. Is libcomposite loaded "
                              f"(modprobe libcomposite) and are you root?") from e

    def _rmdir(self, path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            return
        try:
            if path.is_symlink():
                path.unlink()
            else:
                path.rmdir()
        except OSError as e:
            if e.errno == errno.ENOTEMPTY and not os.path.ismount(self.configfs_root):
                shutil.rmtree(path)  # a fake tree in tests: attribute files are plain files
            else:
                raise GadgetError(f"cannot remove {path}: {e.strerror}") from e

    # ---- public -----------------------------------------------------------------------------------------
    def choose_udc(self, name: str = "") -> str:
        """``name`` if that controller exists, else (name empty) the first in /sys/class/udc."""
        names = udc_names(self.sysfs_root)
        if name:
            if name not in names:
                raise GadgetError(f"USB device controller {name!r} not found; present: {', '.join(names) or 'none'}."
                                  " Leave [usb] udc empty to use the first one")
            return name
        if not names:
            raise GadgetError("no USB device controller in /sys/class/udc: on a Raspberry Pi add "
                              "dtoverlay=dwc2 to /boot/firmware/config.txt (Pi 5: dtoverlay=dwc2,dr_mode=peripheral), "
                              "load dwc2 and libcomposite, and use the USB port that supports device mode")
        return names[0]

    def bound_udc(self) -> str:
        return self._read("UDC")

    def up(self, udc: str = "") -> str:
        """Create (or complete) the gadget and bind it to a controller; returns the controller's name."""
        if not (self.configfs_root / "usb_gadget").is_dir():
            raise GadgetError(f"{self.configfs_root / 'usb_gadget'} does not exist: run `modprobe libcomposite` "
                              f"and make sure configfs is mounted at {self.configfs_root}")
        bound = self.bound_udc() if self.path.exists() else ""
        if bound:
            if udc and udc != bound:
                raise GadgetError(f"the gadget is bound to {bound}, not {udc}: run `sttkb gadget down` first")
            log.info("USB gadget %s is already up on %s", self.spec.name, bound)
            return bound
        target = self.choose_udc(udc)
        self._build()
        self._write("UDC", target)
        log.info("USB gadget %s bound to %s", self.spec.name, target)
        return target

    def _build(self) -> None:
        s = self.spec
        self._mkdir("")
        self._write("idVendor", f"0x{s.vendor_id:04x}")
        self._write("idProduct", f"0x{s.product_id:04x}")
        self._write("bcdUSB", f"0x{s.bcd_usb:04x}")
        self._write("bcdDevice", f"0x{s.bcd_device:04x}")
        self._mkdir(f"strings/{LANG}")
        self._write(f"strings/{LANG}/manufacturer", s.manufacturer)
        self._write(f"strings/{LANG}/product", s.product)
        self._write(f"strings/{LANG}/serialnumber", s.serial or device_serial(self.proc_root, self.etc_root))
        self._mkdir(f"configs/{CONFIG}/strings/{LANG}")
        self._write(f"configs/{CONFIG}/strings/{LANG}/configuration", "Keyboard")
        self._write(f"configs/{CONFIG}/MaxPower", str(s.max_power_ma))
        self._write(f"configs/{CONFIG}/bmAttributes", "0x80")
        hid = f"functions/{HID_FUNCTION}"
        self._mkdir(hid)
        self._write(f"{hid}/protocol", "1")
        self._write(f"{hid}/subclass", "1")
        self._write(f"{hid}/report_length", str(REPORT_LENGTH))
        self._write(f"{hid}/report_desc", REPORT_DESCRIPTOR)
        if s.country_code:
            if (self.path / hid / "country_code").exists() or not os.path.ismount(self.configfs_root):
                self._write(f"{hid}/country_code", f"0x{s.country_code:02x}")
            else:
                log.warning("this kernel's HID gadget function has no country_code attribute; "
                            "the keyboard reports country code 0 (not localized)")
        functions = [HID_FUNCTION]
        if s.serial_console:
            self._mkdir(f"functions/{ACM_FUNCTION}")
            functions.append(ACM_FUNCTION)
        else:
            self._unlink_function(ACM_FUNCTION)
        for fn in functions:
            link = self.path / "configs" / CONFIG / fn
            if not link.is_symlink():
                try:
                    link.symlink_to(self.path / "functions" / fn)
                except OSError as e:
                    raise GadgetError(f"cannot link {fn} into {CONFIG}: {e.strerror}") from e

    def _unlink_function(self, fn: str) -> None:
        self._rmdir(self.path / "configs" / CONFIG / fn)
        self._rmdir(self.path / "functions" / fn)

    def down(self) -> None:
        """Unbind (the host sees the keyboard unplugged) and remove the gadget; nothing to do if it's gone."""
        if not self.path.exists():
            return
        if self.bound_udc():
            self._write("UDC", "")
        config = self.path / "configs" / CONFIG
        if config.exists():
            for entry in sorted(config.iterdir()):
                if entry.is_symlink():
                    entry.unlink()
            self._rmdir(config / "strings" / LANG)
            self._rmdir(config)
        functions = self.path / "functions"
        if functions.exists():
            for fn in sorted(functions.iterdir()):
                self._rmdir(fn)
        self._rmdir(self.path / "strings" / LANG)
        self._rmdir(self.path)
        log.info("USB gadget %s removed", self.spec.name)

    def hidg_device(self) -> str:
        """The /dev node of the HID function, found through its major:minor ("" if unknown)."""
        dev = self._read(f"functions/{HID_FUNCTION}/dev")
        if not dev:
            return ""
        try:
            uevent = (self.sysfs_root / "dev" / "char" / dev / "uevent").read_text()
        except OSError:
            return ""
        for line in uevent.splitlines():
            if line.startswith("DEVNAME="):
                return str(self.dev_root / line.split("=", 1)[1])
        return ""

    def status(self) -> GadgetStatus:
        if not self.path.exists():
            return GadgetStatus(False, "", "", (), "")
        functions = self.path / "functions"
        names = tuple(sorted(p.name for p in functions.iterdir())) if functions.exists() else ()
        udc = self.bound_udc()
        state = udc_state(udc, self.sysfs_root) if udc else ""
        return GadgetStatus(True, udc, state, names, self.hidg_device())

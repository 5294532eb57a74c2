"""The configfs gadget against a fake tree (plain directories standing in for configfs and sysfs).
The real configfs + dummy_hcd run is in test_usb_vm.py."""

from __future__ import annotations


import pytest

from sttkb.gadget.errors import GadgetError
from sttkb.gadget.reports import REPORT_DESCRIPTOR
from sttkb.gadget.usb.configfs import GadgetSpec, UsbGadget, device_serial


@pytest.fixture
def roots(tmp_path):
    configfs = tmp_path / "config"
    (configfs / "usb_gadget").mkdir(parents=True)
    sysfs = tmp_path / "sys"
    for udc in ("fe980000.usb", "dummy_udc.0"):
        (sysfs / "class" / "udc" / udc).mkdir(parents=True)
        (sysfs / "class" / "udc" / udc / "state").write_text("configured\n")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return configfs, sysfs, tmp_path / "proc", etc


def gadget(roots, **spec) -> UsbGadget:
    configfs, sysfs, proc, etc = roots
    return UsbGadget(GadgetSpec(**spec), configfs_root=configfs, sysfs_root=sysfs, proc_root=proc, etc_root=etc)


def test_up_writes_a_boot_keyboard_and_binds_the_first_udc(roots):
    g = gadget(roots, vendor_id=0x1234, product_id=0xABCD, product="My keyboard", max_power_ma=100)
    assert g.up() == "dummy_udc.0"  # sorted: the first in /sys/class/udc
    p = g.path
    assert (p / "idVendor").read_text() == "0x1234\n"
    assert (p / "idProduct").read_text() == "0xabcd\n"
    assert (p / "bcdUSB").read_text() == "0x0200\n"
    assert (p / "strings/0x409/product").read_text() == "My keyboard\n"
    hid = p / "functions/hid.usb0"
    assert (hid / "protocol").read_text() == "1\n" and (hid / "subclass").read_text() == "1\n"
    assert (hid / "report_length").read_text() == "8\n"
    assert (hid / "report_desc").read_bytes() == REPORT_DESCRIPTOR
    assert (p / "configs/c.1/MaxPower").read_text() == "100\n"
    assert (p / "configs/c.1/hid.usb0").resolve() == hid.resolve()
    assert not (p / "functions/acm.usb0").exists()
    assert (p / "UDC").read_text() == "dummy_udc.0\n"
    st = g.status()
    assert (st.exists, st.udc, st.state, st.functions) == (True, "dummy_udc.0", "configured", ("hid.usb0",))
    assert "configured" in st.describe()


def test_up_is_idempotent_and_down_removes_everything_twice_safely(roots):
    g = gadget(roots)
    g.up()
    assert g.up() == "dummy_udc.0"
    g.down()
    assert not g.path.exists()
    g.down()
    assert g.status().describe().startswith("USB gadget: not set up")


def test_udc_by_name_and_unknown_udc_lists_the_present_ones(roots):
    g = gadget(roots)
    assert g.up("fe980000.usb") == "fe980000.usb"
    g.down()
    with pytest.raises(GadgetError, match="present: dummy_udc.0, fe980000.usb"):
        g.up("nope.usb")


def test_no_udc_and_no_configfs_say_what_to_do(roots, tmp_path):
    configfs, sysfs, proc, etc = roots
    for udc in (sysfs / "class" / "udc").iterdir():
        (udc / "state").unlink()
        udc.rmdir()
    with pytest.raises(GadgetError, match="dtoverlay=dwc2"):
        gadget(roots).up()
    bare = UsbGadget(GadgetSpec(), configfs_root=tmp_path / "nothing", sysfs_root=sysfs)
    with pytest.raises(GadgetError, match="modprobe libcomposite"):
        bare.up()


def test_serial_console_is_optional_and_country_code_is_written(roots):
    g = gadget(roots, serial_console=True, country_code=9)
    g.up()
    assert (g.path / "configs/c.1/acm.usb0").is_symlink()
    assert (g.path / "functions/hid.usb0/country_code").read_text() == "0x09\n"
    g.down()
    assert not g.path.exists()


def test_serial_number_from_device_tree_else_machine_id(roots, tmp_path):
    configfs, sysfs, proc, etc = roots
    from_machine_id = device_serial(proc, etc)
    assert len(from_machine_id) == 16 and from_machine_id == device_serial(proc, etc)
    (proc / "device-tree").mkdir(parents=True)
    (proc / "device-tree" / "serial-number").write_bytes(b"00000000a1b2c3d4\0")
    assert device_serial(proc, etc) == "a1b2c3d4"
    g = gadget(roots)
    g.up()
    assert (g.path / "strings/0x409/serialnumber").read_text() == "a1b2c3d4\n"
    g.down()
    g2 = gadget(roots, serial="MY-SERIAL")
    g2.up()
    assert (g2.path / "strings/0x409/serialnumber").read_text() == "MY-SERIAL\n"
    assert device_serial(tmp_path / "none", tmp_path / "none") == "0000000000000001"

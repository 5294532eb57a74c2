"""Pure parts of the BLE keyboard: report map reading, check diagnosis, host matching, state file, BlueZ replies."""

from __future__ import annotations

import json

import pytest
from dbus_fast import Message, MessageType

from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.ble.check import CheckReport, analyze, parse_bluez_version
from sttkb.gadget.ble.errors import (AdapterNotFound, AlreadyExists, BluezCallFailed, BluezUnavailable,
                               BluezVersionError, HostNotFound, NotPermitted)
from sttkb.gadget.ble.hid_service import hid_information, report_reference
from sttkb.gadget.ble.hosts import Host, HostState, match_host
from sttkb.gadget.ble.report_map import parse_report_map
from sttkb.gadget.reports import REPORT_DESCRIPTOR


def test_report_map_of_the_usb_descriptor_is_a_keyboard_with_leds():
    s = parse_report_map(REPORT_DESCRIPTOR)
    assert s.errors == []
    assert s.is_keyboard
    assert s.input_bits == {0: 64} and s.output_bits == {0: 8}
    assert s.led_output
    assert s.describe() == "keyboard; input report id 0: 8 bytes; output report id 0: 1 byte (LEDs)"


def test_report_map_with_report_ids_and_no_leds():
    desc = bytes([0x05, 0x01, 0x09, 0x06, 0xA1, 0x01, 0x85, 0x01, 0x75, 0x08, 0x95, 0x08, 0x81, 0x00, 0xC0])
    s = parse_report_map(desc)
    assert s.input_bits == {1: 64} and not s.output_bits and not s.led_output and s.is_keyboard


@pytest.mark.parametrize("bad, error", [
    (REPORT_DESCRIPTOR[:-1], "not closed"),
    (REPORT_DESCRIPTOR[:3], "runs past the end"),
    (bytes([0xC0]), "End Collection without Collection"),
])
def test_malformed_report_maps_are_listed_not_raised(bad, error):
    assert any(error in e for e in parse_report_map(bad).errors)


def test_hid_information_and_report_reference_bytes():
    assert hid_information() == bytes([0x11, 0x01, 0x00, 0x02])
    assert report_reference(0, defs.REPORT_TYPE_INPUT) == b"\x00\x01"


def good_report(**changes) -> CheckReport:
    r = CheckReport(name="sttkb keyboard", address="AA:BB:CC:DD:EE:FF", advertised_uuids=[defs.UUID_HID],
                    appearance=0x03C1, connected=True, paired=True,
                    services=[defs.UUID_HID, defs.UUID_BATTERY, defs.UUID_DEVICE_INFO],
                    report_map=REPORT_DESCRIPTOR, report_refs=[(0, 1), (0, 2)], input_notify=True, battery=100,
                    pnp_id=bytes([2, 0x6B, 0x1D, 4, 1, 0, 1]))
    for k, v in changes.items():
        setattr(r, k, v)
    return r


def test_check_finds_nothing_wrong_with_the_real_keyboard():
    r = good_report()
    assert analyze(r) == []
    assert "OK" in r.render() and "PnP ID: source 2 vendor 0x1D6B product 0x0104" in r.render()


@pytest.mark.parametrize("changes, words", [
    ({"address": None, "name": None}, "no sttkb keyboard found"),
    ({"advertised_uuids": []}, "HID service UUID"),
    ({"connected": False}, "could not connect"),
    ({"services": [defs.UUID_BATTERY]}, "no HID service"),
    ({"paired": False, "report_map": None}, "not paired"),
    ({"report_map": REPORT_DESCRIPTOR.replace(bytes([0x91, 0x02]), bytes([0x91, 0x01]))}, "no LED output"),
    ({"report_refs": [(1, 1)]}, "do not match"),
    ({"input_notify": False}, "cannot notify"),
    ({"pnp_id": None}, "PnP ID"),
    ({"host_bluez": (5, 66)}, "Update BlueZ to 5.67"),
])
def test_check_names_each_problem(changes, words):
    problems = analyze(good_report(**changes))
    assert any(words in p for p in problems), problems


@pytest.mark.parametrize("version", [(5, 67), (5, 72), (6, 0)])
def test_check_is_quiet_about_a_bluez_that_handles_combined_notifications(version):
    assert analyze(good_report(host_bluez=version)) == []


@pytest.mark.parametrize("text, version", [
    ("5.66\n", (5, 66)), ("bluetoothctl: 5.72\n", (5, 72)), ("5.7", (5, 7)), ("5.66.1", (5, 66)),
    ("", None), ("bluetoothctl: unknown", None),
])
def test_bluez_version_from_the_tools_output(text, version):
    assert parse_bluez_version(text) == version


def hosts() -> list[Host]:
    def h(addr, name, bonded=True):
        return Host(f"/org/bluez/hci0/dev_{addr.replace(':', '_')}", addr, name, bonded, bonded, False, bonded)
    return [h("11:22:33:44:55:66", "Laptop"), h("AA:BB:CC:DD:EE:01", "Phone"),
            h("AA:BB:CC:DD:EE:02", "Phone 2"), h("AA:BB:CC:DD:EE:03", "Stranger", bonded=False)]


def test_match_host_by_address_name_and_prefix():
    assert match_host(hosts(), "11_22_33_44_55_66").name == "Laptop"
    assert match_host(hosts(), "laptop").address == "11:22:33:44:55:66"
    assert match_host(hosts(), "Phone").address == "AA:BB:CC:DD:EE:01"  # exact name beats prefix
    assert match_host(hosts(), "lap").name == "Laptop"
    with pytest.raises(HostNotFound, match="several"):
        match_host(hosts(), "Pho")
    with pytest.raises(HostNotFound, match="Bonded hosts: 11:22"):
        match_host(hosts(), "Stranger")  # not bonded: not a host


def test_host_state_survives_restarts_and_forgets(tmp_path):
    s = HostState(tmp_path)
    s.set_last("11:22:33:44:55:66")
    s.set_preferred("AA:BB:CC:DD:EE:01")
    again = HostState(tmp_path)
    assert (again.last, again.preferred) == ("11:22:33:44:55:66", "AA:BB:CC:DD:EE:01")
    again.forget("AA:BB:CC:DD:EE:01")
    assert json.loads((tmp_path / "bluetooth.json").read_text()) == {"last": "11:22:33:44:55:66", "preferred": None}
    (tmp_path / "bluetooth.json").write_text("{not json")
    assert HostState(tmp_path).last is None  # unreadable file: ignored, rewritten on next change


def error_reply(name: str, text: str = "detail") -> Message:
    call = Message(destination="org.bluez", path="/", interface="x.y", member="M", serial=1)
    return Message.new_error(call, name, text)


@pytest.mark.parametrize("name, exc, words", [
    (defs.DBUS_SERVICE_UNKNOWN, BluezUnavailable, "systemctl start bluetooth"),
    (defs.DBUS_ACCESS_DENIED, NotPermitted, "root"),
    (defs.ERR_NOT_PERMITTED, NotPermitted, "does not allow"),
    (defs.ERR_ALREADY_EXISTS, AlreadyExists, "another sttkb"),
    (defs.ERR_NOT_READY, BluezCallFailed, "power on"),
    (defs.ERR_FAILED, BluezCallFailed, "Failed (detail)"),
])
def test_error_replies_become_typed_errors_that_say_what_to_do(name, exc, words):
    with pytest.raises(exc, match=words.replace("(", r"\(").replace(")", r"\)")) as e:
        bluez.check_reply(error_reply(name), "do the thing")
    assert "cannot do the thing" in str(e.value)


def test_a_method_return_passes():
    call = Message(destination="org.bluez", path="/", interface="x.y", member="M", serial=1)
    reply = Message.new_method_return(call, "s", ["ok"])
    assert bluez.check_reply(reply, "x") is reply
    assert reply.message_type == MessageType.METHOD_RETURN


def test_bluez_version_check():
    assert bluez.parse_version("bluetoothctl: 5.66") == (5, 66)
    bluez.check_bluez_version((5, 66))
    bluez.check_bluez_version(None)  # unknown: warn, go on
    with pytest.raises(BluezVersionError, match="5.50 is too old"):
        bluez.check_bluez_version((5, 50))


def test_bluez_version_from_the_installed_tool(monkeypatch):
    class Done:
        stdout, stderr = "5.66\n", ""
    monkeypatch.setattr(bluez.shutil, "which", lambda name: "/usr/sbin/" + name)
    assert bluez.bluez_version(run=lambda *a, **k: Done()) == (5, 66)

    def broken(*a, **k):
        raise OSError("no such file")
    assert bluez.bluez_version(run=broken) is None


def test_unknown_adapter_lists_the_present_ones():
    objects = {"/org/bluez/hci0": {defs.ADAPTER: {"Address": "00:11:22:33:44:55"}}}
    assert bluez.adapter_path(objects, "00:11:22:33:44:55") == "/org/bluez/hci0"
    with pytest.raises(AdapterNotFound, match="present: hci0"):
        bluez.adapter_path(objects, "hci1")

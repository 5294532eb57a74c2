"""Pure parts of the BLE keyboard: report map reading, host matching, state file, BlueZ replies and version."""

from __future__ import annotations

import json

import pytest
from dbus_fast import Message, MessageType

from sttkb.gadget.ble import bluez, bluez_version, defs
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
    again.set_pairing("11:22:33:44:55:66", "passkey")
    again.set_pairing("AA:BB:CC:DD:EE:01", "just-works", "classic")
    assert HostState(tmp_path).pairing == {"11:22:33:44:55:66": "passkey", "AA:BB:CC:DD:EE:01": "just-works"}
    assert HostState(tmp_path).radio == {"AA:BB:CC:DD:EE:01": "classic"}
    again.set_pairing("11:22:33:44:55:66", "passkey", "le")   # the same method, now over LE: kept too
    assert HostState(tmp_path).radio == {"AA:BB:CC:DD:EE:01": "classic", "11:22:33:44:55:66": "le"}
    again.forget("AA:BB:CC:DD:EE:01")
    assert json.loads((tmp_path / "bluetooth.json").read_text()) == {
        "last": "11:22:33:44:55:66", "preferred": None, "pairing": {"11:22:33:44:55:66": "passkey"},
        "radio": {"11:22:33:44:55:66": "le"}, "pace": {}}
    (tmp_path / "bluetooth.json").write_text("{not json")
    assert HostState(tmp_path).last is None  # unreadable file: ignored, rewritten on next change


def test_a_hosts_own_pace_is_kept_seen_by_a_running_daemon_and_forgotten_with_the_host(tmp_path):
    daemon = HostState(tmp_path)                   # the daemon's copy, made before the user set anything
    cli = HostState(tmp_path)
    cli.set_pace("11:22:33:44:55:66", 30)
    daemon.reload_if_changed()
    assert daemon.pace == {"11:22:33:44:55:66": 30.0}
    cli.set_pace("11:22:33:44:55:66", None)
    daemon.reload_if_changed()
    assert daemon.pace == {}
    with pytest.raises(ValueError, match="0..200 ms"):
        cli.set_pace("11:22:33:44:55:66", 500)
    cli.set_pace("AA:BB:CC:DD:EE:01", 45)
    cli.forget("AA:BB:CC:DD:EE:01")
    assert HostState(tmp_path).pace == {}
    (tmp_path / "bluetooth.json").write_text('{"pace": {"a": "fast", "b": -3, "c": true, "d": 12}}')
    assert HostState(tmp_path).pace == {"d": 12.0}   # hand-edited nonsense is ignored, not obeyed


def test_bt_list_line_shows_a_hosts_own_pace():
    host = Host(path="/org/bluez/hci0/dev_11", address="11:22:33:44:55:66", name="laptop", paired=True,
                bonded=True, connected=False, trusted=True)
    assert "pace 30 ms" in host.describe(pace_ms=30.0)
    assert "pace" not in host.describe()


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
    bluez_version.check_supported((5, 66))
    bluez_version.check_supported(None)  # unknown: warn, go on
    with pytest.raises(BluezVersionError, match="5.50 is too old"):
        bluez_version.check_supported((5, 50))


@pytest.mark.parametrize("text, version", [
    ("5.66\n", (5, 66)), ("bluetoothctl: 5.72\n", (5, 72)), ("5.7", (5, 7)), ("5.66.1", (5, 66)),
    ("", None), ("bluetoothctl: unknown", None),
])
def test_bluez_version_from_the_tools_output(text, version):
    assert bluez_version.parse_version(text) == version


def test_bluez_version_from_the_installed_tool(monkeypatch):
    class Done:
        stdout, stderr = "5.66\n", ""
    monkeypatch.setattr(bluez_version.shutil, "which", lambda name: "/usr/sbin/" + name)
    assert bluez_version.installed_version(run=lambda *a, **k: Done()) == (5, 66)

    def broken(*a, **k):
        raise OSError("no such file")
    assert bluez_version.installed_version(run=broken) is None


def test_unknown_adapter_lists_the_present_ones():
    objects = {"/org/bluez/hci0": {defs.ADAPTER: {"Address": "00:11:22:33:44:55"}}}
    assert bluez.adapter_path(objects, "00:11:22:33:44:55") == "/org/bluez/hci0"
    with pytest.raises(AdapterNotFound, match="present: hci0"):
        bluez.adapter_path(objects, "hci1")

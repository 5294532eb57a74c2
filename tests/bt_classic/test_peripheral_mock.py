"""ClassicPeripheral against python-dbusmock's bluez5 template (no Bluetooth controller on this machine): what it
registers with bluetoothd (the HID record through ProfileManager1, the agent), the pairing window on the adapter,
bonded hosts, and the undoing on close. Radio, SDP and pairing are in test_classic_vm.py (real bluetoothd)."""

from __future__ import annotations

import dbus
import pytest

from sttkb.config.keyboard import BluetoothSettings
from sttkb.gadget.ble import defs
from sttkb.gadget.ble.hosts import HostState
from sttkb.gadget.bt_classic.peripheral import PROFILE_UUID, ClassicPeripheral
from sttkb.gadget.bt_classic.sdp_record import HidRecord, record_xml
from tests.polling import wait_for

HOST = "11:22:33:44:55:66"


@pytest.fixture
def classic(bluez, system_bus, tmp_path):
    changes: list[bool] = []
    kb = ClassicPeripheral(BluetoothSettings(name="test keyboard", pairing="just-works"),
                           bus_address=system_bus.address, state_dir=tmp_path, on_pairing_change=changes.append)
    kb.pairing_changes = changes
    kb.start()
    yield kb
    kb.close()


def test_start_publishes_the_hid_record_and_registers_the_agent(bluez, classic):
    (call,) = bluez.calls("/org/bluez", "RegisterProfile")
    path, uuid, options = call
    assert (str(path), str(uuid)) == (classic.profile.path, PROFILE_UUID), "sttkb's own, not 0x1124 (see there)"
    assert str(options["Role"]) == "server", "bluetoothd publishes the record and listens on nothing itself"
    assert "PSM" not in options and "Channel" not in options
    assert str(options["ServiceRecord"]) == record_xml(HidRecord(name="test keyboard"))
    assert bool(options["RequireAuthentication"]) and not bool(options["RequireAuthorization"])
    assert bluez.calls("/org/bluez", "RegisterAgent") == [(classic.agent.path, "NoInputNoOutput")]
    assert not bluez.adapter_prop("Pairable") and not bluez.adapter_prop("Discoverable")
    assert bluez.adapter_prop("Alias") == "test keyboard"
    assert classic.address == str(bluez.adapter_prop("Address"))
    assert classic.record_published is False, "the mock lists no HID UUID: the keyboard says so"

    classic.close()
    assert bluez.calls("/org/bluez", "UnregisterProfile") == [(classic.profile.path,)]
    assert bluez.calls("/org/bluez", "UnregisterAgent") == [(classic.agent.path,)]


def test_pairing_window_and_bonded_hosts(bluez, classic):
    classic.open_pairing_window(30.0)
    assert bluez.adapter_prop("Pairable") and bluez.adapter_prop("Discoverable")
    assert classic.pairing_changes == [True]
    assert classic.is_bonded(HOST) is False and classic.reconnect_target() is None
    done: list[bool] = []
    classic.open_pairing_window(30.0, done.append)
    bluez.bluez.AddDevice("hci0", HOST, "laptop")
    bluez.bluez.PairDevice("hci0", HOST)
    dev = bluez.conn.get_object("org.bluez", "/org/bluez/hci0/dev_" + HOST.replace(":", "_"))
    assert not wait_for(lambda: done, 0.5), "paired without a stored key (no Bonded): not a host of ours"
    assert classic.is_bonded(HOST) is False
    mock = dbus.Interface(dev, "org.freedesktop.DBus.Mock")   # the template has no Device1.Bonded (5.63+)
    mock.AddProperty(defs.DEVICE, "Bonded", False)
    mock.UpdateProperties(defs.DEVICE, {"Bonded": True})
    assert wait_for(lambda: done == [True], 5.0), "a host that bonds closes the window"
    assert not bluez.adapter_prop("Pairable")
    assert classic.is_bonded(HOST) and classic.is_bonded(HOST.lower())
    assert classic.reconnect_target() == HOST, "the host that just paired is the one to reconnect to"
    assert dev.Get(defs.DEVICE, "Trusted", dbus_interface=defs.PROPERTIES)
    assert HostState(classic.state.path.parent).radio == {HOST: "classic"}, "`sttkb bt list` shows it paired over Classic"

    classic.forget(HOST)   # the host unplugged the virtual cable
    assert wait_for(lambda: not classic.is_bonded(HOST), 5.0)
    with pytest.raises(dbus.exceptions.DBusException):
        dev.Get(defs.DEVICE, "Paired", dbus_interface=defs.PROPERTIES)

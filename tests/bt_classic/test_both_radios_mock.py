"""``[bluetooth] mode = "auto"``: the LE and the Classic keyboard on one adapter, against python-dbusmock's bluez5
template (no Bluetooth controller on this machine, so no HCI monitor either: the monitor socket here is a
socketpair fed with HCI monitor frames as the kernel writes them — the one part that is stood in for). What is
checked: one agent for both, one window for both that ends once, each new host kept by the keyboard of the radio
it paired over (recorded for `sttkb bt list`), and no Classic HID channel for a host that paired over LE.
Both radios with a real bluetoothd and real hosts: tests/bt_classic/test_classic_vm.py."""

from __future__ import annotations

import socket
import struct

import dbus
import pytest

from sttkb.config.keyboard import BluetoothSettings
from sttkb.gadget.ble import defs
from sttkb.gadget.bt_classic.bearer_watch import BearerWatch
from sttkb.gadget.ble.hci_monitor import HciMonitor
from sttkb.gadget.ble.hosts import HostState
from sttkb.gadget.ble.peripheral import BlePeripheral
from sttkb.gadget.both_radios import BothRadios, OneResult, keyboard_for_waiting_text
from sttkb.gadget.bt_classic.peripheral import ClassicPeripheral
from tests.polling import wait_for

CLASSIC_HOST = "11:22:33:44:55:66"
LE_HOST = "AA:BB:CC:DD:EE:01"
MON_EVENT_PKT = 3


def link_key_notification(address: str, index: int = 0) -> bytes:
    """An HCI Link Key Notification event (Core spec Vol 4 Part E 7.7.24) as the monitor channel carries it: the
    6-byte monitor header (opcode 3 = event, controller index, length), then event code 0x18, parameter length 23,
    BD_ADDR least significant byte first, the 16-byte key, the key type (0x07: authenticated P-256)."""
    event = bytes([0x18, 23]) + bytes(reversed(bytes.fromhex(address.replace(":", "")))) + bytes(range(16)) + b"\x07"
    return struct.pack("<HHH", MON_EVENT_PKT, index, len(event)) + event


@pytest.fixture
def both(bluez, system_bus, tmp_path):
    changes: list[bool] = []
    settings = BluetoothSettings(name="test keyboard", mode="auto", pairing="just-works")
    le = BlePeripheral(settings, bus_address=system_bus.address, state_dir=tmp_path, check_version=False,
                       on_pairing_change=changes.append).start()
    classic = ClassicPeripheral(settings, bus_address=system_bus.address, state_dir=tmp_path,
                                agent=le.agent).start()
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    radios = BothRadios(le, classic, HciMonitor(ours.detach(), BearerWatch(0)))
    le.bearer_of = classic.bearer_of = radios.bearer_of
    radios.kernel = kernel
    radios.led = changes
    yield radios
    radios.close()
    kernel.close()


def bond(bluez, address: str, name: str) -> None:
    bluez.bluez.AddDevice("hci0", address, name)
    bluez.bluez.PairDevice("hci0", address)
    dev = bluez.conn.get_object("org.bluez", "/org/bluez/hci0/dev_" + address.replace(":", "_"))
    mock = dbus.Interface(dev, "org.freedesktop.DBus.Mock")   # the template has no Device1.Bonded (5.63+)
    mock.AddProperty(defs.DEVICE, "Bonded", False)
    mock.UpdateProperties(defs.DEVICE, {"Bonded": True})


def test_one_agent_serves_both_keyboards(bluez, both):
    assert bluez.calls("/org/bluez", "RegisterAgent") == [(both.le.agent.path, "NoInputNoOutput")]
    assert both.classic.agent is both.le.agent
    both.close()
    assert bluez.calls("/org/bluez", "UnregisterAgent") == [(both.le.agent.path,)]
    assert bluez.calls("/org/bluez", "UnregisterProfile") == [(both.classic.profile.path,)]


def test_each_host_keeps_to_the_radio_it_paired_over(bluez, both, tmp_path):
    done: list[bool] = []
    both.open_pairing_window(30.0, done.append)
    assert bluez.adapter_prop("Pairable") and bluez.adapter_prop("Discoverable")
    assert both.pairing_window_open and both.le.pairing_window_open and both.classic.pairing_window_open
    assert both.led == [True]

    both.kernel.send(link_key_notification(CLASSIC_HOST))     # the controller's BR/EDR pairing ended with a key
    bond(bluez, CLASSIC_HOST, "old laptop")
    assert wait_for(lambda: done, 5.0)
    assert not wait_for(lambda: len(done) > 1, 0.5), "one window, one end"
    assert done == [True], "the window ends once, with the host"
    assert not bluez.adapter_prop("Pairable") and not both.pairing_window_open
    assert wait_for(lambda: HostState(tmp_path).radio == {CLASSIC_HOST: "classic"}, 5.0)
    assert both.classic.is_bonded(CLASSIC_HOST), "the Classic keyboard lets it open HID channels"
    assert both.classic.reconnect_target() == CLASSIC_HOST

    done.clear()
    both.open_pairing_window(30.0, done.append)
    bond(bluez, LE_HOST, "phone")                              # no link key: an LE pairing
    assert wait_for(lambda: done == [True], 5.0)
    state = HostState(tmp_path)
    assert state.radio == {CLASSIC_HOST: "classic", LE_HOST: "le"}
    assert state.last == LE_HOST
    assert not both.classic.is_bonded(LE_HOST), "a host that paired over LE gets no Classic HID channel"
    assert both.classic.reconnect_target() is None, "the last host is an LE one: the Classic keyboard does not page it"
    assert keyboard_for_waiting_text(state) == 0, "text waits on the LE keyboard for the LE host"
    state.set_preferred(CLASSIC_HOST)
    assert keyboard_for_waiting_text(state) == 1, "...and on the Classic one once the Classic host is preferred"
    assert both.classic.reconnect_target() == CLASSIC_HOST


def test_a_window_that_times_out_ends_once_without_a_host(bluez, both):
    done: list[bool] = []
    both.open_pairing_window(30.0, done.append)
    both.close_pairing_window()
    assert wait_for(lambda: done, 5.0)
    assert not wait_for(lambda: len(done) > 1, 0.5)
    assert done == [False] and not bluez.adapter_prop("Pairable")
    assert both.led == [True, False]


def test_one_result_of_two_windows():
    got: list[bool] = []
    one = OneResult(got.append)
    one.part(False)             # the other radio's window followed the adapter closed
    assert got == []
    one.part(True)
    one.part(False)
    assert got == [True]
    got.clear()
    one = OneResult(got.append)
    one.part(False)
    one.part(False)
    assert got == [False]


def event(code: int, params: bytes, index: int = 0) -> bytes:
    return struct.pack("<HHH", MON_EVENT_PKT, index, 2 + len(params)) + bytes([code, len(params)]) + params


def test_a_host_that_paired_over_br_edr_may_pair_over_le_after_its_link_went():
    """Connection Complete (0x03: status, handle, BD_ADDR, link type ACL, no encryption), the link key, then
    Disconnection Complete (0x05: status, handle, reason 0x13 remote user terminated)."""
    watch = BearerWatch(0)
    addr = bytes(reversed(bytes.fromhex(CLASSIC_HOST.replace(":", ""))))
    watch.feed(event(0x03, b"\x00" + struct.pack("<H", 0x0B) + addr + b"\x01\x00"))
    watch.feed(link_key_notification(CLASSIC_HOST))
    assert watch.radio_of(CLASSIC_HOST) == "classic"
    watch.feed(event(0x05, b"\x00" + struct.pack("<H", 0x0C) + b"\x13"))     # another link
    assert watch.radio_of(CLASSIC_HOST) == "classic"
    watch.feed(event(0x05, b"\x00" + struct.pack("<H", 0x0B) + b"\x13"))
    assert watch.radio_of(CLASSIC_HOST) == "le", "a later bond of the same host, with no link key, is an LE one"


def test_bearer_watch_reads_the_link_key_notification():
    watch = BearerWatch(1)
    watch.feed(link_key_notification(CLASSIC_HOST, index=0))   # another controller
    assert watch.radio_of(CLASSIC_HOST) == "le"
    watch.feed(link_key_notification(CLASSIC_HOST, index=1))
    assert watch.radio_of(CLASSIC_HOST) == "classic" and watch.radio_of(CLASSIC_HOST.lower()) == "classic"
    assert watch.radio_of(LE_HOST) == "le"
    watch.distrust("ENOBUFS")
    assert watch.radio_of(LE_HOST) is None, "frames lost: a missing key event proves nothing"

"""BlePeripheral (and the keyboard built on it) against python-dbusmock's bluez5 template (no Bluetooth controller exists on this machine).

What the mock cannot do (the VM test with the real bluetoothd covers it): radio, pairing crypto, reading the GATT
tree itself. Here the test reads the exported tree the way bluetoothd does (GetManagedObjects, ReadValue).
"""

from __future__ import annotations

import json
import threading
import time

import dbus
import pytest

from sttkb.config.keyboard import BluetoothSettings
from sttkb.gadget.ble import defs
from sttkb.gadget.ble.errors import HostNotFound
from sttkb.gadget.ble.keyboard import open_ble_keyboard
from sttkb.gadget.ble.peripheral import APP_ROOT, BlePeripheral
from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.reports import REPORT_DESCRIPTOR, key_report
from tests.polling import wait_for

HOST = "11:22:33:44:55:66"
OTHER = "AA:BB:CC:DD:EE:01"


@pytest.fixture
def keyboard(bluez, system_bus, tmp_path):
    changes: list[bool] = []
    kb = BlePeripheral(BluetoothSettings(name="test keyboard"), bus_address=system_bus.address, state_dir=tmp_path,
                       check_version=False, on_pairing_change=changes.append)
    kb.pairing_changes = changes
    kb.start()
    yield kb
    kb.close()


def our_object(bluez, kb: BlePeripheral, path: str):
    return bluez.conn.get_object(kb._bus.unique_name, path)


def managed_tree(bluez, kb):
    root = our_object(bluez, kb, APP_ROOT)
    return root.GetManagedObjects(dbus_interface=defs.OBJECT_MANAGER)


def read_value(bluez, kb, path: str, iface: str = defs.GATT_CHARACTERISTIC) -> bytes:
    return bytes(our_object(bluez, kb, path).ReadValue({}, dbus_interface=iface))


def test_start_registers_agent_application_and_advertisement(bluez, keyboard):
    kb = keyboard
    agent_calls = bluez.calls("/org/bluez", "RegisterAgent")
    assert agent_calls == [(kb.agent.path, "KeyboardOnly")], "the default pairing is passkey: the box enters codes"
    assert bluez.calls("/org/bluez", "RequestDefaultAgent") == [(kb.agent.path,)]
    assert [c[0] for c in bluez.calls("/org/bluez/hci0", "RegisterApplication")] == [APP_ROOT]
    assert bluez.adapter_obj.Get(defs.LE_ADVERTISING_MANAGER, "ActiveInstances",
                                 dbus_interface=defs.PROPERTIES) == 1
    # Outside a pairing window: neither pairable nor discoverable; GAP name = configured name.
    assert not bluez.adapter_prop("Pairable")
    assert not bluez.adapter_prop("Discoverable")
    assert bluez.adapter_prop("Alias") == "test keyboard"

    adv = our_object(bluez, kb, kb.advertisement.path).GetAll(defs.LE_ADVERTISEMENT, dbus_interface=defs.PROPERTIES)
    assert adv["Type"] == "peripheral"
    assert list(adv["ServiceUUIDs"]) == [defs.UUID_HID]
    assert adv["Appearance"] == 0x03C1
    assert adv["LocalName"] == "test keyboard"
    assert adv["Discoverable"] is False or adv["Discoverable"] == 0

    kb.close()
    assert bluez.calls("/org/bluez/hci0", "UnregisterApplication") == [(APP_ROOT,)]
    assert bluez.adapter_obj.Get(defs.LE_ADVERTISING_MANAGER, "ActiveInstances", dbus_interface=defs.PROPERTIES) == 0
    assert bluez.calls("/org/bluez", "UnregisterAgent") == [(kb.agent.path,)]


def test_gatt_tree_is_a_hid_keyboard_with_encrypted_characteristics(bluez, keyboard):
    tree = managed_tree(bluez, keyboard)
    services = {str(p): i[defs.GATT_SERVICE] for p, i in tree.items() if defs.GATT_SERVICE in i}
    # Device Information (PnP ID) comes from bluetoothd itself (DeviceID in services/bluetooth/main.conf).
    assert sorted(str(s["UUID"]) for s in services.values()) == sorted([defs.UUID_HID, defs.UUID_BATTERY])
    chars = {str(p): i[defs.GATT_CHARACTERISTIC] for p, i in tree.items() if defs.GATT_CHARACTERISTIC in i}
    hid_path = next(p for p, s in services.items() if s["UUID"] == defs.UUID_HID)
    hid_chars = {p: c for p, c in chars.items() if c["Service"] == hid_path}
    uuids = sorted(str(c["UUID"]) for c in hid_chars.values())
    assert uuids == sorted([defs.UUID_HID_INFORMATION, defs.UUID_REPORT_MAP, defs.UUID_PROTOCOL_MODE,
                            defs.UUID_HID_CONTROL_POINT, defs.UUID_REPORT, defs.UUID_REPORT,
                            defs.UUID_BOOT_KEYBOARD_INPUT, defs.UUID_BOOT_KEYBOARD_OUTPUT])
    for path, c in hid_chars.items():
        flags = [str(f) for f in c["Flags"]]
        readable = [f for f in flags if "read" in f]
        assert all(f.startswith("encrypt-") for f in readable), (c["UUID"], flags)
        assert not any("notify" == f for f in flags), "notify must need encryption"
    report_map = next(p for p, c in hid_chars.items() if c["UUID"] == defs.UUID_REPORT_MAP)
    assert read_value(bluez, keyboard, report_map) == REPORT_DESCRIPTOR
    # Long reads arrive with an offset (ATT Read Blob).
    obj = our_object(bluez, keyboard, report_map)
    assert bytes(obj.ReadValue({"offset": dbus.UInt16(22)}, dbus_interface=defs.GATT_CHARACTERISTIC)) \
        == REPORT_DESCRIPTOR[22:]
    # Report Reference: input report ID 0 type 1, output ID 0 type 2 (the descriptor has no report IDs).
    refs = sorted(read_value(bluez, keyboard, str(p), defs.GATT_DESCRIPTOR) for p, i in tree.items()
                  if defs.GATT_DESCRIPTOR in i and i[defs.GATT_DESCRIPTOR]["UUID"] == defs.UUID_REPORT_REFERENCE)
    assert refs == [bytes([0, 1]), bytes([0, 2])]


def test_pairing_window_opens_then_closes_after_its_timeout(bluez, keyboard):
    done: list[bool] = []
    keyboard.open_pairing_window(1.0, done.append)
    assert bluez.adapter_prop("Pairable") and bluez.adapter_prop("Discoverable")
    assert bluez.adapter_prop("PairableTimeout") == 1 and bluez.adapter_prop("DiscoverableTimeout") == 1
    assert keyboard.pairing_window_open and keyboard.pairing_changes == [True]
    assert keyboard.advertisement.discoverable
    # The mock has no timers of its own: the keyboard's own timer (timeout + 1 s) closes the window.
    assert wait_for(lambda: done == [False], 5.0)
    assert not bluez.adapter_prop("Pairable") and not bluez.adapter_prop("Discoverable")
    assert keyboard.pairing_changes == [True, False]
    assert not keyboard.advertisement.discoverable


def test_window_follows_the_adapter_when_another_process_opens_it(bluez, keyboard):
    """`sttkb bt pair` in another process only flips the adapter's Pairable; the daemon's keyboard follows."""
    bluez.adapter_obj.Set(defs.ADAPTER, "Pairable", True, dbus_interface=defs.PROPERTIES)
    assert wait_for(lambda: keyboard.pairing_window_open)
    assert wait_for(lambda: keyboard.advertisement.discoverable)
    bluez.adapter_obj.Set(defs.ADAPTER, "Pairable", False, dbus_interface=defs.PROPERTIES)
    assert wait_for(lambda: not keyboard.pairing_window_open)


def test_a_host_pairing_closes_the_window_and_is_remembered(bluez, keyboard, tmp_path):
    done: list[tuple[bool, bool]] = []
    keyboard.open_pairing_window(30.0, lambda ok: done.append((ok, keyboard.pairing_window_open)))
    bluez.bluez.AddDevice("hci0", HOST, "laptop")
    bluez.bluez.PairDevice("hci0", HOST)
    assert wait_for(lambda: done == [(True, False)]), "on_done(True) comes once, after the window closed"
    assert not bluez.adapter_prop("Pairable") and not bluez.adapter_prop("Discoverable")
    assert wait_for(lambda: bool(bluez.device_prop(HOST, "Trusted")))
    assert json.loads((tmp_path / "bluetooth.json").read_text())["last"] == HOST
    assert [h.address for h in keyboard.hosts() if h.is_bonded] == [HOST]


def test_agent_says_yes_only_inside_the_window(bluez, keyboard):
    agent = our_object(bluez, keyboard, keyboard.agent.path)
    dev = dbus.ObjectPath("/org/bluez/hci0/dev_11_22_33_44_55_66")
    with pytest.raises(dbus.exceptions.DBusException) as e:
        agent.RequestAuthorization(dev, dbus_interface=defs.AGENT)
    assert e.value.get_dbus_name() == defs.ERR_REJECTED
    with pytest.raises(dbus.exceptions.DBusException):
        agent.RequestConfirmation(dev, dbus.UInt32(0), dbus_interface=defs.AGENT)
    with pytest.raises(dbus.exceptions.DBusException):
        agent.RequestPasskey(dev, dbus_interface=defs.AGENT)
    keyboard.open_pairing_window(30.0)
    agent.RequestAuthorization(dev, dbus_interface=defs.AGENT)   # Just Works for a host without a display
    agent.RequestConfirmation(dev, dbus.UInt32(0), dbus_interface=defs.AGENT)
    with pytest.raises(dbus.exceptions.DBusException) as e:  # nothing registered to hear the code
        agent.RequestPasskey(dev, dbus_interface=defs.AGENT)
    assert e.value.get_dbus_name() == defs.ERR_REJECTED


@pytest.fixture
def passkey_keyboard(bluez, system_bus, tmp_path, request):
    mode = getattr(request, "param", "passkey")
    kb = BlePeripheral(BluetoothSettings(name="test keyboard", pairing=mode), bus_address=system_bus.address,
                       state_dir=tmp_path, check_version=False)
    kb.start()
    yield kb
    kb.close()


def test_the_code_the_daemon_hears_is_the_answer_to_bluez(bluez, passkey_keyboard):
    """The handler (the daemon, here a test double of it) gets a PasskeyRequest naming the host; its answer is the
    D-Bus reply bluetoothd passes to the kernel's SMP (a uint32: "047291" is 47291)."""
    kb = passkey_keyboard
    bluez.bluez.AddDevice("hci0", HOST, "laptop")
    asked = []

    def handler(req):
        asked.append((req.host, round(req.seconds_left())))
        req.answer("047291")

    kb.on_passkey_request(handler)
    kb.open_pairing_window(30.0)
    agent = our_object(bluez, kb, kb.agent.path)
    dev = dbus.ObjectPath("/org/bluez/hci0/dev_11_22_33_44_55_66")
    assert agent.RequestPasskey(dev, dbus_interface=defs.AGENT) == 47291
    assert asked == [("laptop", 29)], "the host by name, and the time left before the host's SMP timeout"
    assert dev in kb.agent.passkey_entered
    assert "047291" not in repr(kb.agent.requests) and "47291" not in repr(kb.agent.requests)


@pytest.mark.parametrize("outcome, error", [("refuse", defs.ERR_REJECTED), ("cancel", defs.ERR_CANCELED)])
def test_no_code_means_no_pairing(bluez, system_bus, passkey_keyboard, outcome, error):
    """Digits the daemon could not hear (answer None), or BlueZ cancelling the request (the host gave up): the
    agent answers an error, never a number; the window stays open to try again."""
    kb = passkey_keyboard
    agent_obj = our_object(bluez, kb, kb.agent.path)
    pending = []
    kb.on_passkey_request(lambda req: req.answer(None) if outcome == "refuse" else pending.append(req))
    kb.open_pairing_window(30.0)
    dev = dbus.ObjectPath("/org/bluez/hci0/dev_11_22_33_44_55_66")
    if outcome == "cancel":
        def cancel_soon():  # bluetoothd's Cancel comes while RequestPasskey waits: a second connection
            assert wait_for(lambda: bool(pending))
            conn = dbus.bus.BusConnection(system_bus.address)
            conn.get_object(kb._bus.unique_name, kb.agent.path).Cancel(dbus_interface=defs.AGENT)
        threading.Thread(target=cancel_soon, daemon=True).start()
    with pytest.raises(dbus.exceptions.DBusException) as e:
        agent_obj.RequestPasskey(dev, dbus_interface=defs.AGENT, timeout=20)
    assert e.value.get_dbus_name() == error
    if outcome == "cancel":
        assert pending[0].done and pending[0].outcome == "cancelled by the host"
    assert dev not in kb.agent.passkey_entered
    assert kb.pairing_window_open


@pytest.mark.parametrize("passkey_keyboard", ["passkey-only"], indirect=True)
def test_passkey_only_refuses_just_works_and_needs_secure_connections(bluez, passkey_keyboard):
    kb = passkey_keyboard
    agent = our_object(bluez, kb, kb.agent.path)
    dev = dbus.ObjectPath("/org/bluez/hci0/dev_11_22_33_44_55_66")
    kb.open_pairing_window(30.0)
    for call in (lambda: agent.RequestAuthorization(dev, dbus_interface=defs.AGENT),
                 lambda: agent.RequestConfirmation(dev, dbus.UInt32(0), dbus_interface=defs.AGENT)):
        with pytest.raises(dbus.exceptions.DBusException) as e:
            call()
        assert e.value.get_dbus_name() == defs.ERR_REJECTED
    assert bluez.calls("/org/bluez", "RegisterAgent") == [(kb.agent.path, "KeyboardOnly")]
    # No HCI monitor here (no Bluetooth in this kernel): whether the pairing is LE Secure Connections cannot be
    # told, so even a code is refused rather than risk a legacy pairing (the VM test has both kinds of host).
    kb.on_passkey_request(lambda req: req.answer("123456"))
    with pytest.raises(dbus.exceptions.DBusException) as e:
        agent.RequestPasskey(dev, dbus_interface=defs.AGENT)
    assert e.value.get_dbus_name() == defs.ERR_REJECTED
    tree = managed_tree(bluez, kb)
    flags = {str(f) for i in tree.values() if defs.GATT_CHARACTERISTIC in i
             for f in i[defs.GATT_CHARACTERISTIC]["Flags"]}
    assert not any(f.startswith("encrypt-") for f in flags), flags
    assert {"secure-read", "secure-notify", "secure-write"} <= flags
    # A host that bonded without entering a code (here: the mock pairs it directly) is removed, not used.
    bluez.bluez.AddDevice("hci0", HOST, "laptop")
    bluez.bluez.PairDevice("hci0", HOST)
    assert wait_for(lambda: bluez.calls("/org/bluez/hci0", "RemoveDevice") != [])
    assert kb.pairing_window_open, "the window stays open for a host that can show a code"


@pytest.mark.parametrize("passkey_keyboard", ["just-works"], indirect=True)
def test_just_works_mode_offers_no_input(bluez, passkey_keyboard):
    kb = passkey_keyboard
    assert bluez.calls("/org/bluez", "RegisterAgent") == [(kb.agent.path, "NoInputNoOutput")]
    kb.on_passkey_request(lambda req: req.answer("123456"))
    kb.open_pairing_window(30.0)
    with pytest.raises(dbus.exceptions.DBusException):
        our_object(bluez, kb, kb.agent.path).RequestPasskey(
            dbus.ObjectPath("/org/bluez/hci0/dev_11_22_33_44_55_66"), dbus_interface=defs.AGENT)


def recorded(state_dir) -> dict:
    """How each host paired, as the state file says (nothing before the peripheral first writes it)."""
    path = state_dir / "bluetooth.json"
    return json.loads(path.read_text()).get("pairing", {}) if path.exists() else {}


def test_how_each_host_paired_is_remembered(bluez, passkey_keyboard, tmp_path):
    kb = passkey_keyboard
    kb.on_passkey_request(lambda req: req.answer("123456"))
    kb.open_pairing_window(30.0)
    bluez.bluez.AddDevice("hci0", HOST, "laptop")
    our_object(bluez, kb, kb.agent.path).RequestPasskey(
        dbus.ObjectPath("/org/bluez/hci0/dev_11_22_33_44_55_66"), dbus_interface=defs.AGENT)
    bluez.bluez.PairDevice("hci0", HOST)
    assert wait_for(lambda: recorded(tmp_path) == {HOST: "passkey"})
    kb.open_pairing_window(30.0)
    bluez.bluez.AddDevice("hci0", OTHER, "tv")
    bluez.bluez.PairDevice("hci0", OTHER)   # no code asked: Just Works
    assert wait_for(lambda: recorded(tmp_path) == {HOST: "passkey", OTHER: "just-works"})
    assert "123456" not in (tmp_path / "bluetooth.json").read_text()


def test_unbonded_host_is_disconnected_while_the_window_is_closed(bluez, keyboard):
    path = bluez.bluez.AddDevice("hci0", OTHER, "stranger")
    dev = bluez.conn.get_object("org.bluez", path)
    dev.Connect(dbus_interface=defs.DEVICE)
    assert wait_for(lambda: bluez.calls(path, "Disconnect") == [()])
    assert wait_for(lambda: not any(h.connected for h in keyboard.hosts()))


def test_bonded_host_list_and_forget(bluez, keyboard, tmp_path):
    bluez.bluez.AddDevice("hci0", HOST, "laptop")
    bluez.bluez.PairDevice("hci0", HOST)
    bluez.bluez.AddDevice("hci0", OTHER, "phone")  # seen, never paired: not a host
    assert wait_for(lambda: len(keyboard.hosts()) == 2)
    bonded = [h for h in keyboard.hosts() if h.is_bonded]
    assert [(h.address, h.name) for h in bonded] == [(HOST, "laptop")]
    with pytest.raises(HostNotFound, match="laptop"):
        keyboard.forget("phone")
    gone = keyboard.forget("LAPTOP")
    assert gone.address == HOST
    assert bluez.calls("/org/bluez/hci0", "RemoveDevice") == [(gone.path,)]
    assert [h.address for h in keyboard.hosts()] == [OTHER]


def test_transport_types_only_to_a_subscribed_bonded_host(bluez, system_bus, tmp_path):
    """Through open_ble_keyboard, the keyboard factory's entry point (this sandbox's kernel has no Bluetooth: no
    HCI monitor, so no delivery tracking)."""
    kb, transport = open_ble_keyboard(BluetoothSettings(name="test keyboard"), state_dir=tmp_path,
                                      bus_address=system_bus.address, check_version=False)
    try:
        _types_only_to_a_subscribed_bonded_host(bluez, kb, transport)
    finally:
        transport.close()
        kb.close()
    assert bluez.adapter_obj.Get(defs.LE_ADVERTISING_MANAGER, "ActiveInstances", dbus_interface=defs.PROPERTIES) == 0


def _types_only_to_a_subscribed_bonded_host(bluez, kb, transport):
    assert transport.tracker is None
    transport.min_interval_s = 0.0
    with pytest.raises(HostDisconnected):
        transport.send(key_report(0, 0x04))
    assert not transport.wait_ready(0.1)

    path = bluez.bluez.AddDevice("hci0", HOST, "laptop")
    bluez.bluez.PairDevice("hci0", HOST)
    dev = bluez.conn.get_object("org.bluez", path)
    dev.Connect(dbus_interface=defs.DEVICE)
    # bluetoothd calls StartNotify when the host writes the input report's CCC descriptor.
    our_object(bluez, kb, kb.hid.input_report.path).StartNotify(dbus_interface=defs.GATT_CHARACTERISTIC)
    assert transport.wait_ready(5.0)

    # A notification is a PropertiesChanged(Value) signal on the characteristic; bluetoothd turns it into ATT.
    transport.send(key_report(0x02, 0x04))
    value = our_object(bluez, kb, kb.hid.input_report.path).Get(defs.GATT_CHARACTERISTIC, "Value",
                                                                  dbus_interface=defs.PROPERTIES)
    assert bytes(value) == key_report(0x02, 0x04)

    # The host writes its LED output report (Caps Lock on).
    out = our_object(bluez, kb, kb.hid.output_report.path)
    out.WriteValue(dbus.ByteArray(b"\x02"), {}, dbus_interface=defs.GATT_CHARACTERISTIC)
    assert transport.leds() == 0x02

    dev.Disconnect(dbus_interface=defs.DEVICE)
    assert wait_for(lambda: not kb.ready)
    with pytest.raises(HostDisconnected):
        transport.send(key_report(0, 0x05))


def test_one_host_at_a_time_and_the_preferred_one_wins(bluez, keyboard):
    first = bluez.bluez.AddDevice("hci0", HOST, "laptop")
    second = bluez.bluez.AddDevice("hci0", OTHER, "tablet")
    bluez.bluez.PairDevice("hci0", HOST)
    bluez.bluez.PairDevice("hci0", OTHER)
    # the keyboard handles each new bond in the background and records it as the last host: let both finish
    # first, or a late one (a loaded machine) overwrites what the connection below records
    assert wait_for(lambda: keyboard.state.last == OTHER)
    dev1 = bluez.conn.get_object("org.bluez", first)
    dev2 = bluez.conn.get_object("org.bluez", second)
    dev1.Connect(dbus_interface=defs.DEVICE)
    assert wait_for(lambda: keyboard.connected_host is not None and keyboard.connected_host.address == HOST)
    dev2.Connect(dbus_interface=defs.DEVICE)  # a second bonded host shows up: it is dropped, the first stays
    assert wait_for(lambda: bluez.calls(second, "Disconnect") == [()])
    assert bluez.calls(first, "Disconnect") == []
    assert keyboard.state.last == HOST

    keyboard.state.set_preferred(OTHER)  # `sttkb bt use tablet` (from another process: the file)
    dev2.Connect(dbus_interface=defs.DEVICE)
    assert wait_for(lambda: bluez.calls(first, "Disconnect") == [()]), "the preferred host takes over"
    assert wait_for(lambda: keyboard.state.last == OTHER)


def test_a_bluetoothd_that_never_answers_is_a_clear_error_not_a_hang(system_bus, tmp_path):
    """A box without a Bluetooth controller: bluetooth.service is skipped and D-Bus holds the calls to org.bluez
    (seen when the whole image booted in qemu). Starting the keyboard must end with BluezUnavailable — the daemon
    then types over USB only — never with a bare TimeoutError that stops the daemon."""
    import subprocess

    from dbusmock import BusType, SpawnedMock
    from dbusmock.mockobject import OBJECT_MANAGER_IFACE
    from sttkb.gadget.ble.errors import BluezUnavailable

    silent = SpawnedMock.spawn_for_name("org.bluez", "/", OBJECT_MANAGER_IFACE, BusType.SYSTEM,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        dbus.Interface(silent.obj, "org.freedesktop.DBus.Mock").AddMethod(
            OBJECT_MANAGER_IFACE, "GetManagedObjects", "", "a{oa{sa{sv}}}", "time.sleep(5); ret = {}")
        kb = BlePeripheral(BluetoothSettings(name="test keyboard"), bus_address=system_bus.address,
                           state_dir=tmp_path, check_version=False)
        start = time.monotonic()
        with pytest.raises(BluezUnavailable, match="did not answer within 1 s"):
            kb.start(timeout=1.0)
        assert time.monotonic() - start < 4
        assert not kb._loop.running
    finally:
        silent.terminate()

"""Fixtures for the Bluetooth tests: python-dbusmock's bluez5 template on a private system bus.

The mock stands in for bluetoothd where no Bluetooth controller exists (unit tests); the real bluetoothd runs in
the qemu VM tests (test_ble_vm.py). The bluez5 template has Adapter1, Device1, AgentManager1 and
LEAdvertisingManager1 but no GattManager1: the fixture adds RegisterApplication/UnregisterApplication with
AddMethod (they only record the call; the test then reads the exported GATT tree itself, as bluetoothd would).
"""

from __future__ import annotations

import os
import subprocess

import dbus  # test dependencies (requirements-test.lock): a missing one is an error, never a silent skip
import pytest
from dbusmock.testcase import BusType, PrivateDBus, SpawnedMock


@pytest.fixture(scope="session")
def system_bus():
    """A private dbus-daemon with the system bus configuration; DBUS_SYSTEM_BUS_ADDRESS points at it.

    Without a dbus-daemon binary the mock tests skip on a developer's machine, and fail where STTKB_REQUIRE_VM=1
    (CI), so nothing there passes by not running."""
    try:
        bus = PrivateDBus(BusType.SYSTEM)
        bus.start()
    except (OSError, subprocess.SubprocessError) as e:  # pragma: no cover - dbus-daemon missing
        reason = f"cannot start a private dbus-daemon: {e}"
        if os.environ.get("STTKB_REQUIRE_VM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield bus
    finally:
        bus.stop()


class BluezMock:
    """The running bluez5 mock: ``bluez`` (mock API on /), ``adapter`` (mock API on /org/bluez/hci0)."""

    def __init__(self, spawned: SpawnedMock, conn) -> None:
        self.spawned = spawned
        self.conn = conn
        self.bluez = dbus.Interface(spawned.obj, "org.bluez.Mock")
        self.bluez.AddAdapter("hci0", "test-box")
        self.adapter_obj = conn.get_object("org.bluez", "/org/bluez/hci0")
        self.mock = dbus.Interface(self.adapter_obj, "org.freedesktop.DBus.Mock")
        self.mock.AddMethod("org.bluez.GattManager1", "RegisterApplication", "oa{sv}", "", "")
        self.mock.AddMethod("org.bluez.GattManager1", "UnregisterApplication", "o", "", "")

    def adapter_prop(self, name: str):
        return self.adapter_obj.Get("org.bluez.Adapter1", name, dbus_interface="org.freedesktop.DBus.Properties")

    def calls(self, path: str, method: str) -> list:
        obj = self.conn.get_object("org.bluez", path)
        return [tuple(c[1]) for c in obj.GetMethodCalls(method, dbus_interface="org.freedesktop.DBus.Mock")]

    def device_prop(self, address: str, name: str):
        obj = self.conn.get_object("org.bluez", "/org/bluez/hci0/dev_" + address.replace(":", "_"))
        return obj.Get("org.bluez.Device1", name, dbus_interface="org.freedesktop.DBus.Properties")


@pytest.fixture
def bluez(system_bus):
    """A fresh bluez5 mock with adapter hci0 (stopped after the test)."""
    spawned = SpawnedMock.spawn_with_template("bluez5", {}, bustype=BusType.SYSTEM,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield BluezMock(spawned, BusType.SYSTEM.get_connection())
    finally:
        spawned.terminate()

"""`sttkb check` (run on the laptop): what it concludes from what a host sees. Pure: :func:`analyze` on a filled
report; the VM test (test_ble_vm.py) runs the whole check with bleak against a real bluetoothd."""

from __future__ import annotations

import pytest

from sttkb.gadget.ble import defs
from sttkb.gadget.host_check import CheckReport, analyze
from sttkb.gadget.reports import REPORT_DESCRIPTOR


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
    ({"host_bluez": (5, 66)}, "[bluetooth] mode = \"classic\""),
])
def test_check_names_each_problem(changes, words):
    problems = analyze(good_report(**changes))
    assert any(words in p for p in problems), problems


@pytest.mark.parametrize("version", [(5, 67), (5, 72), (6, 0)])
def test_check_is_quiet_about_a_bluez_that_handles_combined_notifications(version):
    assert analyze(good_report(host_bluez=version)) == []

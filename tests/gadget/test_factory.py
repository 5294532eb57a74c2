"""The one keyboard factory: each kind, the injectable roots, and what happens when a part is missing.

USB runs against a fake tree (a FIFO for /dev/hidg0, a file for the UDC state, as in test_hidg.py; the real gadget is
in test_usb_vm.py). Bluetooth needs bluetoothd on a system bus, which this sandbox has not (the real one runs in
tests/ble/test_ble_vm.py): here it shows how ``auto`` falls back to USB and ``bluetooth`` fails with a clear message.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import pytest

from sttkb.config import Config
from sttkb.errors import SttkbError
from sttkb.gadget.factory import Roots, build_keyboard
from tests.polling import wait_for



@pytest.fixture
def usb_tree(fake, tmp_path, monkeypatch):
    dev, sysfs, _, reader = fake
    # No system D-Bus here, whatever the machine has: Bluetooth must fail fast and clearly.
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-system-bus")
    config = Config()
    config = dataclasses.replace(config, usb=dataclasses.replace(config.usb, hidg_device=str(dev)),
                                 keyboard=dataclasses.replace(config.keyboard, key_delay_ms=0.0))
    return config, Roots(sysfs=str(sysfs), configfs=str(tmp_path / "configfs"),
                         bluetooth_state=str(tmp_path / "bt")), reader


def test_usb_follows_the_udc_state_under_the_given_sysfs_root(usb_tree):
    """The keyboard reads the UDC state under ``roots.sysfs`` (not the machine's /sys): while no host has it
    configured, text waits (paused) and is handed back on cancel; once configured, text is typed. (The reports'
    bytes are checked in test_hidg.py and, through the real kernel, in test_usb_vm.py: the transport reads LED
    reports from the same node, so a FIFO cannot show what was written here.)"""
    config, roots, _ = usb_tree
    state = Path(roots.sysfs) / "class/udc/dummy_udc.0/state"
    state.write_text("not attached\n")
    built = build_keyboard("usb", config.keyboard, config.usb, config.bluetooth, roots=roots)
    assert built.pairing is None and built.virtual is None
    with built.keyboard as kb:
        kb.type_text("hi")
        assert wait_for(lambda: kb.state == "paused")
        assert not kb.wait_idle(0.3)
        assert kb.cancel() == "hi"
        state.write_text("configured\n")
        kb.type_text("ok")
        assert kb.wait_idle(5)
        assert wait_for(lambda: kb.state == "idle")  # after the re-plug settle time


def test_auto_without_bluetoothd_is_usb_alone_and_says_why(usb_tree, caplog):
    config, roots, reader = usb_tree
    with caplog.at_level(logging.WARNING, logger="sttkb.gadget.factory"):
        built = build_keyboard("auto", config.keyboard, config.usb, config.bluetooth, roots=roots)
    try:
        assert built.pairing is None
        assert "the Bluetooth LE keyboard cannot start" in caplog.text and "USB only" in caplog.text
        built.keyboard.type_text("i")
        assert built.keyboard.wait_idle(5)
    finally:
        built.keyboard.close()


def test_bluetooth_asked_for_without_bluetoothd_is_a_clear_error(usb_tree):
    config, roots, _ = usb_tree
    with pytest.raises(SttkbError, match="the Bluetooth LE keyboard cannot start: .*D-Bus"):
        build_keyboard("bluetooth", config.keyboard, config.usb, config.bluetooth, roots=roots)


def test_classic_mode_builds_the_classic_keyboard(usb_tree):
    """[bluetooth] mode = "classic" goes to the Classic keyboard (it fails the same way here, and says which);
    the keyboard itself, built by this factory, types into a real host in tests/bt_classic/test_classic_vm.py."""
    config, roots, _ = usb_tree
    classic = dataclasses.replace(config.bluetooth, mode="classic")
    with pytest.raises(SttkbError, match="the Bluetooth Classic keyboard cannot start: .*D-Bus"):
        build_keyboard("bluetooth", config.keyboard, config.usb, classic, roots=roots)


def test_auto_mode_builds_both_keyboards(usb_tree):
    """[bluetooth] mode = "auto" starts both keyboards (it fails the same way here, and says which); both on one
    adapter type into real hosts in tests/bt_classic/test_both_radios_vm.py."""
    config, roots, _ = usb_tree
    both = dataclasses.replace(config.bluetooth, mode="auto")
    with pytest.raises(SttkbError, match="the Bluetooth LE and Classic keyboard cannot start: .*D-Bus"):
        build_keyboard("bluetooth", config.keyboard, config.usb, both, roots=roots)


def test_auto_with_only_bluetooth_enabled_and_no_bluetoothd_fails(usb_tree):
    config, roots, _ = usb_tree
    usb_off = dataclasses.replace(config.usb, enabled=False)
    with pytest.raises(SttkbError):
        build_keyboard("auto", config.keyboard, usb_off, config.bluetooth, roots=roots)


@pytest.mark.parametrize("kind", ["usb", "bluetooth"])
def test_a_kind_whose_section_is_disabled_says_which_setting(usb_tree, kind):
    config, roots, _ = usb_tree
    usb = dataclasses.replace(config.usb, enabled=kind != "usb")
    bluetooth = dataclasses.replace(config.bluetooth, enabled=kind != "bluetooth")
    with pytest.raises(SttkbError, match=rf"\[{kind}\] enabled = false"):
        build_keyboard(kind, config.keyboard, usb, bluetooth, roots=roots)


def test_virtual_host_shows_the_text_in_the_configured_layout():
    config = Config()
    keyboard = dataclasses.replace(config.keyboard, layout="de", key_delay_ms=0.0)
    built = build_keyboard("virtual", keyboard, config.usb, config.bluetooth)
    with built.keyboard as kb:
        kb.type_text("Grüße, yz!")
        assert kb.wait_idle(5)
    assert built.virtual.text == "Grüße, yz!"


def test_the_simulated_host_takes_one_report_per_usb_poll_at_the_default_pace():
    """`sttkb run --simulate` shows typing as a high-speed USB host takes it: the default pace adds no gap, the
    host's 1 ms polling is the limit (so the typed time is not zero, as no real host's is)."""
    config = Config()
    assert config.keyboard.key_delay_ms == 0.0
    built = build_keyboard("virtual", config.keyboard, config.usb, config.bluetooth)
    text = "hello world, typed as a host polls"
    with built.keyboard as kb:
        start = time.monotonic()
        kb.type_text(text)
        assert kb.wait_idle(10)
        elapsed = time.monotonic() - start
    reports = len(built.virtual.reports)
    assert built.virtual.text == text
    assert reports >= len(text) and elapsed >= (reports - 1) * 0.001, (reports, elapsed)


def test_an_unknown_kind_is_refused():
    config = Config()
    with pytest.raises(ValueError, match="choose one of"):
        build_keyboard("serial", config.keyboard, config.usb, config.bluetooth)

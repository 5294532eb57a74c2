"""`sttkb bt ...` against python-dbusmock's bluez5 template (no Bluetooth controller here)."""

from __future__ import annotations

import dbus
import pytest

from sttkb.cli import main

HOST = "11:22:33:44:55:66"


@pytest.fixture
def paired_host(bluez):
    bluez.bluez.AddDevice("hci0", HOST, "laptop")
    bluez.bluez.PairDevice("hci0", HOST)
    bluez.bluez.AddDevice("hci0", "AA:BB:CC:DD:EE:01", "phone")  # seen, never paired
    return HOST


def run(tmp_path, *args) -> int:
    return main(["bt", "--state-dir", str(tmp_path), *args])


def test_list_shows_only_bonded_hosts(bluez, paired_host, tmp_path, capsys):
    assert run(tmp_path, "list") == 0
    out = capsys.readouterr().out
    assert HOST in out and "laptop" in out and "bonded" in out
    assert "phone" not in out


def test_list_without_hosts_says_how_to_pair(bluez, tmp_path, capsys):
    assert run(tmp_path, "list") == 0
    assert "sttkb bt pair" in capsys.readouterr().err


def test_forget_removes_the_host(bluez, paired_host, tmp_path, capsys):
    assert run(tmp_path, "forget", "laptop") == 0
    assert HOST in capsys.readouterr().out
    assert bluez.calls("/org/bluez/hci0", "RemoveDevice") == [("/org/bluez/hci0/dev_11_22_33_44_55_66",)]


def test_forget_unknown_host_is_a_clear_error(bluez, paired_host, tmp_path, capsys):
    assert run(tmp_path, "forget", "printer") == 1
    err = capsys.readouterr().err
    assert "no bonded host matches 'printer'" in err and HOST in err and "Traceback" not in err


def test_use_remembers_the_preferred_host(bluez, paired_host, tmp_path, capsys):
    assert run(tmp_path, "use", HOST) == 0
    assert "typing to" in capsys.readouterr().out
    assert '"preferred": "11:22:33:44:55:66"' in (tmp_path / "bluetooth.json").read_text()


def test_pace_slows_one_host_shows_it_and_goes_back_to_normal(bluez, paired_host, tmp_path, capsys):
    from sttkb.gadget.ble.hosts import HostState
    assert run(tmp_path, "pace", "laptop", "slow") == 0
    assert "30 ms between key reports" in capsys.readouterr().out
    assert HostState(tmp_path).pace == {HOST: 30.0}
    assert run(tmp_path, "list") == 0
    assert "pace 30 ms" in capsys.readouterr().out
    assert run(tmp_path, "pace", HOST, "normal") == 0
    assert "normal pace" in capsys.readouterr().out and HostState(tmp_path).pace == {}


@pytest.mark.parametrize("bad", ["fast", "-1", "1000", "nan"])
def test_pace_refuses_what_it_cannot_mean_and_says_what_it_takes(bluez, paired_host, tmp_path, capsys, bad):
    from sttkb.gadget.ble.hosts import HostState
    assert run(tmp_path, "pace", "laptop", bad) == 2
    err = capsys.readouterr().err
    assert "milliseconds from 0 to 200, 'slow'" in err and "Traceback" not in err
    assert HostState(tmp_path).pace == {}


def test_pace_for_a_stranger_is_a_clear_error(bluez, paired_host, tmp_path, capsys):
    assert run(tmp_path, "pace", "printer", "slow") == 1
    assert "no bonded host matches 'printer'" in capsys.readouterr().err


def test_status_says_whether_the_daemon_advertises(bluez, tmp_path, capsys):
    bluez.adapter_obj.Set("org.bluez.Adapter1", "Pairable", False, dbus_interface="org.freedesktop.DBus.Properties")
    assert run(tmp_path, "status") == 0
    out = capsys.readouterr().out
    assert "pairing:      closed" in out and 'Bluetooth LE ([bluetooth] mode = "le"), not running' in out


def test_pair_with_the_daemon_running_only_opens_the_adapter_window(bluez, tmp_path, capsys):
    bluez.bluez.AddAdvertisement("daemon")  # stands for the daemon's registered advertisement
    bluez.adapter_obj.RegisterAdvertisement(dbus.ObjectPath("/org/dbusmock/bluez/advertisement/daemon"), {},
                                            dbus_interface="org.bluez.LEAdvertisingManager1")
    assert run(tmp_path, "pair", "--timeout", "30", "--no-wait") == 0
    assert bluez.adapter_prop("Pairable") and bluez.adapter_prop("Discoverable")
    assert bluez.adapter_prop("PairableTimeout") == 30


def test_unknown_adapter_is_a_clear_error(bluez, tmp_path, capsys):
    assert main(["bt", "--adapter", "hci7", "--state-dir", str(tmp_path), "list"]) == 1
    assert "adapter 'hci7' not found (present: hci0)" in capsys.readouterr().err


def test_no_bluetoothd_is_a_clear_error(system_bus, tmp_path, capsys):
    assert run(tmp_path, "list") == 1
    assert "bluetoothd is not running" in capsys.readouterr().err


def test_pair_without_the_daemon_serves_a_just_works_window(bluez, tmp_path, capsys):
    """Nothing listens for a spoken code without the daemon: the window this command serves pairs Just Works, and
    says so (a host with a screen would otherwise show a code that nobody can enter)."""
    assert run(tmp_path, "pair", "--timeout", "1") == 1   # nobody pairs in the mock: the window closes empty
    assert bluez.calls("/org/bluez", "RegisterAgent")[0][1] == "NoInputNoOutput"
    assert "pairs Just Works" in capsys.readouterr().err


def test_pair_without_the_daemon_under_passkey_only_says_to_start_it(bluez, tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[bluetooth]\npairing = "passkey-only"\n')
    assert main(["--config", str(config), "bt", "--state-dir", str(tmp_path), "pair", "--timeout", "1"]) == 1
    assert bluez.calls("/org/bluez", "RegisterAgent") == []
    assert "needs the sttkb daemon" in capsys.readouterr().err


def _classic_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[bluetooth]\nmode = "classic"\n')
    return ["--config", str(config)]


def _publish_classic_record(bluez):
    """What bluetoothd shows while the daemon's Classic keyboard runs: its HID record's UUID on the adapter."""
    from sttkb.gadget.bt_classic.sdp_record import HID_UUID
    bluez.adapter_obj.Set("org.bluez.Adapter1", "UUIDs", dbus.Array([HID_UUID], signature="s"),
                          dbus_interface="org.freedesktop.DBus.Properties")


def test_list_says_which_keyboard_a_host_paired_with_and_who_must_pair_again(bluez, paired_host, tmp_path, capsys):
    from sttkb.gadget.ble.hosts import HostState
    HostState(tmp_path).set_pairing(HOST, "just-works", "le")
    assert main([*_classic_config(tmp_path), "bt", "--state-dir", str(tmp_path), "list"]) == 0
    out, err = capsys.readouterr()
    assert "over LE" in out
    assert f"{HOST} paired with the other one and must pair again" in err and 'mode = "classic"' in err
    assert run(tmp_path, "list") == 0   # the default mode is LE: nothing to redo
    out, err = capsys.readouterr()
    assert "over LE" in out and "must pair again" not in err


def test_status_in_classic_mode_says_whether_the_classic_keyboard_runs(bluez, tmp_path, capsys):
    args = [*_classic_config(tmp_path), "bt", "--state-dir", str(tmp_path), "status"]
    assert main(args) == 0
    assert "Bluetooth Classic ([bluetooth] mode = \"classic\"), not running" in capsys.readouterr().out
    _publish_classic_record(bluez)
    assert main(args) == 0
    assert "Bluetooth Classic ([bluetooth] mode = \"classic\"), HID record published" in capsys.readouterr().out


def test_pair_with_the_classic_daemon_running_only_opens_the_adapter_window(bluez, tmp_path, capsys):
    _publish_classic_record(bluez)
    assert main([*_classic_config(tmp_path), "bt", "--state-dir", str(tmp_path), "pair", "--timeout", "30",
                 "--no-wait"]) == 0
    assert bluez.adapter_prop("Pairable") and bluez.adapter_prop("Discoverable")
    assert bluez.calls("/org/bluez", "RegisterProfile") == [] and bluez.calls("/org/bluez", "RegisterAgent") == []


def test_pair_without_the_daemon_in_classic_mode_serves_the_classic_keyboard(bluez, tmp_path, capsys):
    from sttkb.gadget.bt_classic.peripheral import PROFILE_UUID
    assert main([*_classic_config(tmp_path), "bt", "--state-dir", str(tmp_path), "pair", "--timeout", "1"]) == 1
    assert [str(c[1]) for c in bluez.calls("/org/bluez", "RegisterProfile")] == [PROFILE_UUID]
    assert bluez.calls("/org/bluez/hci0", "RegisterAdvertisement") == [], "no LE keyboard in Classic mode"


def _auto_config(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[bluetooth]\nmode = "auto"\n')
    return ["--config", str(config)]


def test_list_in_auto_mode_shows_each_host_s_radio_and_nobody_must_pair_again(bluez, paired_host, tmp_path, capsys):
    from sttkb.gadget.ble.hosts import HostState
    bluez.bluez.PairDevice("hci0", "AA:BB:CC:DD:EE:01")
    HostState(tmp_path).set_pairing(HOST, "just-works", "classic")
    HostState(tmp_path).set_pairing("AA:BB:CC:DD:EE:01", "passkey", "le")
    assert main([*_auto_config(tmp_path), "bt", "--state-dir", str(tmp_path), "list"]) == 0
    out, err = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "over Classic" in lines[HOST] and "over LE" in lines["AA:BB:CC:DD:EE:01"]
    assert "must pair again" not in err


def test_status_in_auto_mode_needs_both_keyboards_running(bluez, tmp_path, capsys):
    args = [*_auto_config(tmp_path), "bt", "--state-dir", str(tmp_path), "status"]
    _publish_classic_record(bluez)      # the Classic keyboard alone is not the auto mode's keyboard
    assert main(args) == 0
    assert 'Bluetooth LE and Classic ([bluetooth] mode = "auto"), not running' in capsys.readouterr().out


def test_pair_without_the_daemon_in_auto_mode_leaves_nothing_registered_when_it_cannot_start(bluez, tmp_path,
                                                                                            capsys):
    """Both keyboards start for the window; here the Classic one cannot listen on its L2CAP channels (this machine's
    kernel has no Bluetooth sockets, the adapter is the mock's): the command says so, and the LE keyboard that had
    started is unregistered again — no agent, application, advertisement or record left with bluetoothd."""
    assert main([*_auto_config(tmp_path), "bt", "--state-dir", str(tmp_path), "pair", "--timeout", "1"]) == 1
    assert "cannot listen for Bluetooth Classic HID hosts" in capsys.readouterr().err
    assert len(bluez.calls("/org/bluez", "RegisterAgent")) == 1 == len(bluez.calls("/org/bluez", "UnregisterAgent"))
    assert len(bluez.calls("/org/bluez", "RegisterProfile")) == 1 == len(bluez.calls("/org/bluez", "UnregisterProfile"))
    assert len(bluez.calls("/org/bluez/hci0", "RegisterApplication")) == 1 == len(
        bluez.calls("/org/bluez/hci0", "UnregisterApplication"))
    assert not bluez.adapter_prop("Pairable")

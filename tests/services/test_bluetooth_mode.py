"""bluetoothd follows ``[bluetooth] mode``: for "classic" the generator
(services/system-generators/sttkb-bluetooth-generator) writes a copy of the box's bluetoothd settings with
``ControllerMode = bredr`` and a bluetooth.service drop-in that starts bluetoothd on it; for "le" nothing. What the
box's own systemd does with them at daemon-reload is checked in the whole-box VM (tests/box); that the Classic
keyboard works on bluetoothd running the written copy, in tests/bt_classic/test_classic_vm.py."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sttkb.gadget.bluetoothd_conf import CONF_NAME, DROPIN_NAME, ConfError, conf_for_mode

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "services" / "bluetooth" / "main.conf"
SHIPPED_DROPIN = REPO / "services" / "bluetooth" / "bluetooth.service.d" / "50-sttkb.conf"
GENERATOR = REPO / "services" / "system-generators" / "sttkb-bluetooth-generator"
VENV_STTKB = Path(sys.executable).with_name("sttkb")


def _ini(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str
    parser.read_string(text)
    return {name: dict(parser[name]) for name in parser.sections()}


def test_classic_changes_the_controller_mode_and_nothing_else():
    shipped = _ini(SHIPPED.read_text())
    assert shipped["General"]["ControllerMode"] == "le", "the shipped settings are the LE keyboard's"
    classic = _ini(conf_for_mode(SHIPPED.read_text(), "classic"))
    assert classic["General"].pop("ControllerMode") == "bredr"
    shipped["General"].pop("ControllerMode")
    assert classic == shipped


def test_settings_without_exactly_one_mode_line_are_refused():
    with pytest.raises(ConfError, match="found 0"):
        conf_for_mode("[General]\nName = x\n", "classic")
    with pytest.raises(ConfError, match="found 2"):
        conf_for_mode("[General]\nControllerMode = le\nControllerMode = dual\n", "classic")


def _generate(tmp_path: Path, config: str, shipped: Path = SHIPPED) -> tuple[Path, subprocess.CompletedProcess]:
    """Run the generator as systemd would (its first argument: the generator output directory)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    out = tmp_path / "generator"
    out.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "STTKB": str(VENV_STTKB), "STTKB_CONFIG": str(cfg),
           "STTKB_BLUETOOTHD_CONF": str(shipped)}
    r = subprocess.run(["sh", str(GENERATOR), str(out), str(tmp_path / "early"), str(tmp_path / "late")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out, r


def _exec_start(dropin: Path) -> list[str]:
    return [line for line in dropin.read_text().splitlines() if line.startswith("ExecStart=")]


def test_generator_starts_bluetoothd_on_br_edr_settings_in_classic_mode(tmp_path):
    assert os.access(GENERATOR, os.X_OK)
    out, _ = _generate(tmp_path, '[bluetooth]\nmode = "classic"\n')
    conf = out / CONF_NAME
    dropin = out / "bluetooth.service.d" / DROPIN_NAME
    assert _ini(conf.read_text())["General"]["ControllerMode"] == "bredr"
    # It replaces the shipped drop-in's command (so it must sort after it) with the same one on the copy.
    assert sorted([SHIPPED_DROPIN.name, DROPIN_NAME])[-1] == DROPIN_NAME
    shipped_cmd = _exec_start(SHIPPED_DROPIN)
    assert _exec_start(dropin) == [shipped_cmd[0],
                                   shipped_cmd[1].replace("/etc/sttkb/bluetooth/main.conf", str(conf.resolve()))]
    assert "--noplugin=input,hog" in shipped_cmd[1]


def test_generator_starts_bluetoothd_dual_mode_for_both_keyboards(tmp_path):
    out, _ = _generate(tmp_path, '[bluetooth]\nmode = "auto"\n')
    conf = out / CONF_NAME
    settings = _ini(conf.read_text())
    assert settings["General"].pop("ControllerMode") == "dual", "LE advertising and BR/EDR inquiry scan at once"
    shipped = _ini(SHIPPED.read_text())
    shipped["General"].pop("ControllerMode")
    assert settings == shipped
    assert _exec_start(out / "bluetooth.service.d" / DROPIN_NAME)[1].endswith(
        f"-f {conf.resolve()} --noplugin=input,hog")


def test_generator_writes_nothing_for_le_a_broken_config_or_missing_settings(tmp_path):
    out, _ = _generate(tmp_path, '[bluetooth]\nmode = "classic"\n')
    written = [out / CONF_NAME, out / "bluetooth.service.d" / DROPIN_NAME]
    assert all(p.exists() for p in written)
    _generate(tmp_path, '[bluetooth]\nmode = "le"\n')
    assert not any(p.exists() for p in written), "back to LE: the shipped settings, and the old copy is gone"

    _generate(tmp_path, '[bluetooth]\nmode = "classic"\n')
    _, r = _generate(tmp_path, '[bluetooth]\nmode = "clasic"\n')
    assert not any(p.exists() for p in written), "a typo: the shipped LE settings, never a half-made mode"
    assert "clasic" in r.stderr and "keeps the shipped settings" in r.stderr and "Traceback" not in r.stderr

    _, r = _generate(tmp_path, '[bluetooth]\nmode = "classic"\n', shipped=tmp_path / "missing.conf")
    assert not any(p.exists() for p in written) and "missing.conf" in r.stderr


def test_without_output_it_prints_what_it_would_write(tmp_path, capsys):
    from sttkb.cli import main
    cfg = tmp_path / "config.toml"
    cfg.write_text('[bluetooth]\nmode = "classic"\n')
    assert main(["--config", str(cfg), "bt", "systemd-dropin", "--shipped", str(SHIPPED)]) == 0
    out = capsys.readouterr().out
    assert "ControllerMode = bredr" in out and "ExecStart=/usr/libexec/bluetooth/bluetoothd -f" in out
    cfg.write_text('[bluetooth]\nmode = "le"\n')
    assert main(["--config", str(cfg), "bt", "systemd-dropin", "--shipped", str(SHIPPED)]) == 0
    assert "uses" in capsys.readouterr().out

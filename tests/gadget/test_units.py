"""The gadget's systemd unit and udev rule: systemd accepts the unit, and it is the privileged oneshot that
sttkb.service is ordered after."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"


def unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(SERVICES / "sttkb-gadget.service")
    return cp


def test_gadget_unit_is_a_oneshot_that_sets_up_and_tears_down():
    u = unit()
    assert u["Service"]["Type"] == "oneshot" and u["Service"]["RemainAfterExit"] == "yes"
    assert u["Service"]["ExecStart"].endswith("sttkb gadget up")
    assert u["Service"]["ExecStop"].endswith("sttkb gadget down")
    assert "sttkb.service" in u["Unit"]["Before"]
    assert "User" not in u["Service"]  # root: configfs needs it; the daemon itself is unprivileged


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_unit(tmp_path):
    text = (SERVICES / "sttkb-gadget.service").read_text().replace("/usr/local/bin/sttkb", "/bin/true")
    path = tmp_path / "sttkb-gadget.service"
    path.write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "sttkb-gadget.service" not in out.stderr, out.stderr


def test_udev_rule_gives_hidg_to_the_sttkb_group_not_everyone():
    rule = (SERVICES / "70-sttkb-hidg.rules").read_text()
    line = next(l for l in rule.splitlines() if l and not l.startswith("#"))
    assert 'KERNEL=="hidg[0-9]*"' in line and 'GROUP="sttkb"' in line
    mode = re.search(r'MODE="(\d+)"', line).group(1)
    assert int(mode, 8) & 0o007 == 0

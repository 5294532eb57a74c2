"""The first-boot script and unit as files (the growth step itself runs in test_vm.py against a real kernel)."""

import configparser
import shutil
import subprocess

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "image-build" / "firstboot" / "sttkb-firstboot"
UNIT = REPO / "image-build" / "firstboot" / "sttkb-firstboot.service"


def test_script_parses_and_is_shellcheck_clean():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_unknown_step_is_refused():
    proc = subprocess.run([str(SCRIPT), "nonsense"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_unit_runs_once_before_the_daemon_and_bluetoothd():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(UNIT)
    before = unit["Unit"]["Before"].split()
    # bluetoothd must not start with the image's (empty or copied) identity before it is reset
    assert {"sttkb.service", "sttkb-gadget.service", "bluetooth.service"} <= set(before)
    assert unit["Unit"]["ConditionPathExists"] == "/var/lib/sttkb/firstboot.pending"
    assert unit["Service"]["Type"] == "oneshot"
    assert unit["Service"]["ExecStart"] == "/usr/local/libexec/sttkb/sttkb-firstboot"
    assert "systemctl disable sttkb-firstboot.service" in SCRIPT.read_text()
    assert 'rm -f "$STATE/firstboot.pending"' in SCRIPT.read_text()

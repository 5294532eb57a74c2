"""The first-boot script and unit as files (the growth step itself runs in test_vm.py against a real kernel)."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_venv_step_installs_the_wheelhouse_offline(aarch64_wheelhouse, tmp_path):
    """The first-boot venv step on this machine (x86_64 stands in for the Pi): Debian's /usr/bin/python3, a
    wheelhouse of the same kind, no index: pip, pycparser, cffi, the sttkb wheel and an xkbcommon wheel that the
    image build's own wheel maker (sttkb_image.cross_wheel.build_wheel) compiled from the lock's sdist — for this
    machine here, with its gcc and headers, as the build does for aarch64. The dpkg step needs arm64 and is not run
    here (tests/box runs the whole first boot)."""
    from sttkb_image import cross_wheel, lock, wheelhouse

    if not Path("/usr/bin/python3").exists() or shutil.which("gcc") is None:
        pytest.skip("needs Debian's /usr/bin/python3 and gcc")
    if subprocess.run(["pkg-config", "--exists", "xkbcommon"]).returncode != 0:
        pytest.skip("needs libxkbcommon-dev")
    wh = tmp_path / "opt" / "wheelhouse"
    wh.mkdir(parents=True)
    for pattern in ("pip-*.whl", "pycparser-*.whl"):
        for f in aarch64_wheelhouse.glob(pattern):      # pure-Python files: the same for both machines
            shutil.copy(f, wh)
    host_py = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    (sdist,) = aarch64_wheelhouse.glob("xkbcommon-*.tar.gz")
    here = cross_wheel.Compiler(("gcc",), (Path(f"/usr/include/python{host_py}"),), (), "linux_x86_64")
    cross_wheel.build_wheel(sdist, wh, here, tuple(map(int, host_py.split("."))),
                            lock.read(REPO / lock.RUNTIME)["cffi"], sys.executable)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                           "--python-version", host_py, "-d", str(wh), "cffi"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot download a cffi wheel for this machine: {proc.stderr.strip()[-200:]}")
    wheelhouse.build_project_wheel(REPO, tmp_path / "wheel", 1_700_000_000, sys.executable)
    for w in (tmp_path / "wheel").glob("sttkb-*.whl"):
        shutil.copy(w, wh)

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "STTKB_OPT": str(tmp_path / "opt"), "HOME": str(tmp_path)}
    proc = subprocess.run([str(SCRIPT), "venv"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    venv = tmp_path / "opt" / "venv"
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "from xkbcommon import xkb; import sttkb, sttkb.gadget; "
                          "print(xkb.Context().keymap_new_from_names(layout='de').state_new().key_get_string(29))"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == "z", out.stderr   # the compiled module works: a German host's Y key types z
    assert not list(wh.glob("*.tar.gz")) and "Building" not in proc.stdout + proc.stderr
    # the console script runs the venv's interpreter (running it needs every dependency, not shipped here)
    assert (venv / "bin" / "sttkb").read_text().splitlines()[0].startswith(f"#!{venv / 'bin' / 'python'}")
    # system site-packages visible (python3-pyaudio comes from Debian on the device)
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg

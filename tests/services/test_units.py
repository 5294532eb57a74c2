"""The daemon's systemd files, checked by systemd's own tools (systemd-analyze, -sysusers, -tmpfiles).

systemd-analyze verify needs the ExecStart binary to exist: the unit is verified as a copy whose
/usr/local/bin/sttkb points at this checkout's venv (the image links /usr/local/bin/sttkb there too).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
VENV_STTKB = Path(sys.executable).with_name("sttkb")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze missing: scripts/setup --test installs systemd")


def _unit(name: str) -> dict[str, list[str]]:
    """Unit file as {"Section.Key": [values]} (keys may repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in (SERVICES / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def _installed_copy(tmp_path: Path, name: str) -> Path:
    text = (SERVICES / name).read_text().replace("/usr/local/bin/sttkb", str(VENV_STTKB))
    dst = tmp_path / name
    dst.write_text(text)
    return dst


def test_sttkb_service_passes_systemd_analyze_verify(tmp_path):
    assert VENV_STTKB.exists()
    units = [_installed_copy(tmp_path, "sttkb.service")]  # sttkb-gadget.service is verified by its own tests
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)], capture_output=True,
                       text=True, timeout=60)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "sttkb" in line]
    assert r.returncode == 0 and ours == [], r.stdout + r.stderr  # unknown keys are only warnings: none allowed


def test_verify_would_catch_a_broken_unit(tmp_path):
    bad = _installed_copy(tmp_path, "sttkb.service")
    bad.write_text(bad.read_text().replace("ProtectClock=", "ProtectClok=").replace(str(VENV_STTKB), "/nope"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "ProtectClok" in r.stderr


def test_service_is_a_watched_unprivileged_notify_daemon():
    u = _unit("sttkb.service")
    assert u["Service.Type"] == ["notify"]
    assert int(u["Service.WatchdogSec"][0]) >= 10
    assert u["Service.Restart"] == ["on-failure"]
    assert u["Service.User"] == ["sttkb"] and u["Service.Group"] == ["sttkb"]
    assert set(u["Service.SupplementaryGroups"][0].split()) >= {"audio", "gpio", "bluetooth"}
    assert u["Service.ExecStart"][0].split()[1:] == ["run"]
    assert "sttkb-gadget.service" in u["Unit.After"][0]
    for key, value in {"ProtectSystem": "strict", "PrivateTmp": "true", "NoNewPrivileges": "true",
                       "ReadWritePaths": "/var/lib/sttkb", "RuntimeDirectory": "sttkb",
                       "StateDirectory": "sttkb", "DevicePolicy": "closed"}.items():
        assert u[f"Service.{key}"] == [value], key
    assert set(u["Service.RestrictAddressFamilies"][0].split()) <= {"AF_UNIX", "AF_BLUETOOTH"}
    # The only capability: reading the HCI monitor for Bluetooth delivery tracking (no raw IP: no AF_INET above).
    assert u["Service.CapabilityBoundingSet"] == ["CAP_NET_RAW"] == u["Service.AmbientCapabilities"]
    assert {"char-alsa rw", "char-hidg rw", "char-gpiochip rw"} <= set(u["Service.DeviceAllow"])


def test_paths_in_the_unit_match_the_daemon_defaults(monkeypatch):
    from sttkb.config import Config
    from sttkb.daemon.journal import default_path
    u = _unit("sttkb.service")
    assert Config().daemon.control_socket == f"/run/{u['Service.RuntimeDirectory'][0]}/control.sock"
    monkeypatch.setenv("STATE_DIRECTORY", f"/var/lib/{u['Service.StateDirectory'][0]}")  # what systemd sets
    assert default_path() == Path("/var/lib/sttkb/journal.jsonl")


def test_security_exposure_is_low(tmp_path):
    unit = _installed_copy(tmp_path, "sttkb.service")
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=60)
    m = re.search(r"Overall exposure level for sttkb.service: ([\d.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"systemd-analyze security: exposure {m.group(1)} (0 = locked down, 10 = exposed)")
    assert float(m.group(1)) <= 2.5


def test_sysusers_and_tmpfiles_make_the_account_and_state_dir(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for f in ("passwd", "group", "shadow", "gshadow"):
        (root / "etc" / f).write_text("")
    r = subprocess.run(["systemd-sysusers", f"--root={root}", str(SERVICES / "sttkb.sysusers.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    passwd = (root / "etc/passwd").read_text()
    group = (root / "etc/group").read_text()
    user = next(line.split(":") for line in passwd.splitlines() if line.startswith("sttkb:"))
    assert int(user[2]) < 1000 and user[5] == "/var/lib/sttkb"  # a system account
    for g in ("audio", "gpio", "bluetooth"):
        assert re.search(rf"^{g}:x:\d+:.*\bsttkb\b", group, re.M), g
    r = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create", str(SERVICES / "sttkb.tmpfiles.conf")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    st = (root / "var/lib/sttkb").stat()
    assert oct(st.st_mode & 0o777) == "0o750"
    if os.geteuid() == 0:  # only root can chown
        assert st.st_uid == int(user[2])


def test_exec_start_is_a_real_command():
    r = subprocess.run([str(VENV_STTKB), "run", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--simulate" in r.stdout

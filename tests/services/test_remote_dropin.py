"""sttkb.service opens to IP only for a configured remote engine, and then only to its address: the generator
(services/system-generators/sttkb-remote-generator) writes the drop-in, and systemd's own offline analysis
(`systemd-analyze security --offline`) reads the unit with it. A real PID 1 is not available here: what systemd
does at boot with the generator's output is checked only in the whole-box VM, not by these tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sttkb.cli.remote import DROPIN_NAME, dropin_text, nameservers
from sttkb.config import parse_config

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
GENERATOR = SERVICES / "system-generators" / "sttkb-remote-generator"
VENV_STTKB = Path(sys.executable).with_name("sttkb")


def _asr(text: str):
    return parse_config("[asr]\n" + text).asr


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_local_engine_opens_nothing():
    assert dropin_text(_asr('engine = "local"')) is None


def test_an_address_opens_exactly_that_address():
    text = dropin_text(_asr('engine = "wyoming://192.168.1.20:10300"'))
    assert _lines(text) == ["[Service]", "RestrictAddressFamilies=AF_INET AF_INET6", "IPAddressAllow=192.168.1.20"]
    text = dropin_text(_asr('engine = "https://[fd00::5]:8443/v1/audio/transcriptions"'))
    assert "IPAddressAllow=fd00::5" in _lines(text)


def test_a_name_opens_its_addresses_and_the_dns_servers(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# comment\nnameserver 192.168.1.1\nnameserver fe80::1%eth0\noptions edns0\n")
    assert nameservers(resolv) == ["192.168.1.1", "fe80::1"]

    def resolve(host, port, type):
        assert (host, port) == ("gpu.lan", 443)
        return [(socket.AF_INET, type, 6, "", ("192.168.1.30", port)),
                (socket.AF_INET6, type, 6, "", ("fd00::30", port, 0, 0))]
    text = dropin_text(_asr('engine = "https://gpu.lan/v1/audio/transcriptions"'), resolve=resolve,
                       resolv_conf=resolv)
    assert "IPAddressAllow=192.168.1.30 fd00::30 192.168.1.1 fe80::1" in _lines(text)

    def unresolvable(host, port, type):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    text = dropin_text(_asr('engine = "https://gpu.lan/v1/audio/transcriptions"'), resolve=unresolvable,
                       resolv_conf=resolv)
    assert "IPAddressAllow=192.168.1.1 fe80::1" in _lines(text) and "did not resolve" in text


def test_the_api_key_reaches_the_service_as_a_credential():
    text = dropin_text(_asr('engine = "https://10.0.0.2/v1/audio/transcriptions"\n'
                            'remote_api_key_file = "/etc/sttkb/remote.key"'))
    assert "LoadCredential=sttkb-remote-api-key:/etc/sttkb/remote.key" in _lines(text)


def _generate(tmp_path: Path, config: str) -> Path:
    """Run the generator as systemd would (its first argument: the generator output directory)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    out = tmp_path / "generator"
    out.mkdir(exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "STTKB": str(VENV_STTKB), "STTKB_CONFIG": str(cfg)}
    r = subprocess.run(["sh", str(GENERATOR), str(out), str(tmp_path / "early"), str(tmp_path / "late")],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out / "sttkb.service.d" / DROPIN_NAME


def test_generator_writes_the_dropin_only_for_a_remote_engine(tmp_path):
    assert os.access(GENERATOR, os.X_OK)
    dropin = _generate(tmp_path, '[asr]\nengine = "wyoming://10.1.2.3:10300"\n')
    assert "IPAddressAllow=10.1.2.3" in dropin.read_text()
    assert not _generate(tmp_path, '[asr]\nengine = "local"\n').exists()      # and an old one is gone
    assert not _generate(tmp_path, '[asr]\nengine = "wyoming://10.1.2.3"\n').exists()   # a broken config: closed


needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze missing: scripts/setup --test installs systemd")


def _security(unit_dir: Path) -> dict[str, bool]:
    """systemd's offline security analysis of sttkb.service in ``unit_dir`` (with any drop-in beside it):
    {check name: passed}."""
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                        str(unit_dir / "sttkb.service")], capture_output=True, text=True, timeout=120)
    out = {}
    for line in r.stdout.splitlines():
        line = line.strip()
        if line[:1] in ("✓", "✗"):
            out[line[1:].split()[0]] = line[0] == "✓"
    assert out, r.stdout + r.stderr
    return out


@needs_systemd
def test_systemd_reads_the_unit_with_the_generated_dropin(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (units / "sttkb.service").write_text((SERVICES / "sttkb.service").read_text().replace(
        "/usr/local/bin/sttkb", str(VENV_STTKB)))
    closed = _security(units)
    assert closed["IPAddressDeny="] and closed["RestrictAddressFamilies=~AF_(INET|INET6)"]

    dropin = _generate(tmp_path, '[asr]\nengine = "wyoming://192.168.1.20:10300"\n')
    (units / "sttkb.service.d").mkdir()
    shutil.copy(dropin, units / "sttkb.service.d" / DROPIN_NAME)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(units / "sttkb.service")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "sttkb" not in r.stdout + r.stderr, r.stdout + r.stderr
    opened = _security(units)
    assert not opened["IPAddressDeny="]                                   # an allow list ...
    assert not opened["RestrictAddressFamilies=~AF_(INET|INET6)"]         # ... and the IP families
    assert opened["RestrictAddressFamilies=~AF_PACKET"] and opened["RestrictAddressFamilies=~AF_NETLINK"]
    assert {k: v for k, v in opened.items() if "IPAddress" not in k and "AF_(INET" not in k} == \
        {k: v for k, v in closed.items() if "IPAddress" not in k and "AF_(INET" not in k}   # nothing else changed

"""End-to-end builds from the synthetic base image, checked on the host with debugfs and mtools.

Real tools throughout (sfdisk, mtools, debugfs, e2fsck, resize2fs, pip, apt-get); the wheelhouse and the Debian
.debs are downloaded once and cached under ~/.cache/sttkb-tests/image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.image.conftest import EPOCH, Built, mtype, options, sha256, tool_dir_without
from tests.image.synthetic import make_base_image

from sttkb_image import build as image_build
from sttkb_image import box_python, lock, units, wheelhouse
from sttkb_image.errors import BaseImageError, ChecksumError, MissingToolError, SpaceError

BUILD_IMAGE = REPO / "image-build" / "build-image"


def listing(built: Built, path: str) -> dict:
    entries = built.root.listdir(path)
    assert entries is not None, f"{path} missing in the image"
    return entries


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".partial" in p.name)


# ---------------------------------------------------------------------------------------------------- contents

def test_boot_partition_is_set_up_for_usb_device_mode(built):
    config = mtype(built, "config.txt")
    active = [x.strip() for x in config.splitlines() if x.strip() and not x.startswith("#")]
    assert active[-2:] == ["[all]", "dtoverlay=dwc2,dr_mode=peripheral"]
    assert "otg_mode=1" not in active
    cmdline = mtype(built, "cmdline.txt")
    assert cmdline.count("\n") == 1
    assert "modules-load=dwc2,libcomposite" in cmdline.split()
    assert "init=/usr/lib/raspberrypi-sys-mods/firstboot" in cmdline.split()   # Pi OS's own first boot kept


def test_wheelhouse_has_an_aarch64_wheel_for_every_runtime_dependency(built):
    names = sorted(listing(built, "/opt/sttkb/wheelhouse"))
    assert wheelhouse.non_aarch64(names) == []
    have = {re.split(r"-\d", n, maxsplit=1)[0].lower().replace("_", "-") for n in names}
    for req in wheelhouse.runtime_requirements(REPO / "pyproject.toml"):
        dep = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower().replace("_", "-")
        if dep in box_python.APT_PROVIDED:
            continue
        assert dep in have, f"no wheel or sdist for {dep} in the image's wheelhouse"
    # exactly the lock's versions (the ones the dev/CI venv has), plus the project's own wheel
    dists = {wheelhouse.dist_of(n) for n in names} - {None}
    locked = {(n, v) for n, v in lock.read(REPO / lock.RUNTIME).items() if n not in box_python.APT_PROVIDED}
    assert {d for d in dists if d[0] != "sttkb"} == locked
    assert any(n.startswith("sttkb-") and n.endswith("-py3-none-any.whl") for n in names)
    assert any(n.startswith("pip-") for n in names)         # the first boot bootstraps the venv with it
    # the source-only xkbcommon compiled by the build: the box installs wheels only, and has no compiler for an sdist
    assert [n for n in names if n.endswith(".tar.gz")] == []
    assert any(n.startswith("xkbcommon-") and n.endswith("-cp311-abi3-linux_aarch64.whl") for n in names)
    pyaudio_deb = [n for n in listing(built, "/opt/sttkb/debs") if n.startswith("python3-pyaudio_")]
    assert pyaudio_deb and pyaudio_deb[0].endswith("_arm64.deb")


def _objdump_count(library: Path, pattern: str) -> int:
    out = subprocess.run(["aarch64-linux-gnu-objdump", "-d", str(library)], capture_output=True, text=True,
                         check=True).stdout
    return len(re.findall(pattern, out))


def test_the_image_carries_a_pi5_build_of_ggml_that_stands_in_for_the_wheels(built, tmp_path):
    """/opt/sttkb/ggml-cpu: the Pi 5 build carries the wheel's own library names (so the loader can put it in the
    wheel's place) and, unlike the wheel's ARMv8.0 build, dot-product and FP16 vector instructions. That it is
    chosen on a Cortex-A76 only, and transcribes there: tests/image/test_engine_aarch64.py."""
    import zipfile
    tree = built.root.extract_tree("/opt/sttkb/ggml-cpu", tmp_path)
    manifest = json.loads((tree / "manifest.json").read_text())
    wheel = next(built.wheelhouse.glob("pywhispercpp-*.whl"))
    assert manifest["wheel"] == wheel.name
    with zipfile.ZipFile(wheel) as z:
        libs = {n.split("/")[-1]: n for n in z.namelist() if n.startswith("pywhispercpp.libs/")}
        own = tmp_path / "own.so"
        own.write_bytes(z.read(libs[manifest["soname"]]))
    assert manifest["base"] in libs and manifest["openmp"] in libs
    variant = tree / "armv8.2-dotprod-fp16" / "libggml-cpu.so"
    soname = subprocess.run(["patchelf", "--print-soname", str(variant)], capture_output=True, text=True,
                            check=True).stdout.strip()
    needed = subprocess.run(["patchelf", "--print-needed", str(variant)], capture_output=True, text=True,
                            check=True).stdout.split()
    assert soname == manifest["soname"] and {manifest["base"], manifest["openmp"]} <= set(needed), (soname, needed)
    assert not any(n.startswith(("libggml-base.so", "libgomp.so")) for n in needed), needed
    dot, fp16 = r"\s[su]dot\s", r"\sfmla\s+v\d+\.8h"
    assert _objdump_count(variant, dot) > 100 and _objdump_count(variant, fp16) > 0
    assert _objdump_count(own, dot) == 0 and _objdump_count(own, fp16) == 0


def test_default_model_and_manifest_are_in_the_store(built, default_model):
    models = listing(built, "/var/lib/sttkb/models")
    bin_name, json_name = default_model.name, default_model.with_suffix(".json").name
    assert set(models) >= {bin_name, json_name}
    for name, host in ((bin_name, default_model), (json_name, default_model.with_suffix(".json"))):
        data = built.root.read(f"/var/lib/sttkb/models/{name}")
        assert hashlib.sha256(data).digest() == hashlib.sha256(host.read_bytes()).digest()
    uid = int(built.root.read("/etc/passwd").decode().split("sttkb:x:")[1].split(":")[0])
    assert models[bin_name].uid == uid
    state = built.root.stat("/var/lib/sttkb")
    assert state.uid == uid and state.mode & 0o777 == 0o750


def test_units_are_installed_and_enabled(built):
    wants = listing(built, "/etc/systemd/system/multi-user.target.wants")
    assert built.root.readlink("/etc/systemd/system/multi-user.target.wants/sttkb-firstboot.service") == \
        "/etc/systemd/system/sttkb-firstboot.service"
    for placement in units.place_service_files(REPO / "services"):
        assert built.root.stat(str(placement.target)) is not None, placement.target
        if placement.target.parent == units.UNIT_DIR:
            for link in units.enable_links(placement.target.name, placement.source.read_text()):
                assert built.root.readlink(str(link.path)) == link.target
    assert "sttkb-firstboot.service" in wants
    script = built.root.stat("/usr/local/libexec/sttkb/sttkb-firstboot")
    assert script.mode & 0o777 == 0o755


def test_config_user_hostname_and_identity(built):
    example = REPO / "device" / "config" / "example.toml"
    if example.exists():
        assert built.root.read("/etc/sttkb/config.toml") == example.read_bytes()
    assert built.root.read("/etc/hostname") == b"sttkb\n"
    assert "127.0.1.1\tsttkb" in built.root.read("/etc/hosts").decode().splitlines()
    assert built.root.read("/etc/machine-id") == b""            # each box makes its own at first boot
    assert "sttkb" in built.root.read("/etc/passwd").decode()
    shadow = built.root.stat("/etc/shadow")
    assert (shadow.mode & 0o777, shadow.gid) == (0o640, 42)       # permissions of the base kept
    assert built.root.stat("/var/lib/sttkb/firstboot.pending") is not None
    # off by default
    assert built.root.stat("/etc/NetworkManager/system-connections/sttkb-wifi.nmconnection") is None
    assert "image.conf" in listing(built, "/etc/sttkb")
    assert b"READ_ONLY_ROOT=0" in built.root.read("/etc/sttkb/image.conf")


def test_the_base_image_is_not_modified_and_no_temp_files_remain(built, base_image):
    assert sha256(base_image) == hashlib.sha256(base_image.read_bytes()).hexdigest()
    assert mtype_base_unchanged(base_image)
    assert leftovers(built.path.parent) == []


def mtype_base_unchanged(base: Path) -> bool:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    out = subprocess.run(["mtype", "-i", f"{base}@@{4 << 20}", "::/config.txt"], capture_output=True,
                         env=env).stdout.decode()
    return "dr_mode=peripheral" not in out


# ------------------------------------------------------------------------------------------------- options

def test_wifi_ssh_and_read_only_options_and_a_used_machine_id(build_image, tmp_path):
    """Also from a base whose /etc/machine-id holds a real id (made from a used card): it must be emptied."""
    base = make_base_image(tmp_path / "used.img", tmp_path / "used", machine_id="0123456789abcdef0123456789abcdef\n")
    keys = tmp_path / "keys.pub"
    keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test@example\n")
    out = build_image(tmp_path / "opts.img", hostname="kb-office", wifi_ssid="Office", wifi_psk="correct horse",
                      wifi_country="gb", ssh=True, ssh_authorized_keys=keys, read_only_root=True, base=base)
    assert out.root.read("/etc/machine-id") == b""
    conn = out.root.stat("/etc/NetworkManager/system-connections/sttkb-wifi.nmconnection")
    assert conn is not None and conn.mode & 0o777 == 0o600 and conn.uid == 0
    text = out.root.read("/etc/NetworkManager/system-connections/sttkb-wifi.nmconnection").decode()
    assert "ssid=Office" in text and "psk=correct horse" in text
    assert "cfg80211.ieee80211_regdom=GB" in mtype(out, "cmdline.txt").split()
    assert mtype(out, "ssh") == ""                                   # Pi OS's sshswitch turns sshd on
    assert out.root.read("/root/.ssh/authorized_keys") == keys.read_bytes()
    assert out.root.read("/etc/hostname") == b"kb-office\n"
    conf = out.root.read("/etc/sttkb/image.conf").decode()
    assert "READ_ONLY_ROOT=1" in conf and "WIFI=1" in conf
    assert any(n.startswith("overlayroot_") for n in listing(out, "/opt/sttkb/debs"))


# --------------------------------------------------------------------------------------------- reproducible

def tree_manifest(built: Built, dest: Path) -> dict[str, tuple]:
    """Every path of the root filesystem with type, mode, owner, mtime and content hash (via debugfs rdump)."""
    dest.mkdir()
    subprocess.run(["debugfs", "-R", f"rdump / {dest}", built.root.spec], check=True, capture_output=True)
    manifest = {}
    for path in sorted(dest.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(dest))
        if path.is_symlink():
            manifest[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            manifest[rel] = ("dir", st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime))
        else:
            manifest[rel] = ("file", st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime),
                             hashlib.sha256(path.read_bytes()).hexdigest())
    return manifest


def boot_manifest(built: Built) -> tuple:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", TZ="UTC")
    listing_ = subprocess.run(["mdir", "-i", f"{built.path}@@{built.boot_offset}", "::/"], capture_output=True,
                              env=env, check=True).stdout.decode()
    lines = [x for x in listing_.splitlines() if x.strip() and not x.startswith((" Volume", " Directory"))
             and "bytes free" not in x]
    return tuple(lines), mtype(built, "config.txt"), mtype(built, "cmdline.txt")


def snapshot(dest: Path) -> Path:
    """A frozen copy of the checkout's inputs, so edits made to the working tree meanwhile cannot differ."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "device", "gadget", "services"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def test_building_twice_gives_the_same_tree(build_image, tmp_path):
    repo = snapshot(tmp_path / "repo")
    built = build_image(tmp_path / "first.img", repo=repo)
    second = build_image(tmp_path / "again.img", repo=repo)
    first_tree = tree_manifest(built, tmp_path / "t1")
    second_tree = tree_manifest(second, tmp_path / "t2")
    assert first_tree == second_tree
    assert first_tree["opt/sttkb/wheelhouse"][4] == EPOCH
    assert boot_manifest(built) == boot_manifest(second)
    assert built.path.stat().st_size == second.path.stat().st_size


# ----------------------------------------------------------------------------------------------- failures

def test_wrong_sha256_is_refused_before_anything_is_written(base_image, aarch64_wheelhouse, default_model,
                                                            tmp_path):
    out = tmp_path / "x.img"
    with pytest.raises(ChecksumError, match="download it again"):
        image_build.build(options(base_image, out, aarch64_wheelhouse, default_model, sha="0" * 64))
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_corrupt_base_image_gives_a_clear_error_and_no_output(base_image, aarch64_wheelhouse, default_model,
                                                             tmp_path):
    corrupt = tmp_path / "corrupt.img"
    data = bytearray(base_image.read_bytes())
    root_start = (4 + 40) << 20
    data[root_start:root_start + (2 << 20)] = b"\xff" * (2 << 20)    # superblock and group descriptors gone
    corrupt.write_bytes(bytes(data))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(BaseImageError, match="ext4"):
        image_build.build(options(corrupt, out_dir / "x.img", aarch64_wheelhouse, default_model))
    assert list(out_dir.iterdir()) == []

    truncated = tmp_path / "truncated.img"
    truncated.write_bytes(bytes(data[: 20 << 20]))
    with pytest.raises(BaseImageError, match="truncated"):
        image_build.build(options(truncated, out_dir / "x.img", aarch64_wheelhouse, default_model))
    assert list(out_dir.iterdir()) == []


def test_too_little_space_in_the_root_filesystem(base_image, aarch64_wheelhouse, default_model, tmp_path):
    with pytest.raises(SpaceError, match="--no-grow"):
        image_build.build(options(base_image, tmp_path / "x.img", aarch64_wheelhouse, default_model, grow=False))
    assert list(tmp_path.iterdir()) == []


def test_too_little_space_in_the_output_directory(base_image, aarch64_wheelhouse, default_model, tmp_path):
    """A 32 MiB tmpfs as the output directory (needs root to mount; skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root?)")
    try:
        with pytest.raises(SpaceError, match="MiB free"):
            image_build.build(options(base_image, mnt / "x.img", aarch64_wheelhouse, default_model))
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_missing_tool_is_named_with_its_package(base_image, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tool_dir_without(tmp_path, "debugfs")))
    with pytest.raises(MissingToolError, match=r"debugfs.*apt-get install e2fsprogs"):
        image_build.build(options(base_image, tmp_path / "x.img", tmp_path, tmp_path / "m.bin"))
    assert not (tmp_path / "x.img").exists()


def test_command_line_errors_are_one_line_without_traceback(base_image, tmp_path):
    proc = subprocess.run([sys.executable, str(BUILD_IMAGE), str(base_image), "--sha256", "ab" * 32,
                           "-o", str(tmp_path / "x.img")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1].startswith("build-image: error:") and "Traceback" not in proc.stderr
    assert "raspberrypi.com/software/operating-systems" in proc.stderr
    proc = subprocess.run([sys.executable, str(BUILD_IMAGE)], capture_output=True, text=True)
    assert proc.returncode == 2 and "raspberrypi.com/software/operating-systems" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_xz_download_is_checked_and_unpacked_and_corrupt_xz_is_refused(base_image, build_image, tmp_path,
                                                                       aarch64_wheelhouse, default_model):
    """The official download is .img.xz and its published sha256 is that of the .xz file."""
    xz = tmp_path / "raspios-lite-test.img.xz"
    with open(xz, "wb") as f:
        subprocess.run(["xz", "-T1", "-1", "-c", str(base_image)], stdout=f, check=True)
    out = build_image(tmp_path / "from-xz.img", base=xz)
    assert "modules-load=dwc2,libcomposite" in mtype(out, "cmdline.txt")
    assert out.root.stat("/opt/sttkb/wheelhouse") is not None

    bad = tmp_path / "bad.img.xz"
    data = bytearray(xz.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(4096)
    bad.write_bytes(bytes(data))
    out_dir = tmp_path / "bad-out"
    out_dir.mkdir()
    with pytest.raises(BaseImageError, match="download it again"):
        image_build.build(options(bad, out_dir / "x.img", aarch64_wheelhouse, default_model))
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("change, message", [
    ({"hostname": "Bad_Name"}, "--hostname"),
    ({"wifi_ssid": "x", "wifi_psk": "longenough"}, "--wifi-country"),
    ({"wifi_ssid": "x", "wifi_psk": "short", "wifi_country": "GB"}, "8 to 63"),
    ({"wifi_ssid": "x" * 33, "wifi_psk": "longenough", "wifi_country": "GB"}, "32 bytes"),
    ({"wifi_ssid": "x", "wifi_psk": "longenough", "wifi_country": "GBR"}, "two-letter"),
    ({"ssh": True}, "--ssh-authorized-keys"),
])
def test_bad_option_combinations_are_refused_before_any_work(base_image, tmp_path, change, message):
    opts = options(base_image, tmp_path / "x.img", tmp_path, tmp_path / "none.bin")
    opts = image_build.Options(**{**opts.__dict__, "model": None, **change})
    with pytest.raises(image_build.Error, match=re.escape(message)):
        image_build.validate(opts)


def test_output_must_not_be_the_base(base_image):
    opts = options(base_image, base_image, base_image.parent, base_image)
    with pytest.raises(image_build.Error, match="never modified"):
        image_build.build(opts)


def test_command_line_build(base_image, aarch64_wheelhouse, default_model, tmp_path):
    """The documented command, end to end (with the cached wheelhouse and model so it needs no PyPI)."""
    from tests.image.conftest import IMAGE_CACHE, TEST_APT_PACKAGES

    out = tmp_path / "cli.img"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH))
    proc = subprocess.run([str(BUILD_IMAGE), str(base_image), "--sha256", sha256(base_image), "-o", str(out),
                           "--wheelhouse", str(aarch64_wheelhouse), "--model", str(default_model),
                           "--apt-packages", ",".join(TEST_APT_PACKAGES), "--cache", str(IMAGE_CACHE),
                           "--hostname", "desk-kb"], capture_output=True, text=True, env=env)
    if proc.returncode != 0 and "downloading arm64 packages failed" in proc.stderr:
        pytest.skip("Debian archive unreachable")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    from sttkb_image.ext4 import Ext4
    from sttkb_image.partitions import read_layout
    layout = read_layout(out)
    root = Ext4(out, layout.root.start)
    assert root.read("/etc/hostname") == b"desk-kb\n"
    assert root.stat("/opt/sttkb/wheelhouse").mode & 0o777 == 0o755
    assert leftovers(tmp_path) == []


def test_default_debian_package_set_resolves_for_arm64(built):
    """The full default set (PyAudio, libxkbcommon for the cross-built xkbcommon module, overlayroot) exists in
    Debian's arm64 archive and resolves against a Pi OS-like dpkg status (simulated with the index the build
    fetched), and brings no compiler or headers onto the box."""
    from sttkb_image import debs
    from tests.image.conftest import IMAGE_CACHE
    from tests.image.synthetic import DPKG_STATUS

    wanted = debs.DEVICE_PACKAGES + debs.READ_ONLY_PACKAGES
    names = debs.simulate(wanted, "bookworm", DPKG_STATUS.encode(), IMAGE_CACHE)
    assert set(wanted) <= set(names)
    assert {"libportaudio2", "xkb-data"} <= set(names)     # dependencies come along
    assert not [n for n in names if n.startswith(("gcc", "cpp", "libc6-dev", "libpython3.11-dev", "binutils"))], names
    # libc6 may appear: libc6-dev needs exactly the archive's libc6, an upgrade dpkg applies at first boot

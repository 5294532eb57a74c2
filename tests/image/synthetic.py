"""A small stand-in for a Raspberry Pi OS Lite image: the same partition layout (FAT32 boot + ext4 root), the boot
files and the root files the build reads or replaces, with Bookworm's own config.txt text. Made with sfdisk,
mkfs.vfat + mcopy and mkfs.ext4 -d — no mounting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


from sttkb_image.debian_base import CONFIG_TXT  # Raspberry Pi OS Bookworm's config.txt

MIB = 1 << 20

CMDLINE_TXT = ("console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes "
               "rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n")
PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
messagebus:x:100:107::/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
daemon:x:1:
shadow:x:42:
audio:x:29:
input:x:101:
messagebus:x:107:
bluetooth:x:112:
gpio:x:997:
systemd-network:x:998:
"""
SHADOW = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
GSHADOW = "root:*::\nshadow:*::\naudio:*::\nbluetooth:*::\ngpio:!::\n"
# The packages python3-pyaudio needs that every Raspberry Pi OS Lite has, so the test's apt step downloads only a
# handful of small .debs (a real image's status file lists ~600 packages).
DPKG_STATUS = "".join(
    f"Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: {version}\n\n"
    for name, version, arch in [
        ("libc6", "2.36-9+deb12u9", "arm64"), ("python3", "3.11.2-1+b1", "arm64"),
        ("python3-minimal", "3.11.2-1+b1", "arm64"), ("libpython3-stdlib", "3.11.2-1+b1", "arm64"),
        ("python3.11", "3.11.2-6+deb12u9", "arm64"), ("libasound2", "1.2.8-1+b1", "arm64"),
        ("libstdc++6", "12.2.0-14+deb12u1", "arm64"), ("libgcc-s1", "12.2.0-14+deb12u1", "arm64"),
        ("libdb5.3", "5.3.28+dfsg2-1", "arm64"), ("libopus0", "1.3.1-3", "arm64"),
        ("libsamplerate0", "0.2.2-3", "arm64"),
        ("dpkg", "1.21.23", "arm64"), ("libacl1", "2.3.1-3", "arm64"), ("libbz2-1.0", "1.0.8-5+b1", "arm64"),
        ("libcom-err2", "1.47.0-2+b2", "arm64"), ("libcrypt1", "1:4.4.33-2", "arm64"),
        ("libexpat1", "2.5.0-1+deb12u5", "arm64"), ("libffi8", "3.4.4-1", "arm64"),
        ("libgssapi-krb5-2", "1.20.1-2+deb12u5", "arm64"), ("libk5crypto3", "1.20.1-2+deb12u5", "arm64"),
        ("libkeyutils1", "1.6.3-2", "arm64"), ("libkrb5-3", "1.20.1-2+deb12u5", "arm64"),
        ("libkrb5support0", "1.20.1-2+deb12u5", "arm64"), ("liblzma5", "5.4.1-1+deb12u2", "arm64"),
        ("libmd0", "1.0.4-2", "arm64"), ("libncursesw6", "6.4-4", "arm64"), ("libnsl2", "1.3.0-2", "arm64"),
        ("libpcre2-8-0", "10.42-1+deb12u2", "arm64"), ("libpython3.11-minimal", "3.11.2-6+deb12u9", "arm64"),
        ("libpython3.11-stdlib", "3.11.2-6+deb12u9", "arm64"), ("libreadline8", "8.2-1.3", "arm64"),
        ("libselinux1", "3.4-1+b6", "arm64"), ("libsqlite3-0", "3.40.1-2+deb12u2", "arm64"),
        ("libssl3", "3.0.22-1~deb12u2", "arm64"), ("libtinfo6", "6.4-4", "arm64"),
        ("libtirpc-common", "1.3.3+ds-1", "all"), ("libtirpc3", "1.3.3+ds-1", "arm64"),
        ("libuuid1", "2.38.1-5+deb12u3", "arm64"), ("libzstd1", "1.5.4+dfsg2-5", "arm64"),
        ("media-types", "10.0.0", "all"), ("python3.11-minimal", "3.11.2-6+deb12u9", "arm64"),
        ("readline-common", "8.2-1.3", "all"), ("tar", "1.34+dfsg-1.2+deb12u1", "arm64"),
        ("zlib1g", "1:1.2.13.dfsg-1", "arm64")])


def _root_tree(root: Path, machine_id: str) -> None:
    files = {
        "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n',
        "etc/passwd": PASSWD, "etc/group": GROUP, "etc/shadow": SHADOW, "etc/gshadow": GSHADOW,
        "etc/hostname": "raspberrypi\n",
        "etc/hosts": "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\traspberrypi\n",
        "etc/machine-id": machine_id,
        "var/lib/dpkg/status": DPKG_STATUS,
        "usr/bin/python3.11": "#!/bin/false\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for d in ("etc/systemd/system/multi-user.target.wants", "var/lib/bluetooth", "usr/local/bin", "opt",
              "etc/NetworkManager/system-connections", "root", "boot/firmware"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.symlink("python3.11", root / "usr/bin/python3")
    for name in ("shadow", "gshadow"):
        os.chmod(root / "etc" / name, 0o640)
        os.chown(root / "etc" / name, 0, 42)
    os.chmod(root / "usr/bin/python3.11", 0o755)


def make_base_image(path: Path, work: Path, *, boot_mib: int = 40, root_mib: int = 48, machine_id: str = "") -> Path:
    """Write a raw image at ``path``: boot (FAT32, type c) at 4 MiB, root (ext4, type 83) after it.
    ``machine_id``: the content of /etc/machine-id (Raspberry Pi OS ships it empty)."""
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000", E2FSPROGS_FAKE_TIME="1700000000", TZ="UTC",
               MTOOLS_SKIP_CHECK="1")
    boot = work / "boot.fat"
    boot.unlink(missing_ok=True)
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", "bootfs", "-i", "4e639091", "-C", str(boot),
                    str(boot_mib * 1024)], check=True, capture_output=True, env=env)
    for name, text in (("config.txt", CONFIG_TXT), ("cmdline.txt", CMDLINE_TXT)):
        src = work / name
        src.write_text(text)
        subprocess.run(["mcopy", "-i", str(boot), str(src), f"::/{name}"], check=True, env=env)
    tree = work / "rootfs"
    if not tree.exists():
        _root_tree(tree, machine_id)
    rootfs = work / "root.ext4"
    rootfs.unlink(missing_ok=True)
    subprocess.run(["mkfs.ext4", "-q", "-b", "4096", "-L", "rootfs", "-U", "1b2c3d4e-0000-4000-8000-000000000001",
                    "-E", "hash_seed=1b2c3d4e-0000-4000-8000-000000000002", "-d", str(tree), str(rootfs),
                    f"{root_mib}M"], check=True, env=env)
    boot_start, root_start = 4 * MIB, (4 + boot_mib) * MIB
    with open(path, "wb") as img:
        img.truncate(root_start + root_mib * MIB)
    layout = (f"label: dos\nlabel-id: 0x4e639091\nstart={boot_start // 512}, size={boot_mib * 2048}, type=c\n"
              f"start={root_start // 512}, size={root_mib * 2048}, type=83\n")
    subprocess.run(["sfdisk", "-q", str(path)], input=layout.encode(), check=True)
    with open(path, "r+b") as img:
        for offset, part in ((boot_start, boot), (root_start, rootfs)):
            img.seek(offset)
            img.write(part.read_bytes())
    return path

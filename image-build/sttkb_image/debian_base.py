"""A stand-in for Raspberry Pi OS Lite (arm64, Bookworm) made from Debian's own arm64 packages.

Raspberry Pi OS cannot be downloaded everywhere (not on the project's CI machines), yet the SD image build and the
whole box must be tried on a real system. Raspberry Pi OS arm64 *is* Debian bookworm arm64 plus Raspberry Pi
packages, so this makes a bootable Debian bookworm arm64 image with the same two-partition layout — and without
binfmt_misc, loop mounts or KVM:

1. first stage on the build host: ``debootstrap --foreign --arch=arm64`` unpacks the essential packages and
   downloads the rest (signatures checked with debian-archive-keyring);
2. ``mkfs.ext4 -d`` turns that tree into the root filesystem;
3. second stage inside the emulated machine (:mod:`arm64_vm`, ``-cpu cortex-a72``): the packages' own arm64
   maintainer scripts run as they would on a Pi, then a few Pi-OS-like settings, then power off;
4. the FAT32 boot partition (Bookworm's config.txt, a cmdline.txt, the kernel and initramfs) and the root are
   written into one MBR image, as Raspberry Pi OS lays them out.

What differs from Raspberry Pi OS Lite (documented in docs/image.md): no Raspberry Pi firmware/bootloader files,
Debian's generic arm64 kernel (linux-image-arm64) instead of the Raspberry Pi kernel, so it boots in qemu's ``virt``
machine and not on a Pi; the root is ``/dev/vda2`` instead of ``PARTUUID=…-02``; no raspi-config, no userconf
(first-user wizard), no NetworkManager, no raspberrypi-sys-mods (which would create the gpio/i2c/spi groups and
udev rules: the stand-in adds the gpio group only); fewer packages (systemd, udev, dbus, Python 3.11, BlueZ,
ALSA utilities, the disk tools the first boot uses).

The result is cached by its inputs (suite, packages, the scripts below); the build never modifies it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

from . import arm64_vm, debs
from .errors import DownloadError, Error, MissingToolError

log = logging.getLogger(__name__)

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# On top of debootstrap's minbase: what Raspberry Pi OS Lite has that the box uses or the first boot runs.
PACKAGES = ("systemd", "systemd-sysv", "udev", "dbus", "kmod", "python3", "bluez", "alsa-utils", "fdisk",
            "e2fsprogs", "dosfstools", "rfkill", "iproute2", "netbase")
# Debian's arm64 kernel. qemu boots it from the boot partition; its modules are unpacked into the root as plain
# files (not registered with dpkg: its ~3,800 files and initramfs-tools' run under emulation would double the
# second stage, and a Pi's kernel package is Raspberry Pi's own anyway).
KERNEL_PACKAGE = "linux-image-arm64"
BOOT_MIB = 512              # Raspberry Pi OS Bookworm's boot partition size
MIB = 1 << 20
DISK_ID = "0x5774b0a5"      # MBR disk identifier (Raspberry Pi OS uses a random one per release)
STAGE2_TIMEOUT = 60 * 60    # seconds; it took 29 min on the 2-core dev machine with other VMs running

# Raspberry Pi OS Bookworm's config.txt (the firmware's settings; sttkb's build appends dtoverlay=dwc2 to it).
CONFIG_TXT = """\
# For more options and information see
# http://rptl.io/configtxt
dtparam=audio=on
camera_auto_detect=1
display_auto_detect=1
auto_initramfs=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
disable_fw_kms_setup=1
arm_64bit=1
disable_overscan=1
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
"""
# qemu's virt machine: PL011 serial console, root on the virtio disk's second partition.
CMDLINE_TXT = "console=ttyAMA0 root=/dev/vda2 rootfstype=ext4 fsck.repair=yes rootwait\n"
KERNEL_NAME = "vmlinuz"     # on the boot partition, beside config.txt (a Pi's firmware would load kernel8.img)
INITRD_NAME = "initrd.img"

# Runs as PID 1 in the unpacked root inside the emulated machine, then powers it off.
STAGE2 = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
mount -t proc proc /proc 2>/dev/null || { rm -f /proc; mkdir /proc; mount -t proc proc /proc; }
mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
fail() { echo "sttkb-stage2: FAILED: $*"; tail -n 30 /debootstrap/debootstrap.log 2>/dev/null; sync;
         echo o > /proc/sysrq-trigger; sleep 60; }
echo "sttkb-stage2: debootstrap second stage"
/debootstrap/debootstrap --second-stage || fail "debootstrap --second-stage"
rm -f /etc/dpkg/dpkg.cfg.d/sttkb-stage2
echo "sttkb-stage2: Raspberry Pi OS-like settings"
echo raspberrypi > /etc/hostname
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\traspberrypi\n' > /etc/hosts
printf '/dev/vda1  /boot/firmware  vfat  defaults  0  2\n/dev/vda2  /  ext4  defaults,noatime  0  1\n' > /etc/fstab
mkdir -p /boot/firmware
printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian-security bookworm-security main\ndeb http://deb.debian.org/debian bookworm-updates main\n' > /etc/apt/sources.list
getent group gpio >/dev/null || groupadd --system gpio || fail "groupadd gpio"
# Like Raspberry Pi OS: no machine id in the image (systemd makes one at first boot), no password login for root.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
passwd -l root >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /var/cache/debconf/*-old
rm -f /sttkb-stage2
sync
echo "sttkb-stage2: done"
echo o > /proc/sysrq-trigger
sleep 60
"""


def cache_key() -> str:
    """Changes when anything that shapes the base image changes."""
    parts = [SUITE, MIRROR, *PACKAGES, KERNEL_PACKAGE, STAGE2, arm64_vm.INIT, *arm64_vm.BOOT_MODULES, CONFIG_TXT, CMDLINE_TXT,
             str(BOOT_MIB), DISK_ID]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def make_debian_base(cache: Path) -> Path:
    """Return the cached base image (building it first if needed: 20-30 minutes on 2 cores). Its sha256 is
    written beside it as ``<image>.sha256``."""
    for tool, pkg in (("debootstrap", "debootstrap"), ("mkfs.ext4", "e2fsprogs"), ("mkfs.vfat", "dosfstools"),
                      ("mcopy", "mtools"), ("sfdisk", "fdisk"), ("dpkg-deb", "dpkg")):
        if shutil.which(tool) is None:
            raise MissingToolError(f"{tool} is missing; install it with: sudo apt-get install {pkg}")
    arm64_vm.check_qemu()
    cache.mkdir(parents=True, exist_ok=True)
    image = cache / f"debian-{SUITE}-arm64-base-{cache_key()}.img"
    if image.exists() and image.with_suffix(".img.sha256").exists():
        log.info("debian base: using cached %s", image)
        return image
    work = cache / f"{image.stem}.work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _build(image, work, cache)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return image


def _build(image: Path, work: Path, cache: Path) -> None:
    tree = work / "root"
    log.info("debian base: first stage (debootstrap --foreign, arm64 %s)", SUITE)
    proc = subprocess.run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
                           "--include=" + ",".join(PACKAGES), SUITE, str(tree), MIRROR],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise DownloadError(f"debootstrap --foreign failed: {tail}. Check access to {MIRROR}")
    kdebs = [d for d in debs.download_debs([KERNEL_PACKAGE], SUITE, b"", cache)
             if d.name.startswith("linux-image-") and "-arm64_" in d.name and not d.name.startswith(KERNEL_PACKAGE)]
    if not kdebs:
        raise DownloadError(f"could not download Debian's {KERNEL_PACKAGE} (arm64)")
    kernel = arm64_vm.unpack_kernel(kdebs[-1], work / "kernel")
    shutil.copytree(kernel.modules_root / "lib/modules", tree / "lib/modules", symlinks=True, dirs_exist_ok=True)
    busybox = _busybox(cache, work)
    initrd = work / INITRD_NAME
    initrd.write_bytes(arm64_vm.initramfs(kernel, busybox))
    # dpkg fsyncs every file it unpacks; the disk is thrown away if this stage does not finish, so skip that.
    (tree / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (tree / "etc/dpkg/dpkg.cfg.d/sttkb-stage2").write_text("force-unsafe-io\n")
    if (tree / "proc").is_symlink():     # debootstrap --foreign leaves /proc pointing at the build host's
        (tree / "proc").unlink()
        (tree / "proc").mkdir()
    stage2 = tree / "sttkb-stage2"
    stage2.write_text(STAGE2)
    stage2.chmod(0o755)

    root_img = work / "root.ext4"
    env = dict(os.environ, E2FSPROGS_FAKE_TIME="1700000000")
    subprocess.run(["mkfs.ext4", "-q", "-b", "4096", "-L", "rootfs", "-d", str(tree), str(root_img), "3G"],
                   check=True, env=env)
    shutil.rmtree(tree)
    log.info("debian base: second stage in the emulated machine (cortex-a72; 20-30 minutes on 2 cores)")
    run = arm64_vm.boot(kernel.image, initrd, "console=ttyAMA0 root=/dev/vda rw sttkb.stage=second panic=-1",
                        drives=[root_img], timeout=STAGE2_TIMEOUT, flush=False, console_log=work / "stage2.log")
    if "sttkb-stage2: done" not in run.console:
        (cache / "debian-base-stage2-failed.log").write_text(run.console)
        raise Error(f"the second stage did not finish ({'timed out' if run.timed_out else 'see the log'}; "
                    f"{cache / 'debian-base-stage2-failed.log'}): {run.tail(1500)}")
    log.info("debian base: second stage done in %.0f s", run.seconds)
    subprocess.run(["e2fsck", "-fy", str(root_img)], capture_output=True)
    subprocess.run(["resize2fs", "-M", str(root_img)], check=True, capture_output=True)
    root_bytes = root_img.stat().st_size + 64 * MIB
    root_bytes = -(-root_bytes // (4 * MIB)) * (4 * MIB)
    with open(root_img, "r+b") as f:
        f.truncate(root_bytes)
    subprocess.run(["resize2fs", str(root_img)], check=True, capture_output=True)

    boot_img = work / "boot.fat"
    _boot_partition(boot_img, work, {KERNEL_NAME: kernel.image, INITRD_NAME: initrd})
    tmp = image.with_suffix(".img.partial")
    assemble(tmp, boot_img, root_img, DISK_ID)
    digest = hashlib.sha256()
    with open(tmp, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    tmp.replace(image)
    image.with_suffix(".img.sha256").write_text(digest.hexdigest() + "\n")


def _busybox(cache: Path, work: Path) -> bytes:
    """Debian's static arm64 busybox (for the initramfs only; it is not installed in the root)."""
    deb = [d for d in debs.download_debs(["busybox-static"], SUITE, b"", cache) if d.name.startswith("busybox")]
    if not deb:
        raise DownloadError("could not download Debian's busybox-static (arm64)")
    out = work / "busybox"
    subprocess.run(["dpkg-deb", "-x", str(deb[0]), str(out)], check=True)
    return (out / "bin" / "busybox").read_bytes()


def _boot_partition(path: Path, work: Path, extra: dict[str, Path]) -> None:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", "bootfs", "-C", str(path), str(BOOT_MIB * 1024)], check=True,
                   capture_output=True)
    for name, text in (("config.txt", CONFIG_TXT), ("cmdline.txt", CMDLINE_TXT)):
        src = work / name
        src.write_text(text)
        subprocess.run(["mcopy", "-i", str(path), str(src), f"::/{name}"], check=True, env=env)
    for name, src in extra.items():
        subprocess.run(["mcopy", "-i", str(path), str(src), f"::/{name}"], check=True, env=env)


def assemble(path: Path, boot: Path, root: Path, disk_id: str) -> Path:
    """Write an MBR disk image at ``path``: ``boot`` (FAT32, type c) at 4 MiB, ``root`` (ext4, type 83) after it
    — Raspberry Pi OS's layout. Both inputs are filesystem images whose sizes are multiples of 1 MiB."""
    boot_start = 4 * MIB
    root_start = boot_start + boot.stat().st_size
    with open(path, "wb") as img:
        img.truncate(root_start + root.stat().st_size)
    layout = (f"label: dos\nlabel-id: {disk_id}\n"
              f"start={boot_start // 512}, size={boot.stat().st_size // 512}, type=c\n"
              f"start={root_start // 512}, size={root.stat().st_size // 512}, type=83\n")
    subprocess.run(["sfdisk", "-q", str(path)], input=layout.encode(), check=True)
    with open(path, "r+b") as img:
        for offset, part in ((boot_start, boot), (root_start, root)):
            with open(part, "rb") as src:
                img.seek(offset)
                shutil.copyfileobj(src, img, 1 << 20)
    return path

"""Boot an arm64 system in qemu-system-aarch64 (software emulation, a chosen Cortex model) — the stand-in for a Pi.

A Raspberry Pi's firmware loads the kernel from the boot partition; qemu's ``virt`` machine gets it with
``-kernel``/``-initrd`` instead. Debian's arm64 kernel has the virtio disk and ext4 as modules, so a tiny initramfs
(Debian's static arm64 busybox + those modules) mounts the root partition and hands over to its ``/sbin/init`` —
systemd on a finished image. With ``sttkb.stage=second`` on the kernel command line it instead runs
``/sttkb-stage2`` in the new root as PID 1 (the second stage of a Debian bootstrap, see :mod:`debian_base`).

Nothing here needs KVM, binfmt_misc or loop mounts.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .cpio import Cpio
from .errors import MissingToolError, ToolFailedError

log = logging.getLogger(__name__)

QEMU = "qemu-system-aarch64"
# The root disk: virtio-blk over PCI on qemu's virt machine, ext4 (all modules in Debian's arm64 kernel).
BOOT_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /boot-modules); do insmod /mods/$m 2>/dev/null || echo "initramfs: insmod $m failed"; done
root=""; stage=""; mode=rw; init=/sbin/init
for a in $(cat /proc/cmdline); do
  case "$a" in
    root=*) root=${a#root=} ;;
    sttkb.stage=*) stage=${a#*=} ;;
    ro) mode=ro ;;
    init=*) init=${a#init=} ;;
  esac
done
i=0
while [ ! -b "$root" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p /newroot
mount -t ext4 -o $mode "$root" /newroot || { echo "initramfs: cannot mount $root"; sleep 1; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
if [ "$stage" = second ]; then
  exec switch_root /newroot /sttkb-stage2
fi
exec switch_root /newroot "$init"
"""


@dataclass(frozen=True)
class Kernel:
    """An unpacked Debian arm64 kernel package."""

    version: str
    image: Path
    """The kernel Image (Debian's vmlinuz for arm64 is an uncompressed Image qemu boots directly)."""
    modules_root: Path
    """Directory holding ``lib/modules/<version>``."""


def check_qemu() -> None:
    if shutil.which(QEMU) is None:
        raise MissingToolError(f"{QEMU} is missing; install it with: sudo apt-get install qemu-system-arm")


def unpack_kernel(deb: Path, dest: Path) -> Kernel:
    """Unpack a linux-image-*-arm64 .deb into ``dest`` (replaced) and index its modules."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    versions = sorted((dest / "lib" / "modules").iterdir())
    if len(versions) != 1:
        raise ToolFailedError(f"{deb.name}: expected one module tree, found {[v.name for v in versions]}")
    version = versions[0].name
    subprocess.run([shutil.which("depmod") or "/sbin/depmod", "-b", str(dest), version], check=True)
    return Kernel(version, dest / "boot" / f"vmlinuz-{version}", dest)


def _show_depends(kernel: Kernel, module: str) -> list[Path]:
    out = subprocess.run([shutil.which("modprobe") or "/sbin/modprobe", "-d", str(kernel.modules_root), "-S",
                          kernel.version, "--show-depends", module], capture_output=True, text=True, check=True)
    return [Path(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("insmod ")]


def initramfs(kernel: Kernel, busybox: bytes) -> bytes:
    """The boot initramfs: static busybox, the root disk's modules (in load order) and :data:`INIT`."""
    order: list[Path] = []
    for module in BOOT_MODULES:
        for ko in _show_depends(kernel, module):
            if ko not in order:
                order.append(ko)
    archive = Cpio()
    for d in ("bin", "dev", "proc", "sys", "mods", "newroot"):
        archive.add_dir(d)
    archive.add_file("bin/busybox", busybox, 0o755)
    archive.add_file("init", INIT.encode(), 0o755)
    for ko in order:
        archive.add_file(f"mods/{ko.name}", ko.read_bytes(), 0o644)
    archive.add_file("boot-modules", "\n".join(ko.name for ko in order).encode() + b"\n", 0o644)
    return archive.finish()


@dataclass(frozen=True)
class Run:
    """What one boot left behind."""

    console: str
    """Everything on the serial console (kernel, systemd, the guest's programs)."""
    seconds: float
    timed_out: bool
    cut: bool
    """The run was killed on purpose (a power cut) when ``cut_when`` appeared."""

    def tail(self, n: int = 4000) -> str:
        return self.console[-n:]


def boot(kernel: Path, initrd: Path, append: str, *, drives: list[Path] = (), shares: dict[str, Path] | None = None,
         cpu: str = "cortex-a72", smp: int = 2, memory_mb: int = 2048, timeout: float = 600, flush: bool = True,
         cut_when: str | None = None, cut_after: float = 0.0, console_log: Path | None = None,
         network: bool = False) -> Run:
    """Boot until the guest powers off (or ``timeout`` seconds). ``shares``: 9p tag -> host directory (writable).
    ``network``: a virtio NIC on qemu's user-mode network (10.0.2.0/24; 10.0.2.2 is this machine's loopback);
    without it the guest has no network at all.
    ``cut_when``: a regular expression; once it appears on the console, the machine is killed ``cut_after``
    seconds later, like pulling the power. ``flush=False`` ignores the guest's disk flushes (much faster writes;
    only for disks that are thrown away if the run does not finish)."""
    check_qemu()
    cmd = [QEMU, "-machine", "virt", "-accel", "tcg", "-cpu", cpu, "-smp", str(smp), "-m", str(memory_mb),
           "-nographic", "-no-reboot", "-nic", "user,model=virtio-net-pci" if network else "none",
           "-kernel", str(kernel), "-initrd", str(initrd),
           "-append", append]
    for drive in drives:
        cmd += ["-drive", f"file={drive},format=raw,if=virtio" + ("" if flush else ",cache=unsafe")]
    for tag, path in (shares or {}).items():
        cmd += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,multidevs=remap"]
    log.debug("boot: %s", " ".join(cmd))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    scheduled, killed = threading.Event(), threading.Event()
    pattern = re.compile(cut_when) if cut_when else None
    log_file = open(console_log, "w") if console_log else None   # noqa: SIM115 (closed below)

    def pull_the_plug() -> None:
        killed.set()
        proc.kill()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").replace("\r", "")
            lines.append(line)
            if log_file:
                log_file.write(line)
                log_file.flush()
            if pattern and not scheduled.is_set() and pattern.search(line):
                scheduled.set()   # one cut per run
                timer = threading.Timer(cut_after, pull_the_plug)
                timer.daemon = True
                timer.start()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        timed_out = True
    reader.join(10)
    if log_file:
        log_file.close()
    return Run("".join(lines), time.monotonic() - start, timed_out and not killed.is_set(), killed.is_set())

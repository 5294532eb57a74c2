"""Boot a stock Debian amd64 kernel in qemu and run a shell script in it against the host's own root.

The guest sees the host's ``/`` read-only over 9p with a tmpfs overlay on top (so it can write anywhere, and the
writes vanish), the unpacked Debian module tree at ``/lib/modules/<ver>``, proc/sys/devtmpfs/configfs mounted, and
a writable 9p share at the same path as the host's result directory (``$STTKB_VM_OUT``). The guest's ``/tmp`` is empty,
except for this checkout and the kernel cache when they live under ``/tmp`` (a CI clone): those stay visible. The host's Python and this
checkout work unchanged inside, because they are the same files. There is no network and no udev.

Usage::

    from tests.vm.harness import run_in_vm, vm_unavailable_reason
    result = run_in_vm("modprobe -a dummy_hcd; ls /sys/class/udc > $STTKB_VM_OUT/udc",
                       modules=["libcomposite"], timeout=120)
    assert result.returncode == 0, result.console
    (result.outdir / "udc").read_text()

Only one VM runs at a time on a machine (``flock /tmp/sttkb-vm.lock``): two TCG guests on 2 cores make each other
time out. The kernel, vmlinux and initramfs are prepared once and cached (see :func:`cache_dir`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import lzma
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sttkb_image.cpio import Cpio

REPO = Path(__file__).resolve().parents[2]
LOCK_PATH = Path("/tmp/sttkb-vm.lock")
KERNEL_META_PACKAGE = "linux-image-amd64"
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
QEMU = "qemu-system-x86_64"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


class VmUnavailable(RuntimeError):
    """qemu, busybox or the Debian kernel package cannot be had on this machine (tests skip with this reason)."""


@dataclasses.dataclass(frozen=True)
class VmResult:
    """What one VM run left behind."""

    returncode: int | None
    """Exit status of the guest script; None if it did not finish (timeout, kernel panic)."""
    console: str
    """Everything the guest printed on its serial console (kernel messages + the script's stdout/stderr)."""
    outdir: Path
    """Host directory the guest wrote into as ``$STTKB_VM_OUT``."""
    seconds: float
    """Wall time of the boot + script (seconds)."""
    timed_out: bool = False


@dataclasses.dataclass(frozen=True)
class KernelFiles:
    version: str
    vmlinux: Path
    initramfs: Path
    modules_root: Path
    """Directory holding ``lib/modules/<version>`` (the unpacked package, depmod'ed)."""


def cache_dir() -> Path:
    """Where kernels and initramfs are cached: ``$STTKB_TEST_CACHE/vm``, else ``~/.cache/sttkb-tests/vm`` (per user,
    outside the clone, so a fresh clone on the same machine starts warm)."""
    base = os.environ.get("STTKB_TEST_CACHE") \
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sttkb-tests"
    return Path(base) / "vm"


def vm_unavailable_reason() -> str | None:
    """None if VMs can run here, else a sentence saying what is missing (for pytest.skip)."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        return "the qemu VM tests need an x86_64 Linux host"
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (apt-get install qemu-system-x86; scripts/test installs it)"
    if _busybox() is None:
        return "busybox-static is not installed (apt-get install busybox-static)"
    for tool in ("apt-get", "dpkg-deb", "depmod", "modprobe"):
        if shutil.which(tool) is None and not Path(f"/sbin/{tool}").exists():
            return f"{tool} is missing (Debian/Ubuntu with kmod needed to unpack the stock kernel)"
    try:
        prepare_kernel()
    except VmUnavailable as e:
        return str(e)
    return None


def _busybox() -> str | None:
    for path in BUSYBOX_CANDIDATES:
        if os.path.exists(path):
            out = subprocess.run(["file", "-L", path], capture_output=True, text=True).stdout \
                if shutil.which("file") else "statically linked"
            if "statically linked" in out or "static-pie" in out:
                return path
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/sbin/{name}"


class _Lock:
    """An exclusive flock on a file, held for the with-block."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> "_Lock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def emulator_lock() -> _Lock:
    """The machine-wide lock every emulated system holds while it runs (this harness's VMs, the arm64 box test):
    two software-emulated guests on a small machine starve each other."""
    return _Lock(LOCK_PATH)


def _kernel_package() -> str:
    """The versioned package that linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64."""
    out = subprocess.run(["apt-cache", "depends", KERNEL_META_PACKAGE], capture_output=True, text=True)
    match = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*-amd64)\b", out.stdout)
    if not match:
        raise VmUnavailable(f"apt-cache knows no {KERNEL_META_PACKAGE} (is this Debian with apt lists? "
                            f"run apt-get update): {out.stderr.strip() or out.stdout.strip()}")
    return match.group(1)


def prepare_kernel() -> KernelFiles:
    """Download (once) the stock Debian kernel, unpack it, extract vmlinux and build the boot initramfs."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _Lock(root / ".prepare.lock"):
        done = sorted(root.glob("linux-image-*/READY"))
        if done and not os.environ.get("STTKB_VM_REFRESH"):
            kdir = done[-1].parent
        else:
            kdir = _prepare(root, _kernel_package())
        version = (kdir / "READY").read_text().strip()
        return KernelFiles(version=version, vmlinux=kdir / "vmlinux", initramfs=_initramfs(kdir, version),
                           modules_root=kdir / "root")


def _initramfs(kdir: Path, version: str) -> Path:
    """The boot initramfs for this init script and module list (cached under a hash of both, so a changed
    harness never boots a stale one)."""
    key = hashlib.sha256("\0".join([INIT_SCRIPT, CHROOT_MODPROBE, *BOOT_MODULES]).encode()).hexdigest()[:12]
    path = kdir / f"initramfs-{key}.cpio"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(_build_initramfs(kdir / "root", version))
        tmp.replace(path)
    return path


def _prepare(root: Path, package: str) -> Path:
    kdir = root / package
    if kdir.exists():
        shutil.rmtree(kdir)
    kdir.mkdir(parents=True)
    dl = subprocess.run(["apt-get", "download", package], cwd=kdir, capture_output=True, text=True)
    debs = list(kdir.glob("*.deb"))
    if dl.returncode != 0 or not debs:
        raise VmUnavailable(f"apt-get download {package} failed: {dl.stderr.strip()[-400:]}")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(kdir / "root")], check=True)
    debs[0].unlink()
    versions = os.listdir(kdir / "root" / "lib" / "modules")
    if len(versions) != 1:
        raise VmUnavailable(f"unexpected module tree in {package}: {versions}")
    version = versions[0]
    subprocess.run([_tool("depmod"), "-b", str(kdir / "root"), version], check=True)
    vmlinuz = kdir / "root" / "boot" / f"vmlinuz-{version}"
    (kdir / "vmlinux").write_bytes(extract_vmlinux(vmlinuz.read_bytes()))
    (kdir / "READY").write_text(version + "\n")
    return kdir


def extract_vmlinux(vmlinuz: bytes) -> bytes:
    """The uncompressed ELF kernel inside a bzImage whose payload is xz-compressed (Debian's)."""
    magic = b"\xfd7zXZ\x00"
    start = vmlinuz.find(magic)
    while start >= 0:
        try:
            data = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(vmlinuz[start:])
        except lzma.LZMAError:
            data = b""
        if data.startswith(b"\x7fELF"):
            return data
        start = vmlinuz.find(magic, start + 1)
    raise VmUnavailable("no xz-compressed ELF kernel found inside vmlinuz")


def _show_depends(modroot: Path, version: str, module: str) -> list[Path]:
    out = subprocess.run([_tool("modprobe"), "-d", str(modroot), "-S", version, "--show-depends", module],
                         capture_output=True, text=True, check=True).stdout
    return [Path(line.split()[1]) for line in out.splitlines() if line.startswith("insmod ")]


INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /boot-modules); do insmod /mods/$m || echo "vm-init: insmod $m failed"; done
set -- $(cat /proc/cmdline)
for a in "$@"; do case "$a" in sttkb.*=*) k=${a%%=*}; export "STTKB_VM_${k#sttkb.}=${a#*=}";; esac; done
mkdir -p /mnt/ro /mnt/rw /mnt/root
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /mnt/ro || exec sh
mount -t tmpfs -o size=512m tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/ro,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /mnt/root || exec sh
R=/mnt/root
for d in proc sys dev run tmp; do mkdir -p $R/$d; done
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm && mount -t devpts devpts $R/dev/pts && mount -t tmpfs tmpfs $R/dev/shm
mount -t tmpfs tmpfs $R/run
keep=""; n=0
for p in "$STTKB_VM_cwd" "$STTKB_VM_modroot"; do
  case "$p" in /tmp/*) n=$((n+1)); mkdir -p /mnt/keep$n && mount --bind $R$p /mnt/keep$n && keep="$keep $n:$p";; esac
done
mount -t tmpfs tmpfs $R/tmp
for k in $keep; do mkdir -p $R${k#*:} && mount --move /mnt/keep${k%%:*} $R${k#*:}; done
mkdir -p $R/lib/modules/$STTKB_VM_kver
mount --bind $R$STTKB_VM_modroot/lib/modules/$STTKB_VM_kver $R/lib/modules/$STTKB_VM_kver
mkdir -p $R$STTKB_VM_out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out $R$STTKB_VM_out
echo /bin/chroot-modprobe > /proc/sys/kernel/modprobe
chroot $R /sbin/modprobe configfs && mount -t configfs configfs $R/sys/kernel/config
echo "vm-init: running guest script"
chroot $R /bin/sh -c "cd $STTKB_VM_cwd && exec /bin/bash $STTKB_VM_out/guest.sh" </dev/console >/dev/console 2>&1
echo $? > $R$STTKB_VM_out/returncode
sync
umount $R$STTKB_VM_out
echo "vm-init: done"
reboot -f
"""

CHROOT_MODPROBE = """#!/bin/busybox sh
exec /bin/busybox chroot /mnt/root /sbin/modprobe "$@"
"""


def _build_initramfs(modroot: Path, version: str) -> bytes:
    busybox = _busybox()
    if busybox is None:
        raise VmUnavailable("busybox-static is not installed (apt-get install busybox-static)")
    order: list[Path] = []
    for module in BOOT_MODULES:
        for ko in _show_depends(modroot, version, module):
            if ko not in order:
                order.append(ko)
    archive = Cpio()
    for d in ("bin", "dev", "proc", "sys", "mnt", "mods", "sbin"):
        archive.add_dir(d)
    archive.add_file("bin/busybox", Path(busybox).read_bytes(), 0o755)
    archive.add_file("init", INIT_SCRIPT.encode(), 0o755)
    archive.add_file("bin/chroot-modprobe", CHROOT_MODPROBE.encode(), 0o755)
    for ko in order:
        archive.add_file(f"mods/{ko.name}", ko.read_bytes(), 0o644)
    archive.add_file("boot-modules", "\n".join(ko.name for ko in order).encode() + b"\n", 0o644)
    return archive.finish()


def new_outdir() -> Path:
    """A fresh directory for a guest's results (shared with it as ``$STTKB_VM_OUT``)."""
    outdir = Path(tempfile.mkdtemp(prefix="sttkb-vm-", dir=os.environ.get("STTKB_VM_OUTDIR_BASE")))
    os.chmod(outdir, 0o777)
    return outdir


def run_in_vm(script: str, *, modules: list[str] | tuple[str, ...] = (), drives: tuple | list = (),
              timeout: float = 120.0, memory_mb: int = 1024, cwd: Path | str = REPO,
              env: dict[str, str] | None = None, outdir: Path | None = None) -> VmResult:
    """Boot the kernel and run ``script`` (bash) as root inside the guest; return its status and console.

    ``modules`` are modprobe'd before the script. ``drives`` are disk image paths attached as
    ``-drive file=PATH,format=raw,if=virtio`` (appearing as /dev/vda, /dev/vdb, ...; virtio_blk is loaded).
    ``env`` adds variables. ``$STTKB_VM_OUT`` is a writable directory shared with the host (``result.outdir``; pass
    ``outdir``, an empty directory made by :func:`new_outdir`, to work with it while the guest runs);
    the script runs with ``cwd`` (the checkout) as its working directory and ``set -e`` is NOT implied.
    Raises :class:`VmUnavailable` if qemu or the kernel cannot be had.
    """
    reason = None if shutil.which(QEMU) else f"{QEMU} is not installed"
    if reason:
        raise VmUnavailable(reason)
    kernel = prepare_kernel()
    outdir = outdir or new_outdir()
    lines = ["export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "export HOME=/root PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8",
             f"export STTKB_VM_OUT={shlex.quote(str(outdir))}", "export STTKB_IN_VM=1"]
    for key, value in (env or {}).items():
        lines.append(f"export {key}={shlex.quote(value)}")
    mods = list(modules) + (["virtio_blk"] if drives else [])
    if mods:
        lines.append("modprobe -a " + " ".join(shlex.quote(m) for m in mods)
                     + " || echo 'vm: modprobe failed' >&2")
    if drives:
        lines.append("for i in $(seq 50); do [ -e /dev/vda ] && break; sleep 0.1; done")
    (outdir / "guest.sh").write_text("\n".join(lines) + "\n" + script + "\n")
    cmdline = " ".join([
        "console=ttyS0", "panic=-1", "loglevel=4", "rdinit=/init",
        f"sttkb.kver={kernel.version}", f"sttkb.modroot={kernel.modules_root}",
        f"sttkb.out={outdir}", f"sttkb.cwd={cwd}",
    ])
    cmd = [QEMU, "-accel", "tcg", "-cpu", "max", "-machine", "q35", "-m", str(memory_mb), "-nographic", "-no-reboot",
           "-nic", "none", "-kernel", str(kernel.vmlinux), "-initrd", str(kernel.initramfs), "-append", cmdline,
           "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
           "-virtfs", f"local,path={outdir},mount_tag=out,security_model=none,multidevs=remap"]
    for drive in drives:
        cmd += ["-drive", f"file={drive},format=raw,if=virtio"]
    with emulator_lock():
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        timed_out = False
        try:
            raw, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raw, _ = proc.communicate()
            timed_out = True
        seconds = time.monotonic() - start
    console = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    rc_file = outdir / "returncode"
    returncode = int(rc_file.read_text().strip()) if rc_file.exists() and not timed_out else None
    return VmResult(returncode=returncode, console=console, outdir=outdir, seconds=seconds, timed_out=timed_out)


def require_vm() -> None:
    """In a pytest test or fixture: skip with the reason if VMs cannot run here (fail instead when
    ``STTKB_REQUIRE_VM=1``, so CI cannot silently skip the kernel checks)."""
    import pytest

    reason = vm_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("STTKB_REQUIRE_VM") == "1":
        pytest.fail(f"STTKB_REQUIRE_VM=1 but {reason}")
    pytest.skip(reason)


if __name__ == "__main__":  # quick manual check: python -m tests.vm.harness 'uname -a'
    res = run_in_vm(" ".join(sys.argv[1:]) or "uname -a", timeout=120)
    print(res.console)
    print(f"returncode={res.returncode} seconds={res.seconds:.1f} outdir={res.outdir}")

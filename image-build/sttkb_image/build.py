"""The build: base image in, finished image out. Nothing is written outside a temporary file next to the output
until the final rename, and the temporary file is removed on any failure."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import accounts, bootconfig, cross_wheel, debs, ggml_variants, source, units, wheelhouse
from .errors import BaseImageError, Error, SpaceError
from .ext4 import Batch, Ext4
from .fat import Fat
from .partitions import read_layout, set_root_size
from .target import Target, read_target
from .tools import XZ_TOOLS, check_tools

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent.parent          # image-build/
OPT = "/opt/sttkb"
STATE = "/var/lib/sttkb"
MODELS = f"{STATE}/models"
FIRSTBOOT_UNIT = "sttkb-firstboot.service"
MARGIN = 64 << 20          # bytes of free space left in the root filesystem after the payload
FILE_OVERHEAD = 4096       # bytes per file (inode + partial block), for the space estimate
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Options:
    """Everything the user chose. Paths are host paths."""

    base: Path
    sha256: str
    output: Path
    repo: Path
    cache: Path
    epoch: int
    hostname: str = "sttkb"
    model: Path | None = None
    wifi_ssid: str | None = None
    wifi_psk: str | None = None
    wifi_country: str | None = None
    ssh: bool = False
    ssh_authorized_keys: Path | None = None
    read_only_root: bool = False
    apt_packages: tuple[str, ...] | None = None   # None: debs.DEVICE_PACKAGES
    grow: bool = True
    pip_python: str = sys.executable
    wheelhouse_dir: Path | None = None            # use these wheels instead of downloading (tests, offline builds)


def validate(opts: Options) -> None:
    """Check option combinations before any work; raise Error with what to change."""
    if not opts.base.is_file():
        raise BaseImageError(f"{opts.base}: no such file. {source.DOWNLOAD_HINT}")
    if opts.output.resolve() == opts.base.resolve():
        raise Error("--output must differ from the base image: the base image is never modified")
    if not opts.output.parent.is_dir():
        raise Error(f"output directory {opts.output.parent} does not exist")
    if not _HOSTNAME.match(opts.hostname):
        raise Error(f"--hostname {opts.hostname!r}: use lowercase letters, digits and '-' (1-63 characters)")
    if bool(opts.wifi_ssid) != bool(opts.wifi_psk) or (opts.wifi_ssid and not opts.wifi_country):
        raise Error("Wi-Fi needs --wifi-ssid, --wifi-psk and --wifi-country (two letters, e.g. GB) together")
    if opts.wifi_country and not re.fullmatch(r"[A-Za-z]{2}", opts.wifi_country):
        raise Error(f"--wifi-country {opts.wifi_country!r}: use a two-letter country code such as GB or DE")
    if opts.wifi_psk and not 8 <= len(opts.wifi_psk) <= 63:
        raise Error("--wifi-psk must be 8 to 63 characters (WPA2 passphrase)")
    if opts.wifi_ssid and (len(opts.wifi_ssid.encode()) > 32 or any(c in opts.wifi_ssid for c in "\n\r\0")):
        raise Error("--wifi-ssid must be 1 to 32 bytes on one line")
    if opts.wifi_psk and any(c in opts.wifi_psk for c in "\n\r\0"):
        raise Error("--wifi-psk must be on one line")
    if opts.ssh and not opts.ssh_authorized_keys:
        raise Error("--ssh needs --ssh-authorized-keys FILE (the image has no password login)")
    if opts.ssh_authorized_keys and not opts.ssh_authorized_keys.is_file():
        raise Error(f"--ssh-authorized-keys {opts.ssh_authorized_keys}: no such file")
    if opts.model and not (opts.model.is_file() and opts.model.with_suffix(".json").is_file()):
        raise Error(f"--model {opts.model}: needs the .bin file and its .json manifest beside it")


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@dataclass
class Payload:
    """Host files to put into the root filesystem: target path -> (host file, mode, uid, gid)."""

    files: dict[str, tuple[Path, int, int, int]] = field(default_factory=dict)
    dirs: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def add_file(self, target: str, src: Path, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self.files[target] = (src, mode, uid, gid)

    def add_dir(self, target: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self.dirs[target] = (mode, uid, gid)

    def size(self) -> int:
        return sum(-(-src.stat().st_size // 4096) * 4096 + FILE_OVERHEAD for src, *_ in self.files.values())


def build(opts: Options) -> Path:
    """Build the image; return the output path. The base file is only read."""
    check_tools({**ggml_variants.TOOLS, **cross_wheel.TOOLS, **(XZ_TOOLS if opts.base.suffix == ".xz" else {})})
    validate(opts)
    log.info("checking the sha256 of %s", opts.base)
    source.verify(opts.base, opts.sha256)
    raw_size = source.uncompressed_size(opts.base)
    need = 2 * raw_size + (1 << 30)     # the image and its root partition apart, plus the payload
    free = _free_bytes(opts.output.parent)
    if free < need:
        raise SpaceError(f"{opts.output.parent} has {free >> 20} MiB free; the build needs about {need >> 20} MiB "
                         "(twice the image plus 1 GiB). Free some space or choose another --output directory")
    opts.cache.mkdir(parents=True, exist_ok=True)
    temps = []
    try:
        for suffix in (".partial", ".root.partial"):
            fd, name = tempfile.mkstemp(prefix=f".{opts.output.name}.", suffix=suffix, dir=opts.output.parent)
            os.close(fd)
            temps.append(Path(name))
        img, root_file = temps
        with tempfile.TemporaryDirectory(prefix="sttkb-image-") as work:
            _build_into(opts, img, root_file, Path(work))
        os.chmod(img, 0o644)
        img.replace(opts.output)
    finally:
        for t in temps:
            t.unlink(missing_ok=True)
    log.info("done: %s", opts.output)
    return opts.output


def _copy_range(src: Path, src_offset: int, dest: Path, dest_offset: int, length: int) -> None:
    """Copy ``length`` bytes between files in the kernel (copy_file_range), keeping holes out of the way."""
    with open(src, "rb") as fi, open(dest, "r+b") as fo:
        done = 0
        while done < length:
            n = os.copy_file_range(fi.fileno(), fo.fileno(), min(length - done, 1 << 30),
                                   src_offset + done, dest_offset + done)
            if n <= 0:
                raise Error(f"copying {src} to {dest} stopped after {done} of {length} bytes (disk full?)")
            done += n


def _build_into(opts: Options, img: Path, root_file: Path, work: Path) -> None:
    """Edit the image. The root partition is taken out into its own file while it is grown and written:
    resize2fs resizes a regular file to the filesystem's size and knows nothing of an offset inside it."""
    source.extract(opts.base, img)
    layout = read_layout(img)
    fat = Fat(img, layout.boot.start, opts.epoch)
    boot_names = {n.lower() for n in fat.names()}
    for needed in ("config.txt", "cmdline.txt"):
        if needed not in boot_names:
            raise BaseImageError(f"the boot partition has no {needed}: not a Raspberry Pi OS image")
    fs = Ext4(img, layout.root.start)
    _, fs_free = fs.check_superblock(layout.root.size)
    target = read_target(fs)
    if fs.stat(OPT) is not None:
        raise BaseImageError(f"the base image already contains {OPT}: start from the unmodified Raspberry Pi OS "
                             "download, not from an sttkb image")
    log.info("base image: %s, Python %d.%d", target.codename, *target.python)

    payload, account_files = _assemble(opts, fs, target, work)
    grow_by = payload.size() + MARGIN
    if not opts.grow and fs_free < grow_by:
        raise SpaceError(f"the root filesystem has {fs_free >> 20} MiB free; the payload needs {grow_by >> 20} MiB. "
                         "Build without --no-grow")

    _copy_range(img, layout.root.start, root_file, 0, layout.root.size)
    with open(img, "r+b") as f:
        f.truncate(layout.root.start)
    fs = Ext4(root_file, 0)
    root_size = layout.root.size
    if opts.grow:
        fs.preen()
        root_size = -(-(layout.root.end + grow_by) // (4 << 20)) * (4 << 20) - layout.root.start
        with open(root_file, "r+b") as f:
            f.truncate(root_size)
        fs.resize(root_size)
    _write_root(opts, fs, payload, account_files, work)
    fs.fsck()
    _copy_range(root_file, 0, img, layout.root.start, root_size)
    root_file.unlink()
    if root_size != layout.root.size:
        set_root_size(img, layout, root_size)
    read_layout(img)
    _edit_boot(opts, fat)


def _assemble(opts: Options, fs: Ext4, target: Target, work: Path) -> tuple[Payload, dict[str, bytes]]:
    """Download and prepare every file that goes into the root filesystem."""
    p = Payload()
    stage = work / "stage"
    stage.mkdir()

    # Accounts first: the sttkb uid/gid own /var/lib/sttkb.
    texts = {}
    for name in ("passwd", "group", "shadow", "gshadow"):
        data = fs.read(f"/etc/{name}")
        if data is None:
            raise BaseImageError(f"the root filesystem has no /etc/{name}: not a Raspberry Pi OS image")
        texts[name] = data.decode()
    files, uid, gid = accounts.add_system_user(accounts.AccountFiles(**texts), "sttkb", STATE,
                                               "sttkb speech-to-text keyboard")
    account_files = {f"/etc/{k}": getattr(files, k).encode() for k in ("passwd", "group", "shadow", "gshadow")}

    # Wheelhouse: dependencies (cached download) + the project's own wheel.
    if opts.wheelhouse_dir is not None:
        dep_dir = opts.wheelhouse_dir
    else:
        reqs = wheelhouse.locked_requirements(opts.repo)
        dep_dir = wheelhouse.download_wheelhouse(reqs, target.glibc, target.python, opts.cache, opts.pip_python)
    own = wheelhouse.build_project_wheel(opts.repo, work / "wheel", opts.epoch, opts.pip_python)
    wheels = [x for x in dep_dir.iterdir() if x.suffix == ".whl"]
    sdists = sorted(x for x in dep_dir.iterdir() if x.name.endswith(".tar.gz"))
    if sdists:   # source-only dependencies: compiled here for aarch64, so the box installs wheels only
        shipped = dict(d for d in (wheelhouse.dist_of(w.name) for w in wheels) if d is not None)
        if "cffi" not in shipped:
            raise Error(f"{dep_dir} has sources to compile ({', '.join(s.name for s in sdists)}) but no cffi wheel")
        cffi_version = shipped["cffi"]      # the C that cffi writes must be for the cffi the box runs
        wheels += [cross_wheel.arm64_wheel(s, target.suite, target.python, cffi_version, opts.cache,
                                           opts.pip_python) for s in sdists]
    wheels.sort()
    bad = wheelhouse.non_aarch64([w.name for w in wheels])
    if bad:
        raise Error(f"the wheelhouse has wheels the Pi cannot run: {', '.join(bad)}")
    p.add_dir(OPT)
    p.add_dir(f"{OPT}/wheelhouse")
    for w in [*wheels, own]:
        p.add_file(f"{OPT}/wheelhouse/{w.name}", w)

    # ggml's CPU code built for newer Pis (the Pi 5), loaded instead of the wheel's where the CPU has the features.
    engine = [w for w in wheels if w.name.startswith("pywhispercpp-") and w.suffix == ".whl"]
    if engine:
        variants = ggml_variants.build_variants(engine[0], opts.repo, opts.cache, opts.pip_python)
        p.add_dir(f"{OPT}/ggml-cpu")
        for f in sorted(variants.rglob("*")):
            where = f"{OPT}/ggml-cpu/{f.relative_to(variants).as_posix()}"
            if f.is_dir():
                p.add_dir(where)
            else:
                p.add_file(where, f)

    # Debian packages for offline installation at first boot.
    pkgs = list(opts.apt_packages if opts.apt_packages is not None else debs.DEVICE_PACKAGES)
    if opts.read_only_root:
        pkgs += debs.READ_ONLY_PACKAGES
    deb_files = debs.download_debs(pkgs, target.suite, target.dpkg_status, opts.cache)
    p.add_dir(f"{OPT}/debs")
    for d in deb_files:
        p.add_file(f"{OPT}/debs/{d.name}", d)

    # The default model, already quantized.
    model = opts.model or _default_model(opts)
    p.add_dir(STATE, 0o750, uid, gid)
    p.add_dir(MODELS, 0o755, uid, gid)
    p.add_file(f"{MODELS}/{model.name}", model, 0o644, uid, gid)
    p.add_file(f"{MODELS}/{model.with_suffix('.json').name}", model.with_suffix(".json"), 0o644, uid, gid)
    pending = stage / "firstboot.pending"
    pending.write_text("present until the first boot has finished (see sttkb-firstboot.service)\n")
    p.add_file(f"{STATE}/firstboot.pending", pending, 0o644, uid, gid)

    # Configuration.
    p.add_dir("/etc/sttkb")
    example = opts.repo / "device" / "config" / "example.toml"
    config = stage / "config.toml"
    if example.is_file():
        shutil.copyfile(example, config)
    else:
        config.write_text("# sttkb configuration. Every setting has a default; see the README.\n")
    p.add_file("/etc/sttkb/config.toml", config)
    image_conf = stage / "image.conf"
    image_conf.write_text(f"# Written by image-build/build-image; read by sttkb-firstboot.\n"
                          f"READ_ONLY_ROOT={int(opts.read_only_root)}\nWIFI={int(bool(opts.wifi_ssid))}\n")
    p.add_file("/etc/sttkb/image.conf", image_conf)

    # First-boot step and the project's units.
    p.add_dir("/usr/local/libexec/sttkb")
    p.add_file("/usr/local/libexec/sttkb/sttkb-firstboot", HERE / "firstboot" / "sttkb-firstboot", 0o755)
    placements = [units.Placement(HERE / "firstboot" / FIRSTBOOT_UNIT, units.UNIT_DIR / FIRSTBOOT_UNIT)]
    placements += units.place_service_files(opts.repo / "services")
    for pl in placements:
        p.add_file(str(pl.target), pl.source, pl.mode)
        if pl.target.parent != units.UNIT_DIR:
            p.add_dir(str(pl.target.parent))
        if pl.target.parent == units.UNIT_DIR:
            for link in units.enable_links(pl.target.name, pl.source.read_text()):
                p.add_dir(str(link.path.parent))
                p.links[str(link.path)] = link.target
    p.links["/usr/local/bin/sttkb"] = f"{OPT}/venv/bin/sttkb"

    # Hostname.
    hostname = stage / "hostname"
    hostname.write_text(opts.hostname + "\n")
    p.add_file("/etc/hostname", hostname)
    hosts = stage / "hosts"
    hosts.write_text(_edit_hosts((fs.read("/etc/hosts") or b"").decode(), opts.hostname))
    p.add_file("/etc/hosts", hosts)
    # Each box needs its own machine-id. Raspberry Pi OS ships it empty (systemd then creates one at first boot);
    # a base that carries a real id (an image made from a used card) gets it emptied, nothing else is touched.
    old_id = (fs.read("/etc/machine-id") or b"").strip()
    if old_id and old_id != b"uninitialized":
        machine_id = stage / "machine-id"
        machine_id.write_text("")
        p.add_file("/etc/machine-id", machine_id, 0o444)

    # Optional Wi-Fi (NetworkManager, Bookworm's default) and SSH (key login as root).
    if opts.wifi_ssid:
        conn = stage / "sttkb-wifi.nmconnection"
        conn.write_text(_nmconnection(opts.wifi_ssid, opts.wifi_psk or ""))
        p.add_dir("/etc/NetworkManager")
        p.add_dir("/etc/NetworkManager/system-connections", 0o700)
        p.add_file("/etc/NetworkManager/system-connections/sttkb-wifi.nmconnection", conn, 0o600)
    if opts.ssh and opts.ssh_authorized_keys:
        p.add_dir("/root")
        p.add_dir("/root/.ssh", 0o700)
        p.add_file("/root/.ssh/authorized_keys", opts.ssh_authorized_keys, 0o600)
    for path, data in account_files.items():
        host = stage / PurePosixPath(path).name
        host.write_bytes(data)
    return p, account_files


def _edit_hosts(text: str, hostname: str) -> str:
    lines = [x for x in text.splitlines() if not x.startswith("127.0.1.1")]
    if not any(x.startswith("127.0.0.1") for x in lines):
        lines.insert(0, "127.0.0.1\tlocalhost")
    lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def _keyfile_value(value: str) -> str:
    """Escape a string for a GLib key file (NetworkManager keyfile): backslash, edge spaces, control chars."""
    out = value.replace("\\", "\\\\").replace("\t", "\\t")
    if out.startswith(" "):
        out = "\\s" + out[1:]
    if out.endswith(" "):
        out = out[:-1] + "\\s"
    return out


def _nmconnection(ssid: str, psk: str) -> str:
    return ("[connection]\nid=sttkb-wifi\ntype=wifi\nautoconnect=true\n\n"
            f"[wifi]\nmode=infrastructure\nssid={_keyfile_value(ssid)}\n\n"
            f"[wifi-security]\nkey-mgmt=wpa-psk\npsk={_keyfile_value(psk)}\n\n"
            "[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=auto\n")


def _default_model(opts: Options) -> Path:
    """Import the embedded default model on the build host (cached) with the project's own code."""
    store = opts.cache / "models"
    store.mkdir(parents=True, exist_ok=True)
    code = ("import sys; from pathlib import Path; from sttkb.models.default import ensure_default_model; "
            "print(ensure_default_model(Path(sys.argv[1])))")
    proc = subprocess.run([opts.pip_python, "-c", code, str(store)], capture_output=True, text=True,
                          cwd=opts.repo)
    if proc.returncode != 0:
        raise Error("preparing the default model failed: " + " | ".join(proc.stderr.strip().splitlines()[-3:])
                    + ". Pass --model FILE.bin (with FILE.json beside it) instead")
    model = Path(proc.stdout.strip().splitlines()[-1])
    if not model.with_suffix(".json").is_file():
        raise Error(f"default model {model} has no manifest {model.with_suffix('.json').name} beside it")
    return model


def _parents(path: str) -> list[str]:
    return [str(x) for x in reversed(PurePosixPath(path).parents) if str(x) != "/"]


def _write_root(opts: Options, fs: Ext4, p: Payload, account_files: dict[str, bytes], work: Path) -> None:
    """Apply the payload in one debugfs run, in sorted order (same commands for the same inputs)."""
    batch = Batch(fs, opts.epoch)
    existing: dict[str, bool] = {}

    def exists(path: str) -> bool:
        if path not in existing:
            existing[path] = fs.stat(path) is not None
        return existing[path]

    wanted_dirs = dict(p.dirs)
    for path in [*p.files, *p.links]:
        for parent in _parents(path):
            wanted_dirs.setdefault(parent, (0o755, 0, 0))
    touched_parents: set[str] = set()
    for path in sorted(wanted_dirs, key=lambda x: (x.count("/"), x)):
        if not exists(path):
            batch.mkdir(path, *wanted_dirs[path])
            existing[path] = True
            touched_parents.add(str(PurePosixPath(path).parent))
    stage = work / "stage"
    for path, data in sorted(account_files.items()):
        old = fs.stat(path)
        assert old is not None
        batch.write(path, stage / PurePosixPath(path).name, old.mode & 0o7777, old.uid, old.gid, replace=True)
    for path in sorted(p.files):
        src, mode, uid, gid = p.files[path]
        batch.write(path, src, mode, uid, gid, replace=exists(path))
        touched_parents.add(str(PurePosixPath(path).parent))
    for path in sorted(p.links):
        batch.symlink(path, p.links[path], replace=exists(path))
        touched_parents.add(str(PurePosixPath(path).parent))
    for parent in sorted(touched_parents):
        batch.touch(parent)
    batch.run()


def _edit_boot(opts: Options, fat: Fat) -> None:
    names = {n.lower(): n for n in fat.names()}
    config = fat.read(names["config.txt"]).decode()
    fat.write(names["config.txt"], bootconfig.edit_config_txt(config).encode())
    cmdline = fat.read(names["cmdline.txt"]).decode()
    fat.write(names["cmdline.txt"], bootconfig.edit_cmdline_txt(cmdline, regdom=opts.wifi_country).encode())
    if opts.ssh:
        fat.write("ssh", b"")  # Raspberry Pi OS's sshswitch.service enables sshd when this file exists

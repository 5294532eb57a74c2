"""Command line of image-build/build-image."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

from . import source
from .build import Options, build
from .debian_base import make_debian_base
from .errors import Error

REPO = Path(__file__).resolve().parent.parent.parent


def default_epoch(repo: Path) -> int:
    """SOURCE_DATE_EPOCH if set, else the time of the checkout's last commit (same tree for the same commit)."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    proc = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%ct"], capture_output=True, text=True)
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip().isdigit() else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-image",
        description="Turn a Raspberry Pi OS Lite arm64 image into a ready sttkb image (nothing is mounted).",
        epilog=source.DOWNLOAD_HINT)
    p.add_argument("base", nargs="?", type=Path, help="Raspberry Pi OS Lite arm64 image (.img or .img.xz)")
    p.add_argument("--sha256", help="the SHA256 the download page lists for the base image file")
    p.add_argument("-o", "--output", type=Path, help="the image to write (default: sttkb-<base name>.img)")
    p.add_argument("--where-to-download", action="store_true", help="print where to get the base image and exit")
    p.add_argument("--make-debian-base", action="store_true",
                   help="instead of building: make (or reuse from --cache) a Debian bookworm arm64 stand-in for "
                        "Raspberry Pi OS Lite that boots in qemu (docs/image.md), print its path and sha256")
    p.add_argument("--hostname", default="sttkb", help="network name of the box (default: sttkb)")
    p.add_argument("--model", type=Path, help="ggml model .bin with its .json manifest beside it "
                   "(default: the embedded default model, imported on this machine)")
    p.add_argument("--wifi-ssid", help="join this Wi-Fi network (off by default)")
    p.add_argument("--wifi-psk", help="Wi-Fi passphrase (or set STTKB_WIFI_PSK to keep it off the command line)")
    p.add_argument("--wifi-country", help="two-letter Wi-Fi country code (required with Wi-Fi)")
    p.add_argument("--ssh", action="store_true", help="enable sshd (off by default); needs --ssh-authorized-keys")
    p.add_argument("--ssh-authorized-keys", type=Path, help="public keys allowed to log in as root")
    p.add_argument("--read-only-root", action="store_true",
                   help="after the first boot, keep the root filesystem read-only with a RAM overlay")
    p.add_argument("--no-grow", action="store_true",
                   help="do not enlarge the root partition; fail if the payload does not fit")
    p.add_argument("--apt-packages", help="comma-separated Debian packages to ship instead of the default set")
    p.add_argument("--wheelhouse", type=Path, help="use the wheels in this directory instead of downloading")
    p.add_argument("--cache", type=Path, default=REPO / ".cache" / "image",
                   help="download cache (default: .cache/image in the checkout)")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO, stream=sys.stderr,
                        format="build-image: %(message)s")
    if args.where_to_download:
        print(source.DOWNLOAD_HINT)
        return 0
    if args.make_debian_base:
        try:
            base = make_debian_base(args.cache)
        except Error as e:
            print(f"build-image: error: {e}", file=sys.stderr)
            return 1
        print(f"{base}\nsha256 {base.with_suffix('.img.sha256').read_text().strip()}")
        return 0
    if args.base is None or not args.sha256:
        print("build-image: error: give the base image and --sha256.\n" + source.DOWNLOAD_HINT, file=sys.stderr)
        return 2
    output = args.output or args.base.with_name("sttkb-" + args.base.name.removesuffix(".xz"))
    opts = Options(
        base=args.base, sha256=args.sha256, output=output, repo=REPO, cache=args.cache,
        epoch=default_epoch(REPO), hostname=args.hostname, model=args.model, wifi_ssid=args.wifi_ssid,
        wifi_psk=args.wifi_psk or os.environ.get("STTKB_WIFI_PSK"), wifi_country=args.wifi_country,
        ssh=args.ssh, ssh_authorized_keys=args.ssh_authorized_keys, read_only_root=args.read_only_root,
        apt_packages=tuple(x for x in args.apt_packages.split(",") if x) if args.apt_packages is not None
        else None,
        grow=not args.no_grow, pip_python=sys.executable, wheelhouse_dir=args.wheelhouse)
    try:
        build(opts)
    except Error as e:
        print(f"build-image: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("build-image: interrupted; nothing was written", file=sys.stderr)
        return 130
    print(output)
    return 0

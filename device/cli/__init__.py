"""The one console command, ``sttkb``. Each command group registers itself from its own module.

Results go to stdout, logs and progress to stderr. Expected errors (:class:`SttkbError`) print one clear line
and exit 1 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sttkb import __version__
from sttkb.errors import SttkbError

# Command groups, in help order. This package is the composition root: the one place that sees both the speech side
# (through sttkb.speech) and the keyboard side (through sttkb.gadget.factory) and wires them to the daemon.
COMMAND_MODULES = (
    "sttkb.cli.transcribe",   # transcribe, dictate
    "sttkb.cli.model",        # model import/list/use/remove
    "sttkb.cli.daemon",       # run, status, listen, stop, history, retype
    "sttkb.cli.bench",        # bench
    "sttkb.cli.config",       # config check/example
    "sttkb.cli.keyboard",     # gadget up/down/status, type
    "sttkb.cli.bluetooth",    # bt list/pair/forget/use/status, check
    "sttkb.cli.remote",       # remote test, discover, systemd-dropin
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sttkb", description="Speech-to-text keyboard: listens, transcribes on the device, types as a keyboard.")
    parser.add_argument("--version", action="version", version=f"sttkb {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file (default /etc/sttkb/config.toml if present)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug output on stderr (the default shows what the box does at INFO: state changes, latency; "
                             "never transcripts)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr, format="sttkb: %(levelname)s: %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except SttkbError as e:
        print(f"sttkb: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sttkb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())

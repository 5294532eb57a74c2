"""``sttkb config check`` and ``sttkb config example``: validate a config file, print the commented example."""

from __future__ import annotations

import argparse
import os
import sys

from sttkb.config import DEFAULT_PATH, EXAMPLE_PATH, load_config


def register(sub) -> None:
    """Add the ``config`` command group to the `sttkb` subparsers."""
    parser = sub.add_parser("config", help="check the config file or print the commented example",
                            description="Check a config file (sttkb --config PATH config check) or print the fully "
                                        "commented example with every key and its default.")
    cmds = parser.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    cmds.required = True
    check = cmds.add_parser("check", help="load the config file and report the first problem, if any")
    check.set_defaults(func=run_check)
    example = cmds.add_parser("example", help="print the commented example config (every key, default values)")
    example.set_defaults(func=run_example)


def run_check(args: argparse.Namespace) -> int:
    """Load --config PATH (or /etc/sttkb/config.toml); a bad file raises ConfigError, printed by the CLI."""
    load_config(args.config)
    if args.config or os.environ.get("STTKB_CONFIG"):
        where = args.config or os.environ["STTKB_CONFIG"]
    elif DEFAULT_PATH.exists():
        where = str(DEFAULT_PATH)
    else:
        print(f"no config file at {DEFAULT_PATH}: using the defaults (see `sttkb config example`)")
        return 0
    print(f"{where}: OK")
    return 0


def run_example(args: argparse.Namespace) -> int:
    sys.stdout.write(EXAMPLE_PATH.read_text(encoding="utf-8"))
    return 0

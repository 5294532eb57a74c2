"""Keyboard-side commands: `sttkb gadget ...`, `sttkb type ...` (USB issue) and `sttkb bt ...`, `sttkb check`
(Bluetooth issue, registered from gadget.ble.cli)."""

from gadget.ble import cli as ble_cli


def register(sub) -> None:
    """Add the keyboard commands to the `sttkb` subparsers."""
    ble_cli.register(sub)

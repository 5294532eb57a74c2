"""`sttkb bt ...` and `sttkb check` (placeholder until the Bluetooth issue lands)."""


def register(sub) -> None:
    """Add the Bluetooth commands to the `sttkb` subparsers."""

"""sttkb command group (placeholder until its issue lands)."""


def register(sub) -> None:
    """Add this group's commands to the `sttkb` subparsers."""

"""Writing the files the systemd generators make (`sttkb remote systemd-dropin`, `sttkb bt systemd-dropin`)."""

from __future__ import annotations

import contextlib
from pathlib import Path


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a temporary file beside it, then renamed over it. systemd
    reads these files at daemon-reload; it must never see half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()

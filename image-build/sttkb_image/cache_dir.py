"""Build caches kept as directories that appear whole or not at all.

A cache entry is a directory named by a hash of its inputs. It is filled under ``NAME.partial`` and renamed into
place only after its ``.complete`` file (the names of the files that make the result, one per line, in order) is
written, so a build that is interrupted or fails leaves nothing a later build would take for a result (and a
failed fill's files are removed).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".complete"


def cached(dest: Path, fill: Callable[[Path], list[str]], what: str) -> list[Path]:
    """The files of the cache entry ``dest``, filling it first if it is not complete: ``fill(tmp)`` writes into the
    empty directory ``tmp`` and returns the names of the result's files there (other files it leaves are kept but
    not listed). ``what`` names the entry in the log."""
    marker = dest / MARKER
    if marker.exists():
        log.info("%s: using cached %s", what, dest)
    else:
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            names = fill(tmp)
            missing = [name for name in names if not (tmp / name).is_file()]
            if missing:
                raise FileNotFoundError(f"{what}: {', '.join(missing)} missing from {tmp}")
            (tmp / MARKER).write_text("".join(f"{name}\n" for name in names))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return [dest / name for name in marker.read_text().split()]

"""The FAT boot partition inside the image file, read and written with mtools at a byte offset."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import BaseImageError
from .tools import run


class Fat:
    """A FAT filesystem at ``offset`` bytes inside ``image``. Files are written with the mtime ``epoch``."""

    def __init__(self, image: Path, offset: int, epoch: int) -> None:
        self.spec = f"{image}@@{offset}"
        self.epoch = epoch
        # UTC: FAT stores local time. SKIP_CHECK: Pi OS's FAT has geometry mtools would otherwise question.
        self.env = dict(os.environ, TZ="UTC", MTOOLS_SKIP_CHECK="1", MTOOLS_NO_VFAT="0")

    def names(self) -> set[str]:
        proc = run(["mdir", "-b", "-i", self.spec, "::/"], what="listing the boot partition", env=self.env,
                   check=False)
        if proc.returncode != 0:
            raise BaseImageError("the boot partition holds no readable FAT filesystem: "
                                 + proc.stderr.decode(errors="replace").strip())
        return {line.rsplit("/", 1)[-1] for line in proc.stdout.decode(errors="replace").split() if line}

    def read(self, name: str) -> bytes:
        proc = run(["mtype", "-i", self.spec, f"::/{name}"], what=f"reading {name}", env=self.env, check=False)
        if proc.returncode != 0:
            raise BaseImageError(f"the boot partition has no {name}: is this a Raspberry Pi OS image?")
        return proc.stdout

    def write(self, name: str, data: bytes) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / name
            src.write_bytes(data)
            os.utime(src, (self.epoch, self.epoch))
            run(["mcopy", "-o", "-m", "-i", self.spec, str(src), f"::/{name}"], what=f"writing {name}",
                env=self.env)

"""The image's partition table, read and grown with sfdisk on the image file (no loop device, no kernel parser)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import BaseImageError
from .tools import run

FAT_TYPES = {"b", "c", "e", "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"}
LINUX_TYPES = {"83", "0fc63daf-8483-4772-8e79-3d69d8477de4"}


@dataclass(frozen=True)
class Partition:
    """One partition; offsets and sizes in bytes."""

    number: int
    start: int
    size: int
    type: str

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class Layout:
    """A Raspberry Pi OS layout: FAT boot partition, ext4 root partition last."""

    boot: Partition
    root: Partition
    sector_size: int


def read_layout(image: Path) -> Layout:
    """Read the partition table; raise BaseImageError unless it is boot (FAT) + root (Linux) with root last."""
    proc = run(["sfdisk", "--json", str(image)], what="reading the partition table", check=False)
    if proc.returncode != 0:
        raise BaseImageError(f"{image}: no readable partition table (is this a Raspberry Pi OS .img?): "
                             f"{proc.stderr.decode(errors='replace').strip()}")
    try:
        table = json.loads(proc.stdout)["partitiontable"]
        sector = int(table.get("sectorsize", 512))
        parts = [Partition(i + 1, int(p["start"]) * sector, int(p["size"]) * sector, str(p["type"]).lower())
                 for i, p in enumerate(table["partitions"])]
    except (KeyError, ValueError, TypeError) as e:
        raise BaseImageError(f"{image}: unexpected partition table: {e}") from e
    if len(parts) < 2 or parts[0].type not in FAT_TYPES or parts[1].type not in LINUX_TYPES:
        raise BaseImageError(f"{image}: expected a FAT boot partition and a Linux root partition, found "
                             f"{[p.type for p in parts]}; pass a Raspberry Pi OS Lite image")
    root = parts[1]
    if max(p.end for p in parts) != root.end:
        raise BaseImageError(f"{image}: the root partition is not the last one; cannot grow it")
    size = os.path.getsize(image)
    if any(p.end > size for p in parts):
        raise BaseImageError(f"{image}: partitions reach past the end of the file ({size} bytes): truncated image?")
    return Layout(parts[0], root, sector)


def set_root_size(image: Path, layout: Layout, size: int) -> None:
    """Give the root partition ``size`` bytes (the image file must already hold them)."""
    sectors = size // layout.sector_size
    run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", "-N", str(layout.root.number), str(image)],
        input=f"start={layout.root.start // layout.sector_size}, size={sectors}\n".encode(),
        what="growing the root partition")

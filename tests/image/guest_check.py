"""Runs inside the qemu guest: reads the mounted SD image and writes what it finds as JSON.

    python guest_check.py BOOT_MOUNT ROOT_MOUNT OUT.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(boot: Path, root: Path, out: Path) -> None:
    wants = root / "etc/systemd/system/multi-user.target.wants"
    state = root / "var/lib/sttkb"
    facts = {
        "config_txt": (boot / "config.txt").read_text(),
        "cmdline_txt": (boot / "cmdline.txt").read_text(),
        "wants": {p.name: os.readlink(p) for p in sorted(wants.iterdir()) if p.is_symlink()},
        "units": sorted(p.name for p in (root / "etc/systemd/system").iterdir() if p.is_file()),
        "wheelhouse": sorted(p.name for p in (root / "opt/sttkb/wheelhouse").iterdir()),
        "debs": sorted(p.name for p in (root / "opt/sttkb/debs").iterdir()),
        "models": {p.name: p.stat().st_size for p in sorted((state / "models").iterdir())},
        "state_owner": [state.stat().st_uid, state.stat().st_gid, oct(state.stat().st_mode & 0o7777)],
        "passwd_sttkb": next((x for x in (root / "etc/passwd").read_text().splitlines()
                              if x.startswith("sttkb:")), None),
        "hostname": (root / "etc/hostname").read_text(),
        "firstboot_mode": oct((root / "usr/local/libexec/sttkb/sttkb-firstboot").stat().st_mode & 0o7777),
        "sttkb_link": os.readlink(root / "usr/local/bin/sttkb"),
    }
    out.write_text(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))

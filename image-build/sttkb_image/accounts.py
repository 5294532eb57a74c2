"""Pure edits of /etc/passwd, group, shadow and gshadow: add the system user the daemon runs as.

Done at build time (not only through a sysusers.d file) because systemd-sysusers.service runs at boot only when
/usr is newer than /etc (ConditionNeedsUpdate=/etc): on a copied image the user would not exist when the daemon
starts. The uid is picked the way systemd-sysusers picks one (the highest free id below 1000), so it is the same
for the same base image.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BaseImageError

# Groups the daemon needs when the base image has them: microphone, GPIO (button, LED), BlueZ's D-Bus API,
# input devices. Groups missing from the base are skipped (a udev rule from services/ may add its own).
SUPPLEMENTARY_GROUPS = ("audio", "gpio", "bluetooth", "input", "plugdev")


@dataclass(frozen=True)
class AccountFiles:
    """The four account databases as text."""

    passwd: str
    group: str
    shadow: str
    gshadow: str


def _ids(text: str, field: int) -> set[int]:
    ids = set()
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > field and parts[field].isdigit():
            ids.add(int(parts[field]))
    return ids


def _names(text: str) -> set[str]:
    return {line.split(":", 1)[0] for line in text.splitlines() if line.strip()}


def free_system_id(used: set[int]) -> int:
    """The highest id in 100..999 not in ``used`` (systemd-sysusers' choice)."""
    for candidate in range(999, 99, -1):
        if candidate not in used:
            return candidate
    raise BaseImageError("no free system uid/gid below 1000 in the base image's /etc/passwd and /etc/group")


def add_system_user(files: AccountFiles, name: str, home: str, gecos: str) -> tuple[AccountFiles, int, int]:
    """Return the files with user+group ``name`` added (no login, locked password) and its uid/gid.

    If the user already exists its ids are returned and only missing supplementary group memberships are added.
    """
    if name in _names(files.passwd):
        line = next(x for x in files.passwd.splitlines() if x.startswith(name + ":"))
        uid, gid = int(line.split(":")[2]), int(line.split(":")[3])
        passwd, group, shadow, gshadow = files.passwd, files.group, files.shadow, files.gshadow
    else:
        used = _ids(files.passwd, 2) | _ids(files.passwd, 3) | _ids(files.group, 2)
        uid = gid = free_system_id(used)
        passwd = _append(files.passwd, f"{name}:x:{uid}:{gid}:{gecos}:{home}:/usr/sbin/nologin")
        group = files.group
        if name not in _names(group):
            group = _append(group, f"{name}:x:{gid}:")
        shadow = _append(files.shadow, f"{name}:!*:0::::::") if name not in _names(files.shadow) else files.shadow
        gshadow = files.gshadow
        if name not in _names(gshadow):
            gshadow = _append(gshadow, f"{name}:!::")
    group = _add_members(group, name, SUPPLEMENTARY_GROUPS)
    gshadow = _add_members(gshadow, name, SUPPLEMENTARY_GROUPS, member_field=3)
    return AccountFiles(passwd, group, shadow, gshadow), uid, gid


def _append(text: str, line: str) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    return text + line + "\n"


def _add_members(text: str, user: str, groups: tuple[str, ...], member_field: int = 3) -> str:
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if parts[0] in groups and len(parts) > member_field:
            members = [m for m in parts[member_field].split(",") if m]
            if user not in members:
                members.append(user)
            parts[member_field] = ",".join(members)
            line = ":".join(parts)
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")

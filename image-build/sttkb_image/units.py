"""Find the project's systemd units and helper files in services/ and work out where each goes and how it is
enabled (the symlinks ``systemctl enable`` would make, computed from the [Install] section — no systemctl)."""

from __future__ import annotations

import configparser
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount")
UNIT_DIR = PurePosixPath("/etc/systemd/system")
GENERATOR_DIR = PurePosixPath("/usr/local/lib/systemd/system-generators")
"""systemd runs the executables here at boot and at every daemon-reload (systemd.generator(7))."""


@dataclass(frozen=True)
class Placement:
    """One file from the repository and where it goes in the image."""

    source: Path
    target: PurePosixPath
    mode: int = 0o644


@dataclass(frozen=True)
class Link:
    """A symlink in the image: ``path`` points to ``target``."""

    path: PurePosixPath
    target: str


def place_service_files(services_dir: Path) -> list[Placement]:
    """Map every file under ``services_dir`` to its place in the image (sorted, so builds are reproducible).

    Units go to /etc/systemd/system, drop-in dirs (``NAME.service.d/*.conf``) beside them, udev rules to
    /etc/udev/rules.d, sysusers.d/tmpfiles.d files to /usr/lib/…, ``services/NAME/x.conf`` to
    /etc/sttkb/NAME/x.conf, executables in a ``libexec``/``bin`` dir to
    /usr/local/libexec/sttkb, executables in ``system-generators`` to /usr/local/lib/systemd/system-generators. Anything else is reported and skipped.
    """
    out: list[Placement] = []
    if not services_dir.is_dir():
        return out
    for src in sorted(p for p in services_dir.rglob("*") if p.is_file()):
        rel = src.relative_to(services_dir)
        parent = src.parent.name
        name = src.name
        if name.endswith(UNIT_SUFFIXES):
            out.append(Placement(src, UNIT_DIR / name))
        elif parent.endswith(".d") and parent[:-2].endswith(UNIT_SUFFIXES) and name.endswith(".conf"):
            out.append(Placement(src, UNIT_DIR / parent / name))
        elif name.endswith(".rules"):
            out.append(Placement(src, PurePosixPath("/etc/udev/rules.d") / name))
        elif parent == "sysusers.d" or (name.endswith(".conf") and "sysusers" in name):
            out.append(Placement(src, PurePosixPath("/usr/lib/sysusers.d") / _strip_kind(name, "sysusers")))
        elif parent == "tmpfiles.d" or (name.endswith(".conf") and "tmpfiles" in name):
            out.append(Placement(src, PurePosixPath("/usr/lib/tmpfiles.d") / _strip_kind(name, "tmpfiles")))
        elif name.endswith(".conf") and len(rel.parts) == 2:
            # a component's own settings file, e.g. services/bluetooth/main.conf -> /etc/sttkb/bluetooth/main.conf
            out.append(Placement(src, PurePosixPath("/etc/sttkb") / rel.parts[0] / name))
        elif parent == "system-generators" and src.stat().st_mode & 0o111:
            out.append(Placement(src, GENERATOR_DIR / name, 0o755))
        elif parent in ("libexec", "bin") and src.stat().st_mode & 0o111:
            out.append(Placement(src, PurePosixPath("/usr/local/libexec/sttkb") / name, 0o755))
        else:
            log.warning("services/%s: not a unit, drop-in, udev rule, sysusers or tmpfiles file; not installed", rel)
    return out


def _strip_kind(name: str, kind: str) -> str:
    """``sttkb.sysusers.conf`` → ``sttkb.conf`` (the directory already says the kind)."""
    return name.replace(f".{kind}.conf", ".conf").replace(f"-{kind}.conf", ".conf")


def parse_install(text: str) -> dict[str, list[str]]:
    """The [Install] section of a unit file as lists (WantedBy, RequiredBy, Alias, Also, DefaultInstance)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # keep key case
    try:
        parser.read_string(text)
    except configparser.Error as e:
        log.warning("cannot parse unit file: %s", e)
        return {}
    if not parser.has_section("Install"):
        return {}
    return {k: v.split() for k, v in parser.items("Install")}


def enable_links(unit_name: str, unit_text: str) -> list[Link]:
    """The symlinks ``systemctl enable UNIT`` makes under /etc/systemd/system (empty for static units)."""
    install = parse_install(unit_text)
    instance_name = unit_name
    if "@." in unit_name:
        default = install.get("DefaultInstance", [])
        if not default:
            return []
        instance_name = unit_name.replace("@.", f"@{default[0]}.")
    target = str(UNIT_DIR / unit_name)
    links = []
    for key, suffix in (("WantedBy", ".wants"), ("RequiredBy", ".requires"), ("UpheldBy", ".upholds")):
        for dependent in install.get(key, []):
            links.append(Link(UNIT_DIR / f"{dependent}{suffix}" / instance_name, target))
    for alias in install.get("Alias", []):
        links.append(Link(UNIT_DIR / alias, target))
    return sorted(set(links), key=lambda link: str(link.path))


def also_units(unit_text: str) -> list[str]:
    """Units named in Also= (enabled together with this one)."""
    return parse_install(unit_text).get("Also", [])

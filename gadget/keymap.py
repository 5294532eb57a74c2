"""Which keys type which character on the HOST's keyboard layout, computed from XKB data with libxkbcommon.

A USB/BLE keyboard sends key positions; the host's layout turns them into characters. For a layout name like
``"de"`` or ``"us(intl)"`` we compile the XKB keymap the host would use (rules evdev, model pc105), then press
every text key at every level a keyboard can reach (none, Shift, AltGr, Shift+AltGr), with and without Caps Lock,
and record what comes out. Characters that need a dead key (é on us(intl), ^ on de) are found by feeding the
layout's dead keys followed by each typable character through the system Compose table (what a Linux desktop
does), falling back to Unicode composition if no Compose table is installed.

Results are cached per layout (:func:`get_keymap`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import re
import unicodedata
from pathlib import Path

from xkbcommon import xkb

from sttkb.gadget import hid_usage
from sttkb.gadget.errors import LayoutError
from sttkb.gadget.reports import MOD_LEFT_SHIFT, MOD_RIGHT_ALT, Stroke

log = logging.getLogger(__name__)

XKB_RULES = "evdev"
XKB_MODEL = "pc105"
BASE_LST = Path("/usr/share/X11/xkb/rules/base.lst")
COMPOSE_LOCALE = "en_US.UTF-8"

LEVELS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (0, ()),
    (MOD_LEFT_SHIFT, (hid_usage.KEY_LEFTSHIFT,)),
    (MOD_RIGHT_ALT, (hid_usage.KEY_RIGHTALT,)),
    (MOD_LEFT_SHIFT | MOD_RIGHT_ALT, (hid_usage.KEY_LEFTSHIFT, hid_usage.KEY_RIGHTALT)),
)
"""(HID modifier bits, Linux keycodes pressed) for the four levels a keyboard reaches, cheapest first."""

# Dead keysym name -> combining mark, for hosts without a Compose table (fallback only).
_DEAD_COMBINING = {
    "dead_grave": "\u0300", "dead_acute": "\u0301", "dead_circumflex": "\u0302", "dead_tilde": "\u0303",
    "dead_macron": "\u0304", "dead_breve": "\u0306", "dead_abovedot": "\u0307", "dead_diaeresis": "\u0308",
    "dead_abovering": "\u030a", "dead_doubleacute": "\u030b", "dead_caron": "\u030c", "dead_cedilla": "\u0327",
    "dead_ogonek": "\u0328",
}
_DEAD_SPACING = {"dead_grave": "`", "dead_acute": "´", "dead_circumflex": "^", "dead_tilde": "~",
                 "dead_diaeresis": "¨", "dead_abovering": "°", "dead_cedilla": "¸", "dead_caron": "ˇ"}

_LAYOUT_RE = re.compile(r"^([a-z][a-z0-9_-]*)(?:\(([A-Za-z0-9_-]+)\))?$")


@dataclasses.dataclass(frozen=True)
class _Found:
    strokes: tuple[Stroke, ...]
    rank: tuple


class Keymap:
    """Character -> strokes for one host layout, with and without Caps Lock. Build with :func:`get_keymap`."""

    def __init__(self, layout: str, chars: dict[bool, dict[str, tuple[Stroke, ...]]],
                 syms: dict[str, int]) -> None:
        self.layout = layout
        self._chars = chars
        self._syms = syms

    def strokes(self, char: str, *, caps_lock: bool = False) -> tuple[Stroke, ...] | None:
        """The strokes that type ``char`` (one character) on this layout, or None if it cannot be typed."""
        return self._chars[caps_lock].get(char)

    def can_type(self, char: str) -> bool:
        """True if ``char`` can be typed with Caps Lock off and on."""
        return char in self._chars[False] and char in self._chars[True]

    def characters(self, *, caps_lock: bool = False) -> frozenset[str]:
        """Every character this layout can type (directly or through a dead key)."""
        return frozenset(self._chars[caps_lock])

    def keysym(self, char: str) -> int | None:
        """The keysym the host sees for a directly typed character (used by the Unicode entry method)."""
        return self._syms.get(char)


def parse_layout(name: str) -> tuple[str, str]:
    """``"de(nodeadkeys)"`` -> ("de", "nodeadkeys"); ``"us"`` -> ("us", ""). Raises LayoutError on bad syntax."""
    match = _LAYOUT_RE.match(name.strip())
    if not match:
        raise LayoutError(f"keyboard layout {name!r} is not an XKB layout name like 'us', 'de' or 'us(intl)'. "
                          + _how_to_list())
    return match.group(1), match.group(2) or ""


def _how_to_list() -> str:
    return ("List the names with `localectl list-x11-keymap-layouts` and "
            "`localectl list-x11-keymap-variants LAYOUT`, or see " + str(BASE_LST) + ".")


def known_layouts(base_lst: Path = BASE_LST) -> dict[str, set[str]]:
    """Layout -> variant names listed in xkb-data's base.lst (empty dict if the file is missing)."""
    out: dict[str, set[str]] = {}
    try:
        text = base_lst.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    section = ""
    for line in text.splitlines():
        if line.startswith("! "):
            section = line[2:].strip()
            continue
        parts = line.split()
        if not parts:
            continue
        if section == "layout":
            out.setdefault(parts[0], set())
        elif section == "variant" and len(parts) > 1:
            out.setdefault(parts[1].rstrip(":"), set()).add(parts[0])
    return out


def _check_known(layout: str, variant: str) -> None:
    known = known_layouts()
    if not known:
        return
    if layout not in known:
        close = difflib.get_close_matches(layout, known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise LayoutError(f"unknown keyboard layout {layout!r}.{hint} " + _how_to_list())
    if variant and variant not in known[layout]:
        variants = ", ".join(sorted(known[layout])[:12]) or "none"
        raise LayoutError(f"layout {layout!r} has no variant {variant!r} (some of its variants: {variants}). "
                          + _how_to_list())


@functools.lru_cache(maxsize=16)
def get_keymap(name: str) -> Keymap:
    """The (cached) keymap for an XKB layout name such as ``"us"``, ``"gb"``, ``"de(nodeadkeys)"``."""
    layout, variant = parse_layout(name)
    _check_known(layout, variant)
    ctx = xkb.Context()
    ctx.set_log_level(0)  # silence libxkbcommon's stderr warnings; failures raise below
    try:
        xkm = ctx.keymap_new_from_names(rules=XKB_RULES, model=XKB_MODEL, layout=layout, variant=variant or None)
    except xkb.XKBError as e:
        raise LayoutError(f"libxkbcommon cannot compile keyboard layout {name!r}; is xkb-data installed? "
                          + _how_to_list()) from e
    compose = _compose_state(ctx)
    chars: dict[bool, dict[str, tuple[Stroke, ...]]] = {}
    syms: dict[str, int] = {}
    for caps in (False, True):
        direct, dead = _scan(xkm, caps)
        found = {ch: f for ch, f in direct.items()}
        for ch, f in _dead_sequences(direct, dead, compose).items():
            if ch not in found or f.rank[:2] < found[ch].rank[:2]:  # only beats a direct key on a worse class
                found[ch] = f
        chars[caps] = {ch: f.strokes for ch, f in found.items()}
        if not caps:
            syms = {ch: f.rank[-1] for ch, f in direct.items()}
    km = Keymap(name, chars, syms)
    log.debug("layout %s: %d characters typable", name, len(chars[False]))
    return km


def _compose_state(ctx):
    try:
        return ctx.compose_table_new_from_locale(COMPOSE_LOCALE).compose_state_new()
    except xkb.XKBError:
        log.info("no Compose table for %s (install libx11-data); using Unicode composition for dead keys",
                 COMPOSE_LOCALE)
        return None


def _scan(xkm, caps: bool) -> tuple[dict[str, _Found], dict[str, _Found]]:
    """Press every text key at every level: (char -> best direct stroke, dead keysym name -> best stroke)."""
    direct: dict[str, _Found] = {}
    dead: dict[str, _Found] = {}
    off = hid_usage.XKB_KEYCODE_OFFSET
    for level_rank, (mods, mod_keys) in enumerate(LEVELS):
        state = xkm.state_new()
        if caps:
            state.update_key(hid_usage.KEY_CAPSLOCK + off, xkb.XKB_KEY_DOWN)
            state.update_key(hid_usage.KEY_CAPSLOCK + off, xkb.XKB_KEY_UP)
        for code in mod_keys:
            state.update_key(code + off, xkb.XKB_KEY_DOWN)
        for code in hid_usage.TEXT_KEYCODES:
            sym = state.key_get_one_sym(code + off)
            if not sym:
                continue
            name = xkb.keysym_get_name(sym)
            # Levels 1-2 first (Windows and macOS layouts mostly agree with XKB there, less so on AltGr
            # levels), then keys every keyboard has (an ANSI host may lack the ISO key), then fewer modifiers.
            rank = (level_rank >= 2, code in hid_usage.AVOID_KEYCODES, level_rank, code, sym)
            stroke = Stroke(mods, hid_usage.hid_usage(code))
            if name.startswith("dead_"):
                if name not in dead or rank < dead[name].rank:
                    dead[name] = _Found((stroke._replace(dead=True),), rank)
                continue
            text = state.key_get_string(code + off)
            if len(text) != 1 or not text.isprintable():
                continue
            if text not in direct or rank < direct[text].rank:
                direct[text] = _Found((stroke,), rank)
    space = Stroke(0, hid_usage.USAGE_SPACE)
    if " " not in direct:
        direct[" "] = _Found((space,), (False, False, 0, hid_usage.KEY_SPACE, 0x20))
    return direct, dead


def _dead_sequences(direct: dict[str, _Found], dead: dict[str, _Found], compose) -> dict[str, _Found]:
    """Characters reached by a dead key followed by one directly typed character."""
    out: dict[str, _Found] = {}
    for dead_name, dead_found in dead.items():
        dead_sym = xkb.keysym_from_name(dead_name)
        for base, base_found in direct.items():
            result = _compose(compose, dead_sym, base_found.rank[-1], dead_name, base)
            if not result or len(result) != 1 or not result.isprintable():
                continue
            high = dead_found.rank[0] or base_found.rank[0]
            if base == " " and result.isascii() and not high:
                # us(intl): ' and " as dead key + space work on Linux and on Windows' US-International alike,
                # while AltGr+' gives ' only on Linux: prefer the sequence over an AltGr level.
                high = False
            else:
                high = True
            avoid = dead_found.rank[1] or base_found.rank[1]
            rank = (high, avoid, 4 + dead_found.rank[2] + base_found.rank[2], dead_found.rank[3],
                    base_found.rank[3], 0)
            if result not in out or rank < out[result].rank:
                out[result] = _Found(dead_found.strokes + base_found.strokes, rank)
    return out


def _compose(compose, dead_sym: int, base_sym: int, dead_name: str, base: str) -> str | None:
    if compose is not None:
        compose.reset()
        compose.feed(dead_sym)
        compose.feed(base_sym)
        if compose.get_status() == xkb.XKB_COMPOSE_COMPOSED:
            return compose.get_utf8()
        return None
    if base == " ":
        return _DEAD_SPACING.get(dead_name)
    mark = _DEAD_COMBINING.get(dead_name)
    if mark is None:
        return None
    composed = unicodedata.normalize("NFC", base + mark)
    return composed if len(composed) == 1 else None

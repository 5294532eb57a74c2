"""Text -> keystrokes for a host layout, with a policy for characters the layout cannot type. Pure.

Only printable characters, Tab and Enter (for newlines) ever become keys. Characters that cannot be typed follow
the ``unmappable`` policy and every change is recorded in :attr:`Plan.changes` (the typist logs them):

- ``"transliterate"`` (default): the closest ASCII spelling from anyascii (“ ” -> ", — -> -, é -> e), used only
  when the layout lacks the character itself; characters with no ASCII spelling are skipped.
- ``"skip"``: leave the character out.
- ``"linux-unicode"``: Ctrl+Shift+U, the hex code point, space — the GTK/IBus Unicode entry of Linux desktops.
  It does nothing useful on Windows (needs a registry switch and a numpad Alt+ entry) or macOS (needs the
  "Unicode Hex Input" input source and Option+hex): use it only for Linux hosts.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Iterable

from anyascii import anyascii

from sttkb.gadget import hid_usage
from sttkb.gadget.errors import UnmappableError
from sttkb.gadget.keymap import Keymap
from sttkb.gadget.reports import MOD_LEFT_CTRL, MOD_LEFT_SHIFT, ReportSequencer, Stroke

UNMAPPABLE_POLICIES = ("transliterate", "skip", "linux-unicode")

ENTER = Stroke(0, hid_usage.USAGE_ENTER)
TAB = Stroke(0, hid_usage.USAGE_TAB)


@dataclasses.dataclass(frozen=True)
class CharKeys:
    """The strokes for one character of the (normalized) text; empty strokes = nothing is typed for it."""

    index: int
    """Position in :attr:`Plan.text`."""
    char: str
    strokes: tuple[Stroke, ...]


@dataclasses.dataclass(frozen=True)
class Change:
    """A character that is not typed as itself."""

    index: int
    char: str
    replacement: str
    """What is typed instead ('' = nothing)."""
    reason: str

    def describe(self) -> str:
        """One log-friendly line with code points, not the surrounding text."""
        what = f"U+{ord(self.char):04X} {self.char!r}" if len(self.char) == 1 else repr(self.char)
        instead = f"typed {self.replacement!r} instead" if self.replacement else "skipped"
        return f"{what}: {self.reason}; {instead}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """A whole text converted to keys before the first key is sent."""

    text: str
    """The input after normalization (NFC, CR LF -> LF); indices refer to it."""
    keys: tuple[CharKeys, ...]
    changes: tuple[Change, ...]
    caps_lock: bool

    @property
    def expected(self) -> str:
        """What the host should show once every key is typed (the text with the changes applied)."""
        replaced = {c.index: c.replacement for c in self.changes}
        return "".join(replaced.get(k.index, k.char) for k in self.keys)


def normalize(text: str) -> str:
    """NFC (so é is one character whatever the source), CR LF and lone CR -> LF."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))


def plan_text(text: str, keymap: Keymap, *, unmappable: str = "transliterate", caps_lock: bool = False) -> Plan:
    """Convert ``text`` to strokes for ``keymap``'s layout with the host's Caps Lock in ``caps_lock``."""
    if unmappable not in UNMAPPABLE_POLICIES:
        raise UnmappableError(f"unknown unmappable policy {unmappable!r}; use one of "
                              + ", ".join(UNMAPPABLE_POLICIES))
    norm = normalize(text)
    keys: list[CharKeys] = []
    changes: list[Change] = []
    for i, ch in enumerate(norm):
        strokes, change = _char_strokes(i, ch, keymap, unmappable, caps_lock)
        keys.append(CharKeys(i, ch, strokes))
        if change:
            changes.append(change)
    return Plan(norm, tuple(keys), tuple(changes), caps_lock)


def _char_strokes(i: int, ch: str, keymap: Keymap, policy: str,
                  caps: bool) -> tuple[tuple[Stroke, ...], Change | None]:
    if ch == "\n":
        return (ENTER,), None
    if ch == "\t":
        return (TAB,), None
    if not ch.isprintable() and ch != " ":
        return (), Change(i, ch, "", "control or invisible character")
    direct = keymap.strokes(ch, caps_lock=caps)
    if direct:
        return direct, None
    reason = f"layout {keymap.layout} cannot type it" + (" with Caps Lock on" if caps else "")
    if policy == "linux-unicode":
        entry = _unicode_entry(ch, keymap, caps)
        if entry:
            return entry, Change(i, ch, ch, reason + f"; entered as Ctrl+Shift+U {ord(ch):x} space (Linux only)")
        policy = "transliterate"
    if policy == "transliterate":
        ascii_form = _transliterate(ch)
        strokes: list[Stroke] = []
        typed = []
        for c in ascii_form:
            s = keymap.strokes(c, caps_lock=caps)
            if s:
                strokes += s
                typed.append(c)
        return tuple(strokes), Change(i, ch, "".join(typed), reason)
    return (), Change(i, ch, "", reason)


def _transliterate(ch: str) -> str:
    """anyascii's spelling, but never a control character, and a space stays a space (NBSP -> ' ')."""
    out = anyascii(ch)
    return "".join(c for c in out if c.isprintable())


def _unicode_entry(ch: str, keymap: Keymap, caps: bool) -> tuple[Stroke, ...] | None:
    u = keymap.strokes("u", caps_lock=False) or keymap.strokes("U", caps_lock=False)
    space = keymap.strokes(" ", caps_lock=caps)
    if not u or len(u) != 1 or not space:
        return None
    strokes = [Stroke(MOD_LEFT_CTRL | MOD_LEFT_SHIFT, u[0].usage)]
    for digit in f"{ord(ch):x}":
        s = keymap.strokes(digit, caps_lock=caps)
        if not s:
            return None
        strokes += s
    return tuple(strokes) + space


def plan_reports(keys: Iterable[CharKeys], sequencer: ReportSequencer | None = None) -> list[list[bytes]]:
    """The reports for each character (one list per CharKeys, in order); the caller ends with release_all."""
    seq = sequencer or ReportSequencer()
    return [[r for stroke in ck.strokes for r in seq.press(stroke)] for ck in keys]


def text_to_reports(text: str, keymap: Keymap, *, unmappable: str = "transliterate",
                    caps_lock: bool = False) -> list[bytes]:
    """Every report for ``text``, ending all keys up (what ``sttkb type --dry-run`` prints)."""
    seq = ReportSequencer()
    groups = plan_reports(plan_text(text, keymap, unmappable=unmappable, caps_lock=caps_lock).keys, seq)
    return [r for g in groups for r in g] + seq.release_all()

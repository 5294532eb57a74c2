"""The host computer's text, by libxkbcommon alone: Linux key events -> text the way a desktop does it.

Shared by the tests that read what a real kernel made of the box's reports (USB gadget VM, BLE VM, the booted box
image). It imports nothing from the project, so a test that compares this text with its input does not trust the
code it checks. The booted-box test copies this file next to its guest script.
"""

from __future__ import annotations

from xkbcommon import xkb

KEY_CAPSLOCK = 58  # linux/input-event-codes.h
EVDEV_TO_XKB = 8   # XKB keycode = evdev keycode + 8 (libxkbcommon's "evdev" rules)


class XkbHost:
    """Linux key events -> text the way a desktop does it, with nothing from the project: the layout compiled by
    libxkbcommon from its names, each key press turned into UTF-8 by the XKB state (xkb_state_key_get_utf8),
    dead keys through libxkbcommon's Compose table for en_US.UTF-8. Return counts as a line break."""

    def __init__(self, layout: str, caps_lock: bool = False) -> None:
        ctx = xkb.Context()
        self.state = ctx.keymap_new_from_names(rules="evdev", model="pc105", layout=layout).state_new()
        try:
            self.compose = ctx.compose_table_new_from_locale("en_US.UTF-8").compose_state_new()
        except xkb.XKBError:  # no X11 locale data (the box image has none): no dead keys, a test that needs them fails
            self.compose = None
        self.text = ""
        self.down: set[int] = set()
        self.autorepeats = 0
        if caps_lock:
            self.key(KEY_CAPSLOCK, 1)
            self.key(KEY_CAPSLOCK, 0)

    def key(self, code: int, value: int) -> None:
        """One EV_KEY event: ``value`` 1 press, 0 release, 2 autorepeat."""
        keycode = code + EVDEV_TO_XKB
        if value == 0:
            self.down.discard(code)
            self.state.update_key(keycode, xkb.XKB_KEY_UP)
            return
        self.autorepeats += value == 2
        self.text += self._typed(keycode)
        if value == 1:
            self.down.add(code)
            self.state.update_key(keycode, xkb.XKB_KEY_DOWN)

    def _typed(self, keycode: int) -> str:
        status = xkb.XKB_COMPOSE_NOTHING
        if self.compose is not None:
            self.compose.feed(self.state.key_get_one_sym(keycode))
            status = self.compose.get_status()
        if status == xkb.XKB_COMPOSE_COMPOSED:
            out = self.compose.get_utf8()
        elif status == xkb.XKB_COMPOSE_NOTHING:
            out = self.state.key_get_string(keycode).replace("\r", "\n")
        else:  # composing (a dead key waits for the next) or cancelled (a desktop types nothing)
            out = ""
        if self.compose is not None and status != xkb.XKB_COMPOSE_COMPOSING:
            self.compose.reset()
        return out if out.isprintable() or out in ("\n", "\t") else ""

    def release_all(self) -> None:
        """The keyboard vanished: every key it held is up (lock states stay)."""
        for code in sorted(self.down):
            self.key(code, 0)

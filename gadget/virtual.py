"""A host in software: decode key events or HID reports back to text with xkbcommon, the way a Linux desktop does.

:class:`HostDecoder` takes Linux key events (down/up/repeat) and produces text through the host layout's XKB
state and the Compose table (dead keys). :class:`VirtualTransport` is a :class:`sttkb.gadget.transport.Transport` that
feeds every report into a HostDecoder — used by ``sttkb run --simulate``, ``sttkb type --transport virtual`` and
the tests. It can also be "unplugged" to exercise the typist's pause/resume.
"""

from __future__ import annotations

import logging
import threading
import time

from xkbcommon import xkb

from sttkb.gadget import hid_usage
from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.keymap import COMPOSE_LOCALE, XKB_MODEL, XKB_RULES, parse_layout
from sttkb.gadget.reports import REPORT_LENGTH
from sttkb.gadget.transport import LED_CAPS_LOCK, LED_NUM_LOCK, LED_SCROLL_LOCK

log = logging.getLogger(__name__)

_CONTROL_TEXT = {hid_usage.KEY_ENTER: "\n", hid_usage.KEY_TAB: "\t"}


class HostDecoder:
    """Key events -> text in one XKB layout, with dead keys through the Compose table (if installed)."""

    def __init__(self, layout: str = "us") -> None:
        name, variant = parse_layout(layout)
        ctx = xkb.Context()
        ctx.set_log_level(0)
        self._keymap = ctx.keymap_new_from_names(rules=XKB_RULES, model=XKB_MODEL, layout=name,
                                                 variant=variant or None)
        self._state = self._keymap.state_new()
        try:
            self._compose = ctx.compose_table_new_from_locale(COMPOSE_LOCALE).compose_state_new()
        except xkb.XKBError:
            self._compose = None
        self.text = ""
        self.events: list[tuple[int, int]] = []
        """Every (Linux keycode, value) fed in: value 1 = down, 0 = up, 2 = autorepeat."""
        self.down: set[int] = set()

    def key(self, code: int, value: int) -> None:
        """Feed one EV_KEY event (``value`` 1 down, 0 up, 2 repeat) as the host's input layer would."""
        self.events.append((code, value))
        xkb_code = code + hid_usage.XKB_KEYCODE_OFFSET
        if value == 0:
            self.down.discard(code)
            self._state.update_key(xkb_code, xkb.XKB_KEY_UP)
            return
        if value == 1:
            self.down.add(code)
        if code in _CONTROL_TEXT:
            self.text += _CONTROL_TEXT[code]
        else:
            sym = self._state.key_get_one_sym(xkb_code)
            self._produce(xkb_code, sym)
        if value == 1:
            self._state.update_key(xkb_code, xkb.XKB_KEY_DOWN)

    def _produce(self, xkb_code: int, sym: int) -> None:
        if self._compose is not None and sym:
            self._compose.feed(sym)
            status = self._compose.get_status()
            if status == xkb.XKB_COMPOSE_COMPOSING:
                return
            if status == xkb.XKB_COMPOSE_COMPOSED:
                self.text += self._compose.get_utf8()
                self._compose.reset()
                return
            if status == xkb.XKB_COMPOSE_CANCELLED:
                self._compose.reset()
                return
        if xkb.keysym_get_name(sym).startswith("dead_"):
            return
        text = self._state.key_get_string(xkb_code)
        if text and (text.isprintable() or text == " "):
            self.text += text

    def release_all(self) -> None:
        """The keyboard vanished: the host lets go of every key it held (lock states stay)."""
        for code in sorted(self.down):
            self.key(code, 0)

    def leds(self) -> int:
        """The LED byte this host would send to the keyboard (Num 0x01, Caps 0x02, Scroll 0x04)."""
        out = 0
        for name, bit in (("Caps Lock", LED_CAPS_LOCK), ("Num Lock", LED_NUM_LOCK),
                          ("Scroll Lock", LED_SCROLL_LOCK)):
            try:
                if self._state.led_name_is_active(name):
                    out |= bit
            except xkb.XKBError:
                pass
        return out


class ReportDecoder:
    """8-byte boot keyboard reports -> key events, in the order Linux's HID layer emits them
    (modifier bits first, then released keys, then pressed keys)."""

    def __init__(self, host: HostDecoder) -> None:
        self.host = host
        self._mods = 0
        self._keys: tuple[int, ...] = ()

    def feed(self, report: bytes) -> None:
        if len(report) != REPORT_LENGTH:
            raise ValueError(f"a boot keyboard report has {REPORT_LENGTH} bytes, got {len(report)}")
        mods, keys = report[0], tuple(u for u in report[2:] if u)
        for bit, code in hid_usage.MODIFIER_KEYCODES.items():
            if (self._mods ^ mods) & bit:
                self.host.key(code, 1 if mods & bit else 0)
        for usage in self._keys:
            if usage not in keys and usage in hid_usage.HID_TO_LINUX:
                self.host.key(hid_usage.HID_TO_LINUX[usage], 0)
        for usage in keys:
            if usage not in self._keys and usage in hid_usage.HID_TO_LINUX:
                self.host.key(hid_usage.HID_TO_LINUX[usage], 1)
        self._mods, self._keys = mods, keys

    def reset(self) -> None:
        """The device was unplugged: everything is up."""
        self.host.release_all()
        self._mods, self._keys = 0, ()


class VirtualTransport:
    """A Transport whose host is a :class:`HostDecoder`: ``text`` is what the host would have typed.

    ``caps_lock=True`` starts the host with Caps Lock on. :meth:`unplug` / :meth:`plug` simulate a cable;
    ``disconnect_after=N`` unplugs by itself when report N+1 is offered (that report is NOT delivered).
    ``poll_interval_s`` makes each report wait for the host's next poll, as a USB host takes an interrupt report
    once per polling interval (1 ms: a high-speed host polling the gadget's keyboard endpoint); 0 = at once.
    """

    name = "virtual"

    def __init__(self, layout: str = "us", *, caps_lock: bool = False, disconnect_after: int | None = None,
                 poll_interval_s: float = 0.0) -> None:
        self.host = HostDecoder(layout)
        self._decoder = ReportDecoder(self.host)
        if caps_lock:
            self.host.key(hid_usage.KEY_CAPSLOCK, 1)
            self.host.key(hid_usage.KEY_CAPSLOCK, 0)
            self.host.events.clear()
        self.reports: list[bytes] = []
        self.disconnect_after = disconnect_after
        self._plugged = threading.Event()
        self._plugged.set()
        self._lock = threading.Lock()
        self.closed = False
        self.poll_interval_s = poll_interval_s
        self._next_poll = 0.0

    @property
    def text(self) -> str:
        return self.host.text

    def wait_ready(self, timeout: float) -> bool:
        return self._plugged.wait(timeout)

    def send(self, report: bytes) -> None:
        with self._lock:
            if self.disconnect_after is not None and len(self.reports) >= self.disconnect_after:
                self.disconnect_after = None
                self._unplug_locked()
            if not self._plugged.is_set():
                raise HostDisconnected("virtual host unplugged", reason="not-configured")
            if self.poll_interval_s:
                now = time.monotonic()
                if self._next_poll > now:
                    time.sleep(self._next_poll - now)
                    now = self._next_poll
                self._next_poll = now + self.poll_interval_s
            self._decoder.feed(bytes(report))
            self.reports.append(bytes(report))

    def leds(self) -> int:
        return self.host.leds()

    def unplug(self) -> None:
        with self._lock:
            self._unplug_locked()

    def _unplug_locked(self) -> None:
        self._plugged.clear()
        self._decoder.reset()

    def plug(self) -> None:
        self._plugged.set()

    def close(self) -> None:
        self.closed = True

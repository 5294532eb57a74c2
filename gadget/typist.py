"""The typist: queues texts, converts each whole text to reports, and sends them from its own thread.

It implements the device-side Keyboard protocol (device/keyboard.py): :meth:`Typist.type_text` returns at once,
:meth:`Typist.cancel` returns what was not typed, :meth:`Typist.wait_idle`, :attr:`Typist.state`
("idle" | "typing" | "paused" | "offline"), :meth:`Typist.close`.

When the transport raises :class:`HostDisconnected` the report was not delivered: the typist pauses, keeps the
rest, waits for the host (``transport.wait_ready``), then first brings the host to all keys up (a press may have
been delivered without its release), restores any modifier the next report expects to be already down, and
resumes with the very report that failed — no lost and no doubled characters. Where the transport cannot tell
whether the report before the failed one arrived (``earlier_unsure``: USB, at the instant of an unplug), it
resumes one report earlier: that key is never lost, at worst typed twice (the kernel does not say which).
Caps Lock: the host's LED byte is read before each character; when it changes, the rest of the text is
converted again for the new state.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time

from sttkb.gadget.errors import Error, HostDisconnected, UnmappableError
from sttkb.gadget.keymap import Keymap, get_keymap
from sttkb.gadget.keystrokes import UNMAPPABLE_POLICIES, CharKeys, Plan, plan_reports, plan_text
from sttkb.gadget.reports import ALL_KEYS_UP, ReportSequencer, key_report, parse_report
from sttkb.gadget.transport import LED_CAPS_LOCK, Transport

log = logging.getLogger(__name__)

RETYPE = object()
"""What :meth:`Typist._send` returns when typing must go back to the report before the one offered."""


@dataclasses.dataclass
class _Job:
    keys: list[CharKeys]
    caps_lock: bool
    groups: list[list[bytes]] | None = None
    pos: int = 0
    """Index into keys/groups of the next character to type."""
    sub: int = 0
    """Index of the next report inside groups[pos]."""

    def rest(self, start: int) -> str:
        return "".join(k.char for k in self.keys[start:])


class Typist:
    """Types texts through a :class:`~sttkb.gadget.transport.Transport` in the host's ``layout``.

    ``key_delay_s`` is the pause after each report (seconds; 0 = as fast as the transport takes them).
    ``retry_interval_s`` is how often a paused typist asks the transport whether the host is back.
    The typist owns the transport: :meth:`close` closes it.
    """

    def __init__(self, transport: Transport, layout: str = "us", unmappable: str = "transliterate",
                 key_delay_s: float = 0.002, *, retry_interval_s: float = 0.25) -> None:
        if unmappable not in UNMAPPABLE_POLICIES:
            raise UnmappableError(f"unknown unmappable policy {unmappable!r}; use one of "
                                  + ", ".join(UNMAPPABLE_POLICIES))
        if key_delay_s < 0:
            raise ValueError("key_delay_s must be >= 0 seconds")
        self.transport = transport
        self.keymap: Keymap = get_keymap(layout)
        self.unmappable = unmappable
        self.key_delay_s = key_delay_s
        self.retry_interval_s = retry_interval_s
        self._jobs: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._paused = False
        self._was_paused = False
        self._in_group = False
        self._cancel_pending = False
        self._needs_release = False
        self._last_sent = ALL_KEYS_UP
        self._next_at = 0.0
        self.reports_sent = 0
        """Reports the transport accepted (for benchmarks)."""
        self._thread = threading.Thread(target=self._run, name=f"typist-{transport.name}", daemon=True)
        self._thread.start()

    # ---- Keyboard protocol -------------------------------------------------------------------------------
    def type_text(self, text: str) -> None:
        """Queue ``text``; returns at once. Characters the layout cannot type follow the unmappable policy."""
        if self._closed:
            raise Error("the keyboard is closed; create a new one")
        if not text:
            return
        plan = self._plan(text, self._host_caps())
        with self._cond:
            self._jobs.append(_Job(list(plan.keys), plan.caps_lock))
            self._cond.notify_all()

    def cancel(self) -> str:
        """Drop everything not typed yet and return it (a character being sent right now is finished)."""
        with self._cond:
            parts = []
            for n, job in enumerate(self._jobs):
                start = job.pos
                if n == 0 and self._in_group and not self._paused:
                    start += 1
                parts.append(job.rest(start))
            if self._jobs:
                self._cancel_pending = True
                self._needs_release = True
            self._cond.notify_all()
            return "".join(parts)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until everything queued is typed and all keys are up; False on timeout (seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._needs_release or self._last_sent != ALL_KEYS_UP:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    @property
    def state(self) -> str:
        """"typing", "paused" (text waiting, host gone), "idle" (host there) or "offline"."""
        with self._cond:
            if self._closed:
                return "offline"
            if self._jobs:
                return "paused" if self._paused else "typing"
            paused = self._paused
        if paused:
            return "offline"
        try:
            return "idle" if self.transport.wait_ready(0) else "offline"
        except Error:
            return "offline"

    def close(self) -> None:
        """Drop pending text, let go of all keys if the host is there, stop the thread, close the transport."""
        with self._cond:
            if self._closed:
                return
            self._jobs.clear()
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5.0)
        if self._last_sent != ALL_KEYS_UP:
            try:
                self.transport.send(ALL_KEYS_UP)
            except Error:
                pass
        self.transport.close()

    def __enter__(self) -> "Typist":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- planning ---------------------------------------------------------------------------------------
    def _host_caps(self) -> bool:
        try:
            return bool(self.transport.leds() & LED_CAPS_LOCK)
        except Error:
            return False

    def _plan(self, text: str, caps: bool) -> Plan:
        plan = plan_text(text, self.keymap, unmappable=self.unmappable, caps_lock=caps)
        for change in plan.changes:
            (log.warning if not change.replacement else log.info)(
                "layout %s: %s", self.keymap.layout, change.describe())
        return plan

    def _held_sequencer(self) -> ReportSequencer:
        mods, keys = parse_report(self._last_sent)
        return ReportSequencer(mods, keys[0] if keys else 0)

    # ---- worker -----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._needs_release and not self._closed:
                    if self._last_sent != ALL_KEYS_UP:
                        break
                    self._cond.wait()
                if self._closed:
                    return
                job = self._jobs[0] if self._jobs else None
                if self._cancel_pending:
                    self._jobs.clear()
                    self._cancel_pending = False
                    job = None
            if job is None:
                self._finish()
                continue
            self._work(job)

    def _work(self, job: _Job) -> None:
        """Type one job to the end (or until cancelled/closed)."""
        if job.groups is None:
            job.groups = plan_reports(job.keys, self._held_sequencer())
        while True:
            with self._cond:
                if self._closed or self._cancel_pending:
                    return
                if job.pos >= len(job.keys):
                    self._jobs.popleft()
                    self._needs_release = True
                    self._cond.notify_all()
                    return
                if job.sub == 0:
                    self._follow_caps(job)
                self._in_group = True
                group = job.groups[job.pos]
            resuming = False
            while job.sub < len(group):
                sent = self._send(group[job.sub], retype_ok=job.pos > 0 or job.sub > 0, resuming=resuming)
                resuming = sent is RETYPE
                if sent is RETYPE:       # the host is back: from the report before, which may have been lost
                    if job.sub == 0:
                        with self._cond:
                            job.pos -= 1
                            group = job.groups[job.pos]
                        job.sub = len(group)
                    job.sub -= 1
                    continue
                if not sent:
                    with self._cond:
                        self._in_group = False
                    return
                job.sub += 1
            with self._cond:
                job.pos += 1
                job.sub = 0
                self._in_group = False

    def _follow_caps(self, job: _Job) -> None:
        caps = self._host_caps()
        if caps == job.caps_lock:
            return
        log.info("host Caps Lock is now %s; converting the rest of the text again", "on" if caps else "off")
        rest = job.rest(job.pos)
        plan = self._plan(rest, caps)
        keys = [dataclasses.replace(k, index=job.pos + k.index) for k in plan.keys]
        job.keys[job.pos:] = keys
        assert job.groups is not None
        job.groups[job.pos:] = plan_reports(keys, self._held_sequencer())
        job.caps_lock = caps

    def _finish(self) -> None:
        """Nothing (more) to type: bring the host to all keys up."""
        for report in self._held_sequencer().release_all() or [ALL_KEYS_UP]:
            if not self._send(report):
                return
        with self._cond:
            if not self._jobs:
                self._needs_release = False
            self._cond.notify_all()

    def _send(self, report: bytes, *, retype_ok: bool = False, resuming: bool = False) -> bool | object:
        """Send one report, pausing through disconnects. False if cancelled or closed meanwhile. With
        ``retype_ok``: :data:`RETYPE`, nothing sent, once the host is back if the transport could not tell whether
        the report before this one arrived (the caller goes back to that one and sends it ``resuming``: its
        modifiers pressed first, as after any resume)."""
        before: list[bytes] = modifiers_first(report)[:-1] if resuming else []
        while True:
            try:
                for pre in before:
                    self._next_at = self._pace() + self.key_delay_s
                    self.transport.send(pre)
                    self._last_sent = pre
                    self.reports_sent += 1
                before = []
                started = self._pace()
                self.transport.send(report)
            except HostDisconnected as e:
                if not self._wait_for_host(e):
                    return False
                if retype_ok and e.earlier_unsure:
                    return RETYPE
                before = modifiers_first(report)[:-1]
                continue
            except Error as e:
                log.error("%s transport failed: %s", self.transport.name, e)
                if not self._wait_for_host(e):
                    return False
                before = modifiers_first(report)[:-1]
                continue
            self._last_sent = report
            self.reports_sent += 1
            if self._was_paused:
                self._was_paused = False
                with self._cond:
                    self._paused = False   # also when the pause ended by a cancel: the host took this report
                    self._cond.notify_all()
                log.info("host is back on %s; typing resumed", self.transport.name)
            # Pace by deadline: reports start at least key_delay_s apart; time spent delivering counts.
            self._next_at = started + self.key_delay_s
            return True

    def _pace(self) -> float:
        """Sleep until the next report may go out; returns the time it goes out (monotonic seconds)."""
        if not self.key_delay_s:
            return 0.0
        now = time.monotonic()
        if self._next_at > now:
            time.sleep(self._next_at - now)
            now = time.monotonic()
        return now

    def _wait_for_host(self, why: Exception) -> bool:
        """Pause until the host is back and re-synchronised. False if cancelled or closed meanwhile."""
        if not self._was_paused:
            log.warning("host not reachable on %s (%s); pausing, the rest will be typed when it is back",
                        self.transport.name, why)
        self._was_paused = True
        with self._cond:
            self._paused = True
            self._cond.notify_all()
        while True:
            with self._cond:
                if self._closed:
                    return False
                if self._cancel_pending and self._jobs:
                    return False
            try:
                ready = self.transport.wait_ready(self.retry_interval_s)
            except Error:
                ready = False
                time.sleep(self.retry_interval_s)
            if not ready:
                continue
            with self._cond:  # decide under the lock, so cancel() sees either "paused" or "resuming"
                if self._closed or (self._cancel_pending and self._jobs):
                    return False
                self._paused = False
            try:
                self._resync()
                return True
            except Error:
                with self._cond:
                    self._paused = True
                continue

    def _resync(self) -> None:
        """After a disconnect: whatever the host still holds, let go of it (a press may have got through
        without its release); then the next report starts from a clean state."""
        self.transport.send(ALL_KEYS_UP)
        self._last_sent = ALL_KEYS_UP
        self.reports_sent += 1


def modifiers_first(report: bytes) -> list[bytes]:
    """The report(s) that press ``report`` from all keys up: modifiers alone first when a key needs them."""
    mods, keys = parse_report(report)
    if mods and keys:
        return [key_report(mods), report]
    return [report]

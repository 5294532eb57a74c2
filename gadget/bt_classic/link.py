"""The HID link to one host over Bluetooth Classic: the control (PSM 0x11) and interrupt (PSM 0x13) L2CAP
channels, whichever side opened them.

A host connects control first, then interrupt; the keyboard reconnects the same way to a bonded host
(:meth:`HidLink.connect`: the HID profile's "reconnect initiate"). One host at a time: a connection from another
host while one is connected is refused. Who may connect at all is ``allow(address)`` (bonded hosts; the kernel
also demands an encrypted link, :data:`~sttkb.gadget.bt_classic.l2cap.SECURITY_MEDIUM`, before it completes a
channel). The host's transactions on the control channel are answered by :mod:`sttkb.gadget.bt_classic.hidp`; a
VIRTUAL_CABLE_UNPLUG drops the link and calls ``on_unplug(address)`` (the host removed the bond).

One thread serves the listeners and the connected channels (poll); other threads only shut sockets down and
wake it, so every socket is closed by that thread. :meth:`HidLink.send_input` runs in the caller's thread (the
typist's): a report counts as sent when the kernel took the whole message; otherwise it raises
:class:`~sttkb.gadget.errors.HostDisconnected`. Whether it reached the host is the transport's delivery tracking.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from sttkb.gadget.bt_classic import hidp, l2cap
from sttkb.gadget.bt_classic.sdp_record import PSM_HID_CONTROL, PSM_HID_INTERRUPT
from sttkb.gadget.errors import HostDisconnected, TransportError

log = logging.getLogger(__name__)

PENDING_CONTROL_S = 10.0
"""How long an accepted control channel waits for its interrupt channel (seconds)."""
_BUF = 1024


@dataclass(eq=False)
class _Connection:
    address: str
    ctrl: socket.socket
    intr: socket.socket
    since: float
    state: hidp.HidState = field(default_factory=hidp.HidState)
    dead: bool = False
    channel: tuple[int, int] | None = None
    """(ACL handle, the host's channel ID) of the interrupt channel, where the kernel tells."""


class HidLink:
    """HID channels on the adapter with ``adapter_address``. ``settle_s``: a new connection is ready for keys
    this long after both channels are up (the host's HID driver attaches meanwhile). ``on_change(address,
    connected)`` and ``on_unplug(address)`` are called from the link's own threads."""

    def __init__(self, adapter_address: str, *, allow: Callable[[str], bool] = lambda _a: True,
                 on_unplug: Callable[[str], None] | None = None,
                 on_change: Callable[[str, bool], None] | None = None, settle_s: float = 0.5,
                 security: int = l2cap.SECURITY_MEDIUM, send_timeout_s: float = 2.0,
                 connect_timeout_s: float = 15.0,
                 answers_page: Callable[[str], bool | None] | None = None) -> None:
        self.adapter_address = adapter_address
        self.allow = allow
        self.on_unplug = on_unplug
        self.on_change = on_change
        self.settle_s = settle_s
        self.security = security
        self.send_timeout_s = send_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.answers_page = answers_page
        """``answers_page(address)``: is the host in range (True), not (False), cannot tell (None)? Asked before
        every outgoing connection (:mod:`sttkb.gadget.bt_classic.page`: a failed BR/EDR L2CAP connection oopses
        some kernels); None = connect without asking."""
        self._cond = threading.Condition()
        self._conn: _Connection | None = None
        self._pending: tuple[socket.socket, str, float] | None = None
        self._dropped: list[_Connection] = []
        self._listeners: list[socket.socket] = []
        self._connecting = threading.Lock()
        self._closed = False
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self.dropped_at = -1e9
        """time.monotonic() of the last time a connection went down."""
        self.refused: list[str] = []
        """Addresses whose channels were refused (not allowed, or another host was connected): for status and tests."""

    # ---- life cycle ---------------------------------------------------------------------------------------
    def start(self, listeners: list[socket.socket] | None = None) -> "HidLink":
        """Listen on both PSMs (``listeners``: [control, interrupt] sockets made elsewhere, for tests). Raises
        TransportError when that is impossible (in use: bluetoothd's input plugin is running; see
        services/bluetooth)."""
        try:
            if listeners is not None:
                self._listeners = list(listeners)
            for psm in (PSM_HID_CONTROL, PSM_HID_INTERRUPT) if listeners is None else ():
                self._listeners.append(l2cap.listen(self.adapter_address, psm, security=self.security))
        except OSError as e:
            for sock in self._listeners:
                sock.close()
            self._listeners = []
            hint = (" — bluetoothd's input plugin holds it: run bluetoothd with --noplugin=input "
                    "(services/bluetooth/bluetooth.service.d/50-sttkb.conf)") if "in use" in str(e) else ""
            raise TransportError(f"cannot listen for Bluetooth Classic HID hosts: {e}{hint}") from e
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._serve, name="bt-classic-hid", daemon=True)
        self._thread.start()
        log.info("Bluetooth Classic HID listening on %s (PSM 0x%02x, 0x%02x)", self.adapter_address,
                 PSM_HID_CONTROL, PSM_HID_INTERRUPT)
        return self

    def close(self) -> None:
        """Drop the host, stop listening, stop the thread. Safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            conn = self._conn
            self._cond.notify_all()
        if conn is not None:
            self._drop(conn, "the keyboard is closing")
        self._wake()
        if self._thread is not None:
            self._thread.join(5.0)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    # ---- state ----------------------------------------------------------------------------------------------
    @property
    def host(self) -> str | None:
        """Address of the connected host (both channels up), or None."""
        conn = self._conn
        return conn.address if conn is not None and not conn.dead else None

    @property
    def leds(self) -> int:
        conn = self._conn
        return conn.state.leds if conn is not None else 0

    @property
    def protocol(self) -> int:
        conn = self._conn
        return conn.state.protocol if conn is not None else hidp.PROTOCOL_REPORT

    def _ready_in(self) -> float | None:
        """Seconds until the connection is ready (0: ready now), None when there is none. Under the lock."""
        conn = self._conn
        if conn is None or conn.dead or self._closed:
            return None
        return max(0.0, conn.since + self.settle_s - time.monotonic())

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                wait = self._ready_in()
                if wait == 0.0:
                    return True
                if self._closed:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left if wait is None else min(left, wait + 0.001))

    # ---- typing ---------------------------------------------------------------------------------------------
    def send_input(self, report: bytes, before: Callable[[tuple[int, int] | None], None] | None = None) -> None:
        """Send one 8-byte input report on the interrupt channel, or raise HostDisconnected (then it was not
        sent: an L2CAP message is taken by the kernel whole or not at all). ``before(channel)`` is called just
        before the kernel gets it, with the interrupt channel's (ACL handle, host's channel ID) or None."""
        with self._cond:
            if self._ready_in() != 0.0:
                raise HostDisconnected("no host connected over Bluetooth Classic", reason="disconnected")
            conn = self._conn
            assert conn is not None
            frame = hidp.input_frame(conn.state, report)
        if before is not None:
            before(conn.channel)
        try:
            conn.intr.send(frame)
        except socket.timeout as e:
            raise HostDisconnected(f"the host took no report for {self.send_timeout_s:g} s", reason="timeout") from e
        except OSError as e:
            self._drop(conn, f"sending failed: {e}")
            raise HostDisconnected(f"the host is gone ({e})", reason="disconnected") from e
        conn.state.last_input = report

    # ---- connecting out -------------------------------------------------------------------------------------
    def connect(self, address: str) -> bool:
        """Open the control, then the interrupt channel to ``address`` (a bonded host). True when connected
        (also when it already was); False when the host did not answer (logged)."""
        with self._connecting:
            with self._cond:
                if self._closed:
                    return False
                if self._conn is not None and not self._conn.dead:
                    return self._conn.address == address
            if self.answers_page is not None:
                answered = self.answers_page(address)
                if not answered:
                    log.info("not connecting to %s: %s", address, "it does not answer (out of range or off)"
                             if answered is False else "cannot check whether it is in range")
                    return False
            ctrl = intr = None
            try:
                ctrl = l2cap.connect(address, PSM_HID_CONTROL, source=self.adapter_address, security=self.security,
                                     timeout=self.connect_timeout_s)
                intr = l2cap.connect(address, PSM_HID_INTERRUPT, source=self.adapter_address,
                                     security=self.security, timeout=self.connect_timeout_s)
            except OSError as e:
                log.info("could not reconnect to %s: %s", address, e)
                for sock in (intr, ctrl):
                    if sock is not None:
                        sock.close()
                return False
            if not self._install(address, ctrl, intr):
                return self.host == address
            log.info("reconnected to %s", address)
            return True

    def disconnect(self, why: str = "asked to") -> None:
        conn = self._conn
        if conn is not None:
            self._drop(conn, why)

    # ---- inside -------------------------------------------------------------------------------------------
    def _install(self, address: str, ctrl: socket.socket, intr: socket.socket) -> bool:
        """Make ``ctrl``/``intr`` the connection (False and closed when one is already there or closing)."""
        intr.settimeout(self.send_timeout_s)
        channel = l2cap.channel_ids(intr)
        with self._cond:
            if self._closed or (self._conn is not None and not self._conn.dead):
                busy = True
            else:
                busy = False
                self._conn = _Connection(address, ctrl, intr, since=time.monotonic(), channel=channel)
                self._cond.notify_all()
        if busy:
            ctrl.close()
            intr.close()
            return False
        self._wake()
        self._notify_change(address, True)
        return True

    def _drop(self, conn: _Connection, why: str) -> None:
        """Take the link down (any thread): shut both channels (the serve thread closes them)."""
        with self._cond:
            if conn.dead:
                return
            conn.dead = True
            self.dropped_at = time.monotonic()
            self._dropped.append(conn)
            self._cond.notify_all()
        log.info("host %s disconnected: %s", conn.address, why)
        for sock in (conn.intr, conn.ctrl):   # interrupt first, as the HID profile closes them
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._wake()
        self._notify_change(conn.address, False)

    def _notify_change(self, address: str, connected: bool) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(address, connected)
        except Exception:  # noqa: BLE001 (a callback must not break the link)
            log.exception("link change callback failed")

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def _serve(self) -> None:
        poller = select.poll()
        registered: dict[int, object] = {}
        while True:
            with self._cond:
                dropped, self._dropped = self._dropped, []
                for gone in dropped:
                    if self._conn is gone:
                        self._conn = None
                if dropped:
                    self._cond.notify_all()
                if self._closed and self._conn is None:
                    break
                conn = self._conn
            for gone in dropped:   # closed here only: no other thread polls or sends on them any more
                gone.intr.close()
                gone.ctrl.close()
            wanted = {self._wake_r: "wake"}
            if not self._closed:
                wanted.update({s.fileno(): s for s in self._listeners})
            if conn is not None:
                wanted[conn.ctrl.fileno()] = "ctrl"
                wanted[conn.intr.fileno()] = "intr"
            for fd in set(registered) - set(wanted):
                poller.unregister(fd)
            for fd in set(wanted) - set(registered):
                poller.register(fd, select.POLLIN)
            registered = wanted
            for fd, events in poller.poll(1000):
                what = wanted.get(fd)
                if what == "wake":
                    try:
                        os.read(self._wake_r, 64)
                    except OSError:
                        pass
                elif what in ("ctrl", "intr") and conn is not None:
                    self._channel(conn, what, events)
                elif isinstance(what, socket.socket):
                    self._incoming(what)
            self._expire_pending()
        for sock in self._listeners:
            sock.close()
        self._listeners = []
        if self._pending is not None:
            self._pending[0].close()
            self._pending = None

    def _channel(self, conn: _Connection, which: str, events: int) -> None:
        sock = conn.ctrl if which == "ctrl" else conn.intr
        try:
            data = sock.recv(_BUF) if events & select.POLLIN else b""
        except (BlockingIOError, socket.timeout):
            return
        except OSError as e:
            self._drop(conn, f"{which} channel: {e}")
            return
        if not data:
            self._drop(conn, f"the host closed the {which} channel")
            return
        if which == "intr":
            if hidp.handle_interrupt(conn.state, data) == "leds":
                log.debug("host LEDs: 0x%02x", conn.state.leds)
            return
        answer = hidp.handle_control(conn.state, data)
        if answer.reply is not None:
            try:
                conn.ctrl.send(answer.reply)
            except OSError as e:
                self._drop(conn, f"control channel: {e}")
                return
        if answer.event == "unplug":
            self._drop(conn, "the host unplugged the virtual cable (it removed the bond)")
            if self.on_unplug is not None:
                threading.Thread(target=self.on_unplug, args=(conn.address,), name="bt-classic-unplug",
                                 daemon=True).start()
        elif answer.event is not None:
            log.info("host %s: %s (protocol %s, LEDs 0x%02x)", conn.address, answer.event,
                     "boot" if conn.state.protocol == hidp.PROTOCOL_BOOT else "report", conn.state.leds)

    def _incoming(self, listener: socket.socket) -> None:
        try:
            sock, address = l2cap.accept(listener)
        except OSError as e:
            log.info("accept failed: %s", e)
            return
        is_ctrl = listener is self._listeners[0]
        current = self.host
        if current is not None and current != address:
            self._refuse(sock, address, f"typing to {current} (one host at a time)")
            return
        if not self._allowed(address):
            self._refuse(sock, address, "not a bonded host")
            return
        if current == address and is_ctrl:
            # The host reconnects while the keyboard still holds its old link: the old one is stale.
            conn = self._conn
            if conn is not None:
                self._drop(conn, "the host opened a new control channel")
        if is_ctrl:
            if self._pending is not None:
                self._pending[0].close()
            self._pending = (sock, address, time.monotonic())
            return
        pending, self._pending = self._pending, None
        if pending is None or pending[1] != address:
            if pending is not None:
                pending[0].close()
            self._refuse(sock, address, "interrupt channel without a control channel")
            return
        if self._install(address, pending[0], sock):
            log.info("host %s connected (HID control and interrupt channels)", address)

    def _allowed(self, address: str) -> bool:
        try:
            return bool(self.allow(address))
        except Exception:  # noqa: BLE001 (cannot tell: refuse)
            log.exception("host check for %s failed", address)
            return False

    def _refuse(self, sock: socket.socket, address: str, why: str) -> None:
        log.warning("refusing HID channel from %s: %s", address, why)
        self.refused.append(address)
        sock.close()

    def _expire_pending(self) -> None:
        if self._pending is not None and time.monotonic() - self._pending[2] > PENDING_CONTROL_S:
            log.info("control channel from %s without an interrupt channel: closed", self._pending[1])
            self._pending[0].close()
            self._pending = None

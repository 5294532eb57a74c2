"""The /dev/hidg0 writer: a Transport that hands 8-byte reports to the kernel's HID gadget function.

- The device is opened O_RDWR | O_NONBLOCK; before each write it waits (poll) for writability with a timeout.
  EAGAIN, ESHUTDOWN, EPIPE, ENODEV and timeouts raise :class:`HostDisconnected` and never count as written.
- f_hid queues one report at a time; the fd becomes writable again when the host has taken it. After writing we
  wait for that and then check that the UDC is still ``configured``: a report aborted by an unplug completes the
  same way, so "completed but no longer configured" counts as NOT delivered and the typist sends it again. The
  state can lag the unplug by a moment, so a failure also says ``earlier_unsure`` when a report completed since
  the last failed send: the typist then resumes one report earlier (no key lost; at worst one doubled).
  If the host stops polling (suspend) the report stays queued and is delivered on resume, so it counts as sent.
- LED output reports from the host (Caps Lock...) are read from the same fd.
- Readiness: ``/sys/class/udc/<udc>/state`` is ``configured`` and the device node opens.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import select
import time
from pathlib import Path

from sttkb.gadget.errors import HostDisconnected, TransportError
from sttkb.gadget.reports import REPORT_LENGTH

log = logging.getLogger(__name__)

_GONE = {errno.EAGAIN: "eagain", errno.ESHUTDOWN: "eshutdown", errno.EPIPE: "epipe",
         errno.ENODEV: "enodev", errno.ECONNRESET: "econnreset", errno.EIO: "eio", errno.ENXIO: "enxio"}


def udc_names(sysfs_root: Path = Path("/sys")) -> list[str]:
    """USB device controllers present, sorted (``dummy_udc.0``, ``fe980000.usb``...)."""
    try:
        return sorted(os.listdir(sysfs_root / "class" / "udc"))
    except FileNotFoundError:
        return []


def udc_state(udc: str, sysfs_root: Path = Path("/sys")) -> str:
    """``/sys/class/udc/<udc>/state``: "not attached", "configured", "suspended", ...; "" if unknown."""
    try:
        return (sysfs_root / "class" / "udc" / udc / "state").read_text().strip()
    except OSError:
        return ""


class HidgTransport:
    """Transport over a configfs HID function's character device (``/dev/hidg0``)."""

    name = "usb"

    def __init__(self, device: str | os.PathLike = "/dev/hidg0", *, udc: str = "",
                 sysfs_root: str | os.PathLike = "/sys", write_timeout_s: float = 1.0,
                 settle_s: float = 1.0, confirm_delivery: bool = True) -> None:
        self.device = Path(device)
        self.sysfs_root = Path(sysfs_root)
        self._udc = udc
        self._auto_udc = ""
        self.write_timeout_s = write_timeout_s
        self._fd: int | None = None
        self._leds = 0
        self._missing_logged = False
        self._state_fd: int | None = None
        self._state_udc = ""
        self.settle_s = settle_s
        """After a re-plug, wait this long (seconds) before typing: reports sent while the host is still
        setting up the new keyboard reach the kernel before the desktop opens the device and are lost."""
        self.confirm_delivery = confirm_delivery
        """Wait until the host took each report and check the UDC is still configured (unplug-safe). Off:
        faster when the Python side is slow (emulation), but a report in flight at unplug can be lost."""
        self._poller: select.poll | None = None
        self._poller_fd = -1
        self._configured_since: float | None = None
        self._completed_in_link = False    # a report completed since the last failed send
        self._seen_down = False

    # ---- state ------------------------------------------------------------------------------------------
    @property
    def udc(self) -> str:
        """The controller watched: the configured name, else the first in /sys/class/udc ("" if none)."""
        if self._udc:
            return self._udc
        if not self._auto_udc:  # listing sysfs costs milliseconds: resolve once, again only after a failure
            names = udc_names(self.sysfs_root)
            self._auto_udc = names[0] if names else ""
        return self._auto_udc

    def udc_state(self) -> str:
        """The watched UDC's state, read with pread on a kept-open fd (a fresh open costs ms under emulation)."""
        udc = self.udc
        if not udc:
            return ""
        if self._state_fd is None or self._state_udc != udc:
            self._close_state()
            try:
                self._state_fd = os.open(self.sysfs_root / "class" / "udc" / udc / "state",
                                         os.O_RDONLY | os.O_CLOEXEC)
                self._state_udc = udc
            except OSError:
                self._auto_udc = ""
                return ""
        try:
            return os.pread(self._state_fd, 64, 0).decode("ascii", "replace").strip()
        except OSError:
            self._close_state()
            self._auto_udc = ""
            return ""

    def _close_state(self) -> None:
        if self._state_fd is not None:
            try:
                os.close(self._state_fd)
            except OSError:
                pass
            self._state_fd = None

    def configured(self) -> bool:
        return self.udc_state() == "configured"

    def configured_for(self) -> float:
        """Seconds the UDC has been configured since we last saw it otherwise (-1 = not configured now).
        If we never saw it unconfigured, it counts as configured long ago (infinity: ``now - (now - settle)``
        can round to just below ``settle`` and make a box plugged in since boot wait for nothing)."""
        now = time.monotonic()
        if not self.configured():
            self._mark_down()
            return -1.0
        if self._configured_since is None:
            self._configured_since = now if self._seen_down else -math.inf
        return now - self._configured_since

    def _mark_down(self) -> None:
        self._configured_since = None
        self._seen_down = True

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until a host has configured the gadget (for ``settle_s`` after a
        re-plug, so the host's input stack has opened the new keyboard) and the device node opens."""
        deadline = time.monotonic() + timeout
        while True:
            if self.configured_for() >= self.settle_s:
                try:
                    self._open()
                    return True
                except HostDisconnected:
                    pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # ---- I/O --------------------------------------------------------------------------------------------
    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError as e:
                if not self._missing_logged:
                    log.warning("%s does not exist: is the USB gadget up? (sttkb gadget up)", self.device)
                    self._missing_logged = True
                raise HostDisconnected(f"{self.device} does not exist; run `sttkb gadget up`",
                                       reason="no-device") from e
            except PermissionError as e:
                raise TransportError(f"no permission to open {self.device}: run as root or install the udev "
                                     f"rule from services/ (group sttkb)") from e
            except OSError as e:
                raise HostDisconnected(f"cannot open {self.device}: {e.strerror}", reason="open-failed") from e
            self._missing_logged = False
        return self._fd

    def _reset(self) -> None:
        self._poller = None
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _wait_writable(self, fd: int, timeout: float) -> bool:
        if self._poller is None or self._poller_fd != fd:
            self._poller = select.poll()
            self._poller.register(fd, select.POLLOUT)
            self._poller_fd = fd
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            events = self._poller.poll(max(0, int(remaining * 1000)))
            for _, mask in events:
                if mask & select.POLLOUT:
                    return True
                if mask & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    return False
            if remaining <= 0:
                return False

    def send(self, report: bytes) -> None:
        """Deliver one 8-byte report or raise HostDisconnected (then it was not delivered; ``earlier_unsure`` if a
        report completed since the last failed send, as the one before may have been aborted unseen: a state poll
        that saw the host gone meanwhile does not clear it, since it may have seen the very unplug that aborted it)."""
        try:
            self._send(report)
        except HostDisconnected as e:
            e.earlier_unsure = self._completed_in_link
            self._completed_in_link = False
            self._mark_down()
            raise
        self._completed_in_link = True

    def _send(self, report: bytes) -> None:
        if len(report) != REPORT_LENGTH:
            raise ValueError(f"a boot keyboard report has {REPORT_LENGTH} bytes, got {len(report)}")
        fd = self._open()
        if not self._wait_writable(fd, self.write_timeout_s):
            state = self.udc_state() or "unknown"
            raise HostDisconnected(f"the host did not take a report within {self.write_timeout_s:g} s "
                                   f"(USB state: {state})", reason="timeout")
        try:
            written = os.write(fd, report)
        except OSError as e:
            reason = _GONE.get(e.errno)
            if reason is None:
                raise TransportError(f"writing to {self.device} failed: {e.strerror}") from e
            if e.errno != errno.EAGAIN:
                self._reset()
            raise HostDisconnected(f"the host is not listening ({errno.errorcode.get(e.errno, e.errno)})",
                                   reason=reason) from e
        if written != REPORT_LENGTH:
            raise HostDisconnected(f"short write to {self.device} ({written} bytes)", reason="short-write")
        if not self.confirm_delivery:
            return
        # Wait until f_hid's request completed, then make sure it completed because the host took it.
        completed = self._wait_writable(fd, self.write_timeout_s)
        state = self.udc_state()
        if state != "configured" and not (not completed and state == "suspended"):
            raise HostDisconnected(f"USB state changed to {state or 'unknown'!r} while sending",
                                   reason="unconfirmed")

    def _read_leds(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 64)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                return
            self._leds = data[0]

    def leds(self) -> int:
        """Last LED byte the host sent (Caps Lock = 0x02); reads what is pending without blocking."""
        if self._fd is None:
            try:
                self._open()
            except (HostDisconnected, TransportError):
                return self._leds
        assert self._fd is not None
        self._read_leds(self._fd)
        return self._leds

    def close(self) -> None:
        self._reset()
        self._close_state()

"""Which input reports reached the host's radio, read from the kernel's HCI monitor frames (pure logic, no I/O).
Serves both radios: BLE (reports are ATT notifications, :class:`AttNotifications`) and Bluetooth Classic (reports
are HIDP DATA messages on the interrupt channel, :class:`sttkb.gadget.bt_classic.interrupt.InterruptChannel`).

Neither a BLE notification nor a Classic L2CAP message is acknowledged to the sender's software, but the link layer
knows: the controller reports every ACL packet it has sent (HCI Number Of Completed Packets, in order per
connection) and drops what it still holds when the link goes (HCI Disconnection Complete). The kernel copies all
of this, and every ACL packet it hands to the controller, to the HCI monitor channel (what btmon reads).
:class:`DeliveryTracker` matches the reports the keyboard handed over (to bluetoothd, or to the kernel's L2CAP
socket) with the report frames the kernel sent and with the completions the controller reported, so that after a
lost link the transport can send again exactly the reports that never arrived. Which frames carry reports, and
which event is a new connection, is the radio's part (``frames``).

Rules (each one errs towards "delivered", so a report can be missing but is never typed twice):
- A report frame whose value is not the next report waiting to go out is not ours (bluetoothd re-sends the last
  value it could not send when a bonded host reconnects) and is ignored when nothing waits; if something waits
  and the value differs, the tracker stops trusting itself and reports nothing as lost from then on.
- Reports count as lost only when their link went down before the controller completed them, and only once
  this tracker has seen at least one completion (it sees the traffic at all).
- A tracker that stopped trusting itself starts afresh with the next connection (nothing is pending then).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import struct
import threading
from typing import Protocol

from sttkb.gadget.reports import REPORT_LENGTH

log = logging.getLogger(__name__)

# HCI monitor channel opcodes (Linux include/net/bluetooth/hci_mon.h).
MON_EVENT_PKT = 3
MON_ACL_TX_PKT = 4
MON_HEADER = struct.Struct("<HHH")  # opcode, controller index, payload length

EVT_DISCONNECTION_COMPLETE = 0x05
EVT_NUM_COMPLETED_PACKETS = 0x13
EVT_LE_META = 0x3E
LE_CONNECTION_COMPLETE = (0x01, 0x0A, 0x29)  # legacy, enhanced, enhanced v2: status u8, handle le16 first

ACL_CONTINUATION = 0x1
L2CAP_CID_ATT = 0x0004
L2CAP_CID_DYNAMIC = 0x0040
ATT_HANDLE_VALUE_NTF = 0x1B
ATT_MULTIPLE_HANDLE_VALUE_NTF = 0x23

MAX_UNRESOLVED = 512
"""More reports than this handed over and never seen on the air: the monitor does not see them (another
controller, an L2CAP channel it does not read); the tracker gives up instead of growing."""


def att_pdu(l2cap_frame: bytes) -> bytes | None:
    """The ATT PDU in a whole L2CAP frame: on the fixed ATT channel, or on an Enhanced ATT bearer (a dynamic
    credit-based channel; a frame that holds one whole SDU starts with the SDU's length). None for anything else."""
    if len(l2cap_frame) < 5:
        return None
    length, cid = struct.unpack_from("<HH", l2cap_frame)
    if cid == L2CAP_CID_ATT:
        return bytes(l2cap_frame[4:])
    if cid >= L2CAP_CID_DYNAMIC and len(l2cap_frame) >= 7 and struct.unpack_from("<H", l2cap_frame, 4)[0] == length - 2:
        return bytes(l2cap_frame[6:])
    return None


def att_notification_values(att: bytes | None) -> list[bytes]:
    """The values an ATT notification PDU carries; [] for any other PDU."""
    if not att:
        return []
    if att[0] == ATT_HANDLE_VALUE_NTF and len(att) >= 3:
        return [bytes(att[3:])]
    if att[0] == ATT_MULTIPLE_HANDLE_VALUE_NTF:
        values, i = [], 1
        while i + 4 <= len(att):
            _handle, n = struct.unpack_from("<HH", att, i)
            values.append(bytes(att[i + 4:i + 4 + n]))
            i += 4 + n
        return values
    return []


class ReportFrames(Protocol):
    """The radio's part of delivery tracking: which outgoing L2CAP frames carry input reports, and which HCI event
    is a new connection of the kind the reports go over. Called under the tracker's lock."""

    def reports(self, handle: int, l2cap_frame: bytes) -> tuple[list[bytes], bool]:
        """The 8-byte input reports in one whole outgoing L2CAP frame on connection ``handle``, and whether they
        went combined (several in one ATT PDU)."""
        ...

    def is_connection(self, event: bytes) -> bool:
        """Is this HCI event (code, length, parameters) a successful new connection?"""
        ...


class AttNotifications:
    """BLE: input reports are ATT (Multiple) Handle Value Notifications of 8 bytes; a connection is an LE
    (Enhanced) Connection Complete."""

    def reports(self, handle: int, l2cap_frame: bytes) -> tuple[list[bytes], bool]:
        att = att_pdu(l2cap_frame)
        values = [v for v in att_notification_values(att) if len(v) == REPORT_LENGTH]  # battery level: 1 byte
        return values, bool(att) and att[0] == ATT_MULTIPLE_HANDLE_VALUE_NTF

    def is_connection(self, event: bytes) -> bool:
        return (len(event) >= 6 and event[0] == EVT_LE_META and event[2] in LE_CONNECTION_COMPLETE
                and event[3] == 0)


class _State(enum.Enum):
    WAITING = "handed to bluetoothd, not seen on the air yet"
    IN_FLIGHT = "given to the controller, not completed"
    LOST = "its link went down first"


@dataclasses.dataclass(eq=False)
class _Entry:
    report: bytes
    state: _State = _State.WAITING
    went_out: bool = False
    """The kernel handed it to the controller."""


class DeliveryTracker:
    """Feed it the monitor frames of one controller (:meth:`feed`) and the reports handed over (:meth:`handed_over`);
    :meth:`take_lost` returns, in order, the reports whose link went down under them. ``frames``: which frames are
    reports (BLE's notifications by default). Thread-safe: the monitor reader and the typist's thread call it
    concurrently."""

    def __init__(self, index: int, frames: ReportFrames | None = None) -> None:
        self.index = index
        self.frames: ReportFrames = frames if frames is not None else AttNotifications()
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._packets: dict[int, list[list[_Entry]]] = {}  # per connection handle: ACL packets not completed
        self._partial: dict[int, bytearray] = {}  # per handle: an L2CAP frame split over ACL packets
        self._report_link: int | None = None  # the connection our reports last went out on
        self._link_down = False
        self.trusted = True
        self.completed_reports = 0
        self.combined_reports = 0
        """Reports that went out in ATT Multiple Handle Value Notifications (the host asked for them)."""

    # ---- the keyboard's side ----------------------------------------------------------------------------------
    def handed_over(self, report: bytes) -> None:
        """Call just before handing ``report`` over (before, so the kernel cannot send it first)."""
        with self._lock:
            if not self.trusted:
                return
            self._entries.append(_Entry(bytes(report)))
            if len(self._entries) > MAX_UNRESOLVED:
                self._distrust(f"{len(self._entries)} reports handed over were never seen going out")

    def withdraw(self, report: bytes) -> None:
        """Undo :meth:`handed_over` for a report that was not taken after all (also when the link went down in
        between and marked it lost: it never went out, and the caller keeps it)."""
        with self._lock:
            if self._entries and not self._entries[-1].went_out and self._entries[-1].report == report:
                self._entries.pop()

    def expect_link(self, handle: int) -> None:
        """The connection the next reports go out on, where the radio knows it before they go (Classic: the
        interrupt channel's ACL link). Reports handed over and not yet sent are lost when that link goes down."""
        with self._lock:
            if self.trusted:
                self._report_link = handle

    def take_lost(self) -> list[bytes]:
        """The reports that will never arrive, oldest first, forgotten here once taken; [] unless trusted."""
        with self._lock:
            lost = [e for e in self._entries if e.state is _State.LOST]
            if not lost:
                return []
            self._entries = [e for e in self._entries if e.state is not _State.LOST]
            if not (self.trusted and self.completed_reports):
                log.info("%d report(s) may not have reached the host; delivery tracking cannot tell", len(lost))
                return []
            return [e.report for e in lost]

    @property
    def pending(self) -> int:
        """Reports handed over and not known to be completed or lost."""
        with self._lock:
            return sum(1 for e in self._entries if e.state is not _State.LOST)

    # ---- the monitor's side -----------------------------------------------------------------------------------
    def feed(self, frame: bytes) -> None:
        """One frame as read from the HCI monitor socket (6-byte header + payload)."""
        if len(frame) < MON_HEADER.size:
            return
        opcode, index, length = MON_HEADER.unpack_from(frame)
        if index != self.index:
            return
        payload = frame[MON_HEADER.size:MON_HEADER.size + length]
        with self._lock:
            if not self.trusted:
                if opcode == MON_EVENT_PKT and self.frames.is_connection(payload):
                    self._rearm()
                return
            if opcode == MON_ACL_TX_PKT:
                self._acl_tx(payload)
            elif opcode == MON_EVENT_PKT:
                self._event(payload)

    def _acl_tx(self, acl: bytes) -> None:
        if len(acl) < 4:
            return
        handle_flags, _dlen = struct.unpack_from("<HH", acl)
        handle, boundary = handle_flags & 0x0FFF, (handle_flags >> 12) & 0x3
        packet: list[_Entry] = []
        self._packets.setdefault(handle, []).append(packet)
        data = acl[4:]
        if boundary == ACL_CONTINUATION:
            if handle not in self._partial:
                return
            self._partial[handle] += data
        else:
            self._partial[handle] = bytearray(data)
        frame = self._partial[handle]
        if len(frame) < 4 or len(frame) < 4 + struct.unpack_from("<H", frame)[0]:
            return  # more fragments follow; the frame counts as sent with its last packet
        del self._partial[handle]
        values, combined = self.frames.reports(handle, bytes(frame))
        for value in values:
            waiting = next((e for e in self._entries if e.state is _State.WAITING), None)
            if waiting is None:
                continue  # bluetoothd's own re-send of an old value after a reconnect
            if waiting.report != value:
                self._distrust(f"sent {value.hex()} where {waiting.report.hex()} was next")
                return
            waiting.state = _State.IN_FLIGHT
            waiting.went_out = True
            packet.append(waiting)
            self._report_link = handle
            if combined:
                if not self.combined_reports:
                    log.warning("the host asked for combined notifications and gets its keys that way: a Linux "
                                "host with BlueZ older than 5.67 ignores them and types nothing (update BlueZ "
                                "there; `sttkb check` on it tells)")
                self.combined_reports += 1

    def _event(self, event: bytes) -> None:
        if len(event) < 2:
            return
        code, params = event[0], event[2:]
        if code == EVT_NUM_COMPLETED_PACKETS and params:
            for i in range(params[0]):
                if len(params) < 5 + 4 * i:
                    break
                handle, count = struct.unpack_from("<HH", params, 1 + 4 * i)
                self._completed(handle & 0x0FFF, count)
        elif code == EVT_DISCONNECTION_COMPLETE and len(params) >= 3 and params[0] == 0:
            self._disconnected(struct.unpack_from("<H", params, 1)[0] & 0x0FFF)
        elif self.frames.is_connection(event):
            self._connected()

    def _completed(self, handle: int, count: int) -> None:
        queue = self._packets.get(handle, [])
        done, self._packets[handle] = queue[:count], queue[count:]
        delivered = {id(e) for packet in done for e in packet}
        if delivered:
            self.completed_reports += len(delivered)
            self._entries = [e for e in self._entries if id(e) not in delivered]

    def _disconnected(self, handle: int) -> None:
        for packet in self._packets.pop(handle, []):
            for e in packet:
                e.state = _State.LOST
        self._partial.pop(handle, None)
        if handle == self._report_link:  # not some other host's link (a stranger the keyboard turned away)
            self._report_link = None
            self._link_down = True
            self._lose_waiting()

    def _connected(self) -> None:
        if self._link_down:
            # Handed over while no link was up: bluetoothd keeps at most one such value for a bonded host and
            # sends it on its own when the host is back (the keyboard makes that one all keys up).
            self._lose_waiting()
        self._link_down = False

    def distrust(self, why: str) -> None:
        """Stop tracking until the next connection: nothing is claimed lost meanwhile."""
        with self._lock:
            self._distrust(why)

    def _distrust(self, why: str) -> None:
        if self.trusted:
            log.warning("delivery tracking stops (%s): reports lost in the air will not be sent again", why)
        self.trusted = False
        self._forget_all()

    def _rearm(self) -> None:
        log.info("delivery tracking starts afresh with a new connection")
        self.trusted = True
        self._forget_all()

    def _forget_all(self) -> None:
        self._entries.clear()
        self._packets.clear()
        self._partial.clear()
        self._report_link = None
        self._link_down = False

    def _lose_waiting(self) -> None:
        for e in self._entries:
            if e.state is _State.WAITING:
                e.state = _State.LOST

"""Is the pairing under way LE Secure Connections? Read from the SMP feature exchange on the HCI monitor (pure logic).

The kernel runs the Security Manager Protocol itself; bluetoothd only relays the passkey request to the agent, and
its D-Bus API does not say whether the pairing is LE Secure Connections or the older "legacy" pairing (whose
passkey an eavesdropper who recorded the pairing can brute-force in moments). The first two SMP PDUs say it: the
host's Pairing Request and the box kernel's Pairing Response each carry an AuthReq byte, and Secure Connections is
used only when both set its SC bit (Core spec, Vol 3, Part H, 2.3.5.6 and 3.5.1-2). Both travel as ACL data on
L2CAP channel 0x0006, which the kernel copies to the HCI monitor channel (the one :mod:`sttkb.gadget.ble.hci_monitor`
reads for delivery tracking). By the time bluetoothd asks the agent for a passkey, both have passed.

:class:`SmpWatch` keeps the last feature exchange per connection; ``secure_connections()`` answers for the
newest pairing (one pairing at a time happens inside the window), None when it has not seen one.
"""

from __future__ import annotations

import struct
import threading

from sttkb.gadget.ble.delivery import MON_ACL_TX_PKT, MON_HEADER

MON_ACL_RX_PKT = 5
L2CAP_CID_SMP = 0x0006
SMP_PAIRING_REQUEST = 0x01
SMP_PAIRING_RESPONSE = 0x02
AUTH_REQ_SC = 0x08
ACL_CONTINUATION = 0x1


class SmpWatch:
    """Feed it HCI monitor frames of controller ``index``; see the module doc."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.trusted = True
        self._lock = threading.Lock()
        self._exchanges: dict[int, dict[int, bool]] = {}   # handle -> {SMP code: SC bit}
        self._newest: int | None = None

    def feed(self, frame: bytes) -> None:
        """One frame as read from the monitor socket (6-byte header + payload)."""
        if len(frame) < MON_HEADER.size:
            return
        opcode, index, length = MON_HEADER.unpack_from(frame)
        if index != self.index or opcode not in (MON_ACL_TX_PKT, MON_ACL_RX_PKT):
            return
        acl = frame[MON_HEADER.size:MON_HEADER.size + length]
        if len(acl) < 4 + 4 + 4:
            return
        handle_flags, _ = struct.unpack_from("<HH", acl)
        if (handle_flags >> 12) & 0x3 == ACL_CONTINUATION:
            return  # SMP PDUs are a few bytes: never fragmented
        _, cid = struct.unpack_from("<HH", acl, 4)
        code = acl[8]
        if cid != L2CAP_CID_SMP or code not in (SMP_PAIRING_REQUEST, SMP_PAIRING_RESPONSE):
            return
        handle = handle_flags & 0x0FFF
        sc = bool(acl[8 + 3] & AUTH_REQ_SC)
        with self._lock:
            exchange = self._exchanges.setdefault(handle, {})
            if code == SMP_PAIRING_REQUEST:
                exchange.clear()    # a new pairing on this link
            exchange[code] = sc
            self._newest = handle

    def distrust(self, why: str) -> None:
        """The monitor lost frames: what was seen no longer proves anything."""
        with self._lock:
            self.trusted = False

    def secure_connections(self) -> bool | None:
        """True/False for the newest pairing's feature exchange; None when none was seen whole (or frames were
        lost)."""
        with self._lock:
            if not self.trusted or self._newest is None:
                return None
            exchange = self._exchanges.get(self._newest, {})
            if SMP_PAIRING_REQUEST not in exchange or SMP_PAIRING_RESPONSE not in exchange:
                return None
            return exchange[SMP_PAIRING_REQUEST] and exchange[SMP_PAIRING_RESPONSE]

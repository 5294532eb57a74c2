"""Which radio did a host just pair over? Read from the HCI monitor (pure logic), for ``[bluetooth] mode = "auto"``.

With both keyboards on one dual-mode adapter, bluetoothd reports a new bond (Device1.Bonded) the same way whether
the host paired over LE or over BR/EDR (BlueZ 5.66's Device1 has no bearer property). The controller says it: a
BR/EDR pairing, legacy or Secure Simple Pairing, always ends with an HCI Link Key Notification event carrying the
host's BR/EDR address (Core spec, Vol 4, Part E, 7.7.24); an LE pairing runs SMP on an LE link and never produces
one. The kernel copies every HCI event to the monitor channel before it acts on it, so by the time bluetoothd's
signal reaches the keyboard, a :meth:`~sttkb.gadget.ble.hci_monitor.HciMonitor.sync` has fed the event here.
The mark lasts as long as that BR/EDR link (HCI Connection Complete names the link's handle and address,
Disconnection Complete ends it): the same host may later pair again, over LE.

(A host that pairs over LE with Secure Connections may derive a BR/EDR key from it, and the other way round: no
Link Key Notification comes from such a derived key, so the radio the host actually paired over is what counts.)
"""

from __future__ import annotations

import threading

from sttkb.gadget.ble.delivery import EVT_DISCONNECTION_COMPLETE, MON_EVENT_PKT, MON_HEADER
from sttkb.gadget.bt_classic.interrupt import EVT_CONNECTION_COMPLETE
from sttkb.gadget.bt_classic.l2cap import bd_address

EVT_LINK_KEY_NOTIFICATION = 0x18
LINK_KEY_PARAMS = 6 + 16 + 1   # BD_ADDR, Link_Key, Key_Type


class BearerWatch:
    """Feed it HCI monitor frames of controller ``index``; :meth:`radio_of` says how a host paired."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.trusted = True
        self._lock = threading.Lock()
        self._classic: set[str] = set()     # BR/EDR addresses that got a link key on the link that is up
        self._links: dict[int, str] = {}     # BR/EDR connection handle -> address

    def feed(self, frame: bytes) -> None:
        """One frame as read from the monitor socket (6-byte header + payload)."""
        if len(frame) < MON_HEADER.size:
            return
        opcode, index, length = MON_HEADER.unpack_from(frame)
        if index != self.index or opcode != MON_EVENT_PKT:
            return
        event = frame[MON_HEADER.size:MON_HEADER.size + length]
        if len(event) < 2:
            return
        code, params = event[0], event[2:]
        with self._lock:
            if code == EVT_LINK_KEY_NOTIFICATION and len(params) >= LINK_KEY_PARAMS:
                self._classic.add(bd_address(params[:6]))
            elif code == EVT_CONNECTION_COMPLETE and len(params) >= 9 and params[0] == 0:
                self._links[int.from_bytes(params[1:3], "little") & 0x0FFF] = bd_address(params[3:9])
            elif code == EVT_DISCONNECTION_COMPLETE and len(params) >= 3 and params[0] == 0:
                address = self._links.pop(int.from_bytes(params[1:3], "little") & 0x0FFF, None)
                if address is not None:
                    self._classic.discard(address)

    def distrust(self, why: str) -> None:
        """The monitor lost frames: a missing Link Key Notification no longer proves an LE pairing."""
        with self._lock:
            self.trusted = False

    def radio_of(self, address: str) -> str | None:
        """"classic" when ``address`` got a BR/EDR link key on the BR/EDR link that is up now (or, with no
        Connection Complete seen for it, since the watch started), else "le"; None when frames were lost."""
        with self._lock:
            if address.upper() in self._classic:
                return "classic"
            return "le" if self.trusted else None

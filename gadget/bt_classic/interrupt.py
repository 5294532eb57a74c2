"""Which outgoing frames are the keyboard's input reports on Bluetooth Classic, for the delivery tracker
(:class:`sttkb.gadget.ble.delivery.DeliveryTracker`, which serves both radios). Pure: no I/O.

An input report leaves as one L2CAP basic-mode frame on the interrupt channel: length, the host's channel ID, then
the HIDP message ``0xA1`` [+ boot report ID 1] + the 8 bytes (:func:`sttkb.gadget.bt_classic.hidp.input_frame`).
The control channel can carry the same bytes (a GET_REPORT answer), so only frames on the interrupt channel's
ACL link and destination channel ID count: the transport names them (:meth:`InterruptChannel.use`, from
:func:`sttkb.gadget.bt_classic.l2cap.channel_ids`) before the first report of each connection. A new BR/EDR
ACL link is an HCI Connection Complete.
"""

from __future__ import annotations

import struct

from sttkb.gadget.bt_classic.hidp import BOOT_KEYBOARD_REPORT_ID, INPUT_HEADER
from sttkb.gadget.reports import REPORT_LENGTH

EVT_CONNECTION_COMPLETE = 0x03
LINK_TYPE_ACL = 0x01


class InterruptChannel:
    """The interrupt channel's input reports, as the delivery tracker's ``frames``."""

    def __init__(self) -> None:
        self.channel: tuple[int, int] | None = None
        """(ACL connection handle, the host's channel ID) of the interrupt channel the reports go out on."""

    def use(self, handle: int, cid: int) -> None:
        self.channel = (handle, cid)

    def reports(self, handle: int, l2cap_frame: bytes) -> tuple[list[bytes], bool]:
        if len(l2cap_frame) < 4 or self.channel != (handle, struct.unpack_from("<H", l2cap_frame, 2)[0]):
            return [], False
        message = l2cap_frame[4:]
        if not message or message[0] != INPUT_HEADER:
            return [], False
        body = message[1:]
        if len(body) == REPORT_LENGTH + 1 and body[0] == BOOT_KEYBOARD_REPORT_ID:
            body = body[1:]
        return ([bytes(body)] if len(body) == REPORT_LENGTH else []), False

    def is_connection(self, event: bytes) -> bool:
        """A successful HCI Connection Complete for an ACL link (status, handle, address, link type follow)."""
        return (len(event) >= 12 and event[0] == EVT_CONNECTION_COMPLETE and event[2] == 0
                and event[11] == LINK_TYPE_ACL)

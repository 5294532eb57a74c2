"""The Bluetooth Classic keyboard's pure parts: the HID SDP record (read back as BlueZ's XML), the host's HIDP
transactions and the keyboard's answers, and the framing of input reports — checked against exact bytes from
the HID Profile 1.1 message layouts. The real bluetoothd and kernel are in test_classic_vm.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from sttkb.gadget.bt_classic import hidp
from sttkb.gadget.bt_classic.sdp_record import HidRecord, record_xml
from sttkb.gadget.reports import ALL_KEYS_UP, REPORT_DESCRIPTOR, key_report

A = key_report(0x02, 0x04)   # Shift + a


def parse(xml: str) -> dict[int, object]:
    """BlueZ's SDP XML back to plain values: ints, ('uuid', n), str, bytes (hex text), bool, lists."""
    def value(el: ET.Element):
        if el.tag == "sequence":
            return [value(c) for c in el]
        if el.tag == "boolean":
            assert el.get("value") in ("true", "false")
            return el.get("value") == "true"
        if el.tag == "uuid":
            return ("uuid", int(el.get("value"), 16))
        if el.tag in ("uint8", "uint16"):
            n = int(el.get("value"), 16)
            assert n < (256 if el.tag == "uint8" else 65536)
            return (el.tag, n)
        if el.tag == "text":
            return bytes.fromhex(el.get("value")) if el.get("encoding") == "hex" else el.get("value")
        raise AssertionError(f"unexpected element {el.tag}")
    root = ET.fromstring(xml)
    assert root.tag == "record"
    out = {}
    for attr in root:
        assert attr.tag == "attribute" and len(attr) == 1
        out[int(attr.get("id"), 16)] = value(attr[0])
    return out


def test_sdp_record_is_a_boot_keyboard_with_the_usb_report_descriptor():
    rec = parse(record_xml(HidRecord(name="Desk <sttkb> & co")))
    assert rec[0x0001] == [("uuid", 0x1124)]                                    # HID service class
    assert rec[0x0004] == [[("uuid", 0x0100), ("uint16", 0x11)], [("uuid", 0x0011)]]        # control: PSM 17
    assert rec[0x000D] == [[[("uuid", 0x0100), ("uint16", 0x13)], [("uuid", 0x0011)]]]      # interrupt: PSM 19
    assert rec[0x0009] == [[("uuid", 0x1124), ("uint16", 0x0101)]]              # HID profile 1.1
    assert rec[0x0005] == [("uuid", 0x1002)]
    assert rec[0x0006] == [("uint16", 0x656E), ("uint16", 0x006A), ("uint16", 0x0100)]
    assert rec[0x0100] == "Desk <sttkb> & co"                                   # escaped, read back exactly
    assert rec[0x0201] == ("uint16", 0x0111)
    assert rec[0x0202] == ("uint8", 0x40)                                       # keyboard
    assert rec[0x0203] == ("uint8", 0)
    assert rec[0x0206] == [[("uint8", 0x22), REPORT_DESCRIPTOR]]                # the same descriptor as USB/BLE
    assert rec[0x0207] == [[("uint16", 0x0409), ("uint16", 0x0100)]]
    for attr in (0x0204, 0x0205, 0x020D, 0x020E):  # virtual cable, reconnect initiate, normally connectable, boot
        assert rec[attr] is True, hex(attr)
    assert rec[0x0209] is False                                                 # not battery powered
    assert 0x0000 not in rec, "the record handle is bluetoothd's to assign"


def test_sdp_record_attributes_are_in_id_order():
    ids = [int(a.get("id"), 16) for a in ET.fromstring(record_xml())]
    assert ids == sorted(ids)


# ---- HIDP ------------------------------------------------------------------------------------------------


def test_input_reports_in_report_and_boot_protocol():
    state = hidp.HidState()
    assert hidp.input_frame(state, A) == bytes([0xA1]) + A
    state.protocol = hidp.PROTOCOL_BOOT
    assert hidp.input_frame(state, A) == bytes([0xA1, 0x01]) + A   # boot reports carry the keyboard's ID 1
    with pytest.raises(ValueError):
        hidp.input_frame(state, b"\x00" * 7)


@pytest.mark.parametrize("message, reply, event, protocol", [
    (b"\x70", b"\x00", "protocol", hidp.PROTOCOL_BOOT),        # SET_PROTOCOL boot -> HANDSHAKE SUCCESSFUL
    (b"\x71", b"\x00", "protocol", hidp.PROTOCOL_REPORT),      # SET_PROTOCOL report
    (b"\x60", b"\xa0\x01", None, hidp.PROTOCOL_REPORT),        # GET_PROTOCOL -> DATA(other) + mode
    (b"\x90\x20", b"\x00", None, hidp.PROTOCOL_REPORT),        # SET_IDLE (deprecated, still answered)
    (b"\x80", b"\xa0\x00", None, hidp.PROTOCOL_REPORT),        # GET_IDLE
    (b"\x53\x00", b"\x02", None, hidp.PROTOCOL_REPORT),        # SET_REPORT feature: no such report
    (b"\x43", b"\x02", None, hidp.PROTOCOL_REPORT),            # GET_REPORT feature: no such report
    (b"\x20", b"\x03", None, hidp.PROTOCOL_REPORT),            # reserved transaction type: unsupported
    (b"\xb1\x00", b"\x03", None, hidp.PROTOCOL_REPORT),        # DATC (deprecated): unsupported
    (b"\x00", None, None, hidp.PROTOCOL_REPORT),               # a HANDSHAKE from the host: nothing to answer
    (b"", None, None, hidp.PROTOCOL_REPORT),
])
def test_control_transactions(message, reply, event, protocol):
    state = hidp.HidState()
    answer = hidp.handle_control(state, message)
    assert (answer.reply, answer.event, state.protocol) == (reply, event, protocol)


def test_set_report_output_sets_the_leds_in_both_protocols():
    state = hidp.HidState()
    assert hidp.handle_control(state, b"\x52\x02") == hidp.Answer(b"\x00", "leds")
    assert state.leds == 0x02
    state.protocol = hidp.PROTOCOL_BOOT
    assert hidp.handle_control(state, b"\x52\x01\x03") == hidp.Answer(b"\x00", "leds")   # with the boot ID
    assert state.leds == 0x03
    assert hidp.handle_control(state, b"\x52").reply == b"\x04"                          # no LED byte
    assert state.leds == 0x03


def test_get_report_answers_the_last_input_and_the_leds():
    state = hidp.HidState(leds=0x02, last_input=A)
    assert hidp.handle_control(state, b"\x41").reply == b"\xa1" + A
    assert hidp.handle_control(state, b"\x42").reply == b"\xa2\x02"
    assert hidp.handle_control(state, b"\x49\x03\x00").reply == b"\xa1" + A[:3]   # size follows: truncated to 3
    assert hidp.handle_control(state, b"\x41\x01").reply == b"\x02"               # report mode has no report IDs
    assert hidp.handle_control(state, b"\x49\x03").reply == b"\x04"               # size flag without the size
    state.protocol = hidp.PROTOCOL_BOOT
    assert hidp.handle_control(state, b"\x41\x01").reply == b"\xa1\x01" + A        # boot: ID 1 asked and given
    assert hidp.handle_control(state, b"\x41\x02").reply == b"\x02"


@pytest.mark.parametrize("message, event", [(b"\x15", "unplug"), (b"\x13", "suspend"), (b"\x14", "resume"),
                                            (b"\x11", "reset"), (b"\x12", "reset"), (b"\x10", None)])
def test_hid_control_operations_get_no_answer(message, event):
    state = hidp.HidState(protocol=hidp.PROTOCOL_BOOT, suspended=True)
    answer = hidp.handle_control(state, message)
    assert answer.reply is None and answer.event == event
    if event == "reset":
        assert state.protocol == hidp.PROTOCOL_REPORT, "a reset returns to the default protocol"


def test_output_reports_on_the_interrupt_channel():
    state = hidp.HidState()
    assert hidp.handle_interrupt(state, b"\xa2\x02") == "leds" and state.leds == 0x02
    assert hidp.handle_interrupt(state, b"\xa2\x01\x00") == "leds" and state.leds == 0x00   # with the boot ID
    assert hidp.handle_interrupt(state, b"\xa1" + ALL_KEYS_UP) is None and state.leds == 0x00
    assert hidp.handle_interrupt(state, b"\xa2") is None


# ---- paging check (Remote Name Request) ---------------------------------------------------------------------

def test_name_request_packet():
    from sttkb.gadget.bt_classic.page import name_request
    assert name_request("00:AA:01:01:00:24") == bytes.fromhex("01 1904 0a 240001 01aa00 02 00 0000")


def test_name_request_answers():
    from sttkb.gadget.bt_classic.page import parse_event
    me, other = "00:AA:01:01:00:24", "00:AA:01:01:00:25"
    addr = bytes.fromhex("240001 01aa00")
    assert parse_event(bytes.fromhex("04 0f 04 00 01 1904"), me) is None            # command accepted: wait
    assert parse_event(bytes.fromhex("04 0f 04 0c 01 1904"), me) is False           # command refused
    assert parse_event(bytes.fromhex("04 0f 04 0c 01 0504"), me) is None            # someone else's command
    name = b"laptop".ljust(248, b"\0")
    assert parse_event(bytes([0x04, 0x07, 255, 0x00]) + addr + name, me) is True    # the host answered
    assert parse_event(bytes([0x04, 0x07, 255, 0x04]) + addr + name, me) is False   # Page Timeout
    assert parse_event(bytes([0x04, 0x07, 255, 0x00]) + addr + name, other) is None
    assert parse_event(b"\x02\x00", me) is None

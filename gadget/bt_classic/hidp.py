"""The Bluetooth HID protocol (HIDP) as a keyboard speaks it: the host's transactions on the control channel and
their answers, output reports (LEDs) on the interrupt channel, and the framing of input reports. Pure: no I/O.

Every HIDP message starts with one header byte: the transaction type in the high nibble, a parameter in the low
one (HID Profile 1.1). A keyboard answers GET_/SET_ requests on the control channel (a HANDSHAKE result code or
a DATA message), takes HID_CONTROL operations without an answer (VIRTUAL_CABLE_UNPLUG: the host removed the
bond), and sends its input reports as DATA|Input (0xA1) on the interrupt channel. In boot protocol mode every
report carries the boot report ID (1 for a keyboard) before the 8 bytes; in report mode the report descriptor
has no report IDs, so the 8 bytes follow the header directly. The host's LED byte comes as DATA|Output (0xA2) on
the interrupt channel or as SET_REPORT(Output) on the control channel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sttkb.gadget.reports import ALL_KEYS_UP, REPORT_LENGTH

# Transaction types (high nibble of the header).
HANDSHAKE = 0x0
HID_CONTROL = 0x1
GET_REPORT = 0x4
SET_REPORT = 0x5
GET_PROTOCOL = 0x6
SET_PROTOCOL = 0x7
GET_IDLE = 0x8   # deprecated in HID 1.1; still answered
SET_IDLE = 0x9   # deprecated in HID 1.1; still answered
DATA = 0xA

# Report types (low two bits of GET_REPORT / SET_REPORT / DATA).
REPORT_OTHER = 0
REPORT_INPUT = 1
REPORT_OUTPUT = 2
REPORT_FEATURE = 3
GET_REPORT_SIZE_FOLLOWS = 0x08

# HANDSHAKE result codes.
SUCCESSFUL = 0x0
NOT_READY = 0x1
ERR_INVALID_REPORT_ID = 0x2
ERR_UNSUPPORTED_REQUEST = 0x3
ERR_INVALID_PARAMETER = 0x4
ERR_UNKNOWN = 0xE

# HID_CONTROL operations.
CONTROL_NOP = 0x0
CONTROL_HARD_RESET = 0x1
CONTROL_SOFT_RESET = 0x2
CONTROL_SUSPEND = 0x3
CONTROL_EXIT_SUSPEND = 0x4
CONTROL_VIRTUAL_CABLE_UNPLUG = 0x5

PROTOCOL_BOOT = 0
PROTOCOL_REPORT = 1
BOOT_KEYBOARD_REPORT_ID = 1

INPUT_HEADER = (DATA << 4) | REPORT_INPUT     # 0xA1
OUTPUT_HEADER = (DATA << 4) | REPORT_OUTPUT   # 0xA2


def header(kind: int, param: int = 0) -> int:
    return (kind << 4) | (param & 0x0F)


def handshake(result: int) -> bytes:
    return bytes([header(HANDSHAKE, result)])


@dataclass
class HidState:
    """What one connection's host has set, and the last input report sent (GET_REPORT answers it)."""

    protocol: int = PROTOCOL_REPORT
    """The protocol mode: a device starts in report mode on every connection."""
    leds: int = 0
    idle: int = 0
    suspended: bool = False
    last_input: bytes = ALL_KEYS_UP


@dataclass(frozen=True)
class Answer:
    """What to do with one control message: ``reply`` (bytes for the control channel, or None) and ``event``
    for the link ("leds", "protocol", "unplug", "suspend", "resume", "reset", or None)."""

    reply: bytes | None = None
    event: str | None = None


def _boot_id(state: HidState) -> bytes:
    return bytes([BOOT_KEYBOARD_REPORT_ID]) if state.protocol == PROTOCOL_BOOT else b""


def input_frame(state: HidState, report: bytes) -> bytes:
    """The interrupt-channel message for one 8-byte input report in the connection's protocol mode."""
    if len(report) != REPORT_LENGTH:
        raise ValueError(f"a boot keyboard report has {REPORT_LENGTH} bytes, got {len(report)}")
    return bytes([INPUT_HEADER]) + _boot_id(state) + report


def _report_id_ok(state: HidState, report_id: bytes) -> bool:
    """A report ID in a request: none in report mode (the descriptor has none), 1 (or none) in boot mode."""
    if not report_id:
        return True
    return state.protocol == PROTOCOL_BOOT and report_id == bytes([BOOT_KEYBOARD_REPORT_ID])


def _led_byte(state: HidState, payload: bytes) -> int | None:
    """The LED byte of an output report's payload ([ID] + LEDs), or None if it is not one."""
    if len(payload) == 1:
        return payload[0]
    if len(payload) == 2 and payload[0] in (0, BOOT_KEYBOARD_REPORT_ID):
        return payload[1]
    return None


def handle_control(state: HidState, message: bytes) -> Answer:
    """Answer one message the host sent on the control channel, updating ``state``."""
    if not message:
        return Answer()
    kind, param, body = message[0] >> 4, message[0] & 0x0F, message[1:]
    if kind == HANDSHAKE:
        return Answer()   # hosts do not send these to a device; nothing to answer
    if kind == HID_CONTROL:
        if param == CONTROL_VIRTUAL_CABLE_UNPLUG:
            return Answer(event="unplug")
        if param == CONTROL_SUSPEND:
            state.suspended = True
            return Answer(event="suspend")
        if param == CONTROL_EXIT_SUSPEND:
            state.suspended = False
            return Answer(event="resume")
        if param in (CONTROL_HARD_RESET, CONTROL_SOFT_RESET):
            state.protocol, state.idle, state.suspended = PROTOCOL_REPORT, 0, False
            return Answer(event="reset")
        return Answer()   # NOP and reserved operations: no answer
    if kind == GET_REPORT:
        return _get_report(state, param, body)
    if kind == SET_REPORT:
        report_type = param & 0x03
        if report_type == REPORT_OUTPUT:
            leds = _led_byte(state, body)
            if leds is None:
                return Answer(handshake(ERR_INVALID_PARAMETER))
            state.leds = leds
            return Answer(handshake(SUCCESSFUL), "leds")
        if report_type == REPORT_FEATURE:
            return Answer(handshake(ERR_INVALID_REPORT_ID))   # the keyboard has no feature reports
        return Answer(handshake(ERR_INVALID_PARAMETER))
    if kind == GET_PROTOCOL:
        return Answer(bytes([header(DATA, REPORT_OTHER), state.protocol]))
    if kind == SET_PROTOCOL:
        state.protocol = param & 0x01
        return Answer(handshake(SUCCESSFUL), "protocol")
    if kind == GET_IDLE:
        return Answer(bytes([header(DATA, REPORT_OTHER), state.idle]))
    if kind == SET_IDLE:
        if len(body) != 1:
            return Answer(handshake(ERR_INVALID_PARAMETER))
        state.idle = body[0]
        return Answer(handshake(SUCCESSFUL))
    return Answer(handshake(ERR_UNSUPPORTED_REQUEST))


def _get_report(state: HidState, param: int, body: bytes) -> Answer:
    report_type = param & 0x03
    size = None
    if param & GET_REPORT_SIZE_FOLLOWS:
        if len(body) < 2:
            return Answer(handshake(ERR_INVALID_PARAMETER))
        (size,) = struct.unpack("<H", body[-2:])
        body = body[:-2]
    if len(body) > 1:
        return Answer(handshake(ERR_INVALID_PARAMETER))
    if not _report_id_ok(state, body):
        return Answer(handshake(ERR_INVALID_REPORT_ID))
    if report_type == REPORT_INPUT:
        data = _boot_id(state) + state.last_input
    elif report_type == REPORT_OUTPUT:
        data = _boot_id(state) + bytes([state.leds])
    elif report_type == REPORT_FEATURE:
        return Answer(handshake(ERR_INVALID_REPORT_ID))
    else:
        return Answer(handshake(ERR_INVALID_PARAMETER))
    if size is not None:
        data = data[:size]
    return Answer(bytes([header(DATA, report_type)]) + data)


def handle_interrupt(state: HidState, message: bytes) -> str | None:
    """Take one message the host sent on the interrupt channel: "leds" if it set the LEDs, else None."""
    if len(message) >= 2 and message[0] == OUTPUT_HEADER:
        leds = _led_byte(state, message[1:])
        if leds is not None:
            state.leds = leds
            return "leds"
    return None

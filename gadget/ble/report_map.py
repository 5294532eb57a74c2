"""A small HID report descriptor reader: enough to say which reports a Report Map declares. Pure functions.

Used by the HID service (which report ID goes in each Report Reference descriptor) and by `sttkb check` (is
this a keyboard, does it have the LED output report, how long are its reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Main items (tag << 4 | type 0), global and local items we track.
_INPUT, _OUTPUT, _FEATURE, _COLLECTION, _END_COLLECTION = 0x8, 0x9, 0xB, 0xA, 0xC
_USAGE_PAGE, _REPORT_SIZE, _REPORT_ID, _REPORT_COUNT = 0x0, 0x7, 0x8, 0x9
_USAGE = 0x0

USAGE_PAGE_GENERIC_DESKTOP = 0x01
USAGE_PAGE_KEYBOARD = 0x07
USAGE_PAGE_LEDS = 0x08
USAGE_KEYBOARD = 0x06


@dataclass
class ReportMapSummary:
    """What a report descriptor declares. Sizes are in bits, per report ID (0 = no report IDs)."""

    input_bits: dict[int, int] = field(default_factory=dict)
    output_bits: dict[int, int] = field(default_factory=dict)
    feature_bits: dict[int, int] = field(default_factory=dict)
    usage_pages: set[int] = field(default_factory=set)
    application_usages: list[tuple[int, int]] = field(default_factory=list)  # (page, usage) of top collections
    led_output: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def is_keyboard(self) -> bool:
        return (USAGE_PAGE_GENERIC_DESKTOP, USAGE_KEYBOARD) in self.application_usages

    def input_report_ids(self) -> list[int]:
        return sorted(self.input_bits)

    def output_report_ids(self) -> list[int]:
        return sorted(self.output_bits)

    def describe(self) -> str:
        """One line for humans: 'keyboard; input id 0: 8 bytes; output id 0: 1 byte (LEDs)'."""
        parts = ["keyboard" if self.is_keyboard else "not a keyboard collection"]
        for rid, bits in sorted(self.input_bits.items()):
            parts.append(f"input report id {rid}: {_bytes(bits)}")
        for rid, bits in sorted(self.output_bits.items()):
            parts.append(f"output report id {rid}: {_bytes(bits)}" + (" (LEDs)" if self.led_output else ""))
        for rid, bits in sorted(self.feature_bits.items()):
            parts.append(f"feature report id {rid}: {_bytes(bits)}")
        return "; ".join(parts)


def _bytes(bits: int) -> str:
    n = (bits + 7) // 8
    return f"{n} byte" + ("" if n == 1 else "s")


def parse_report_map(data: bytes) -> ReportMapSummary:
    """Walk the short items of a HID report descriptor and sum report sizes per type and report ID.

    Malformed input never raises: problems are listed in ``errors``.
    """
    out = ReportMapSummary()
    usage_page = 0
    report_size = report_count = 0
    report_id = 0
    depth = 0
    last_usage: int | None = None
    i = 0
    while i < len(data):
        prefix = data[i]
        if prefix == 0xFE:  # long item: skip
            if i + 1 >= len(data):
                out.errors.append("truncated long item")
                break
            i += 3 + data[i + 1]
            continue
        size = (0, 1, 2, 4)[prefix & 0x03]
        kind = (prefix >> 2) & 0x03
        tag = prefix >> 4
        if i + 1 + size > len(data):
            out.errors.append(f"item at byte {i} runs past the end")
            break
        value = int.from_bytes(data[i + 1:i + 1 + size], "little")
        i += 1 + size
        if kind == 1:  # global
            if tag == _USAGE_PAGE:
                usage_page = value
                out.usage_pages.add(value)
            elif tag == _REPORT_SIZE:
                report_size = value
            elif tag == _REPORT_COUNT:
                report_count = value
            elif tag == _REPORT_ID:
                if value == 0:
                    out.errors.append("report ID 0 is reserved")
                report_id = value
        elif kind == 2:  # local
            if tag == _USAGE:
                last_usage = value
        elif kind == 0:  # main
            bits = report_size * report_count
            if tag == _INPUT:
                out.input_bits[report_id] = out.input_bits.get(report_id, 0) + bits
            elif tag == _OUTPUT:
                out.output_bits[report_id] = out.output_bits.get(report_id, 0) + bits
                if usage_page == USAGE_PAGE_LEDS and not value & 0x01:  # data, not constant padding
                    out.led_output = True
            elif tag == _FEATURE:
                out.feature_bits[report_id] = out.feature_bits.get(report_id, 0) + bits
            elif tag == _COLLECTION:
                if depth == 0 and value == 0x01 and last_usage is not None:
                    out.application_usages.append((usage_page, last_usage))
                depth += 1
            elif tag == _END_COLLECTION:
                depth -= 1
                if depth < 0:
                    out.errors.append("End Collection without Collection")
                    depth = 0
            last_usage = None
    if depth:
        out.errors.append(f"{depth} collection(s) not closed")
    if 0 in out.input_bits and len(out.input_bits) > 1:
        out.errors.append("reports both with and without report IDs")
    return out

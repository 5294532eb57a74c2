"""The USB keyboard end to end through a real Linux kernel (qemu, stock Debian kernel, dummy_hcd).

One boot runs every case (tests/gadget/vm_usb_guest.py): the project's own configfs gadget setup, the typist
writing /dev/hidg0, and the host side read from /dev/input/event* by a separate process and decoded with
xkbcommon in the same layout (the unplug case reads /dev/hidraw*, see its docstring). Numbers are printed (run with -s to see them); they are measured under software
emulation (TCG) and are far below what real hardware does.
"""

from __future__ import annotations

import difflib
import json

import pytest

from tests.vm.harness import require_vm, run_in_vm

pytestmark = pytest.mark.vm

CASES = [
    {"kind": "pangram", "layout": "us"},
    {"kind": "pangram", "layout": "gb"},
    {"kind": "pangram", "layout": "de"},
    {"kind": "pangram", "layout": "fr"},
    {"kind": "caps", "layout": "us"},
    {"kind": "caps", "layout": "de"},
    {"kind": "unplug", "unplugs": 3, "repeat": 6, "delay": 0.01},  # the default pace: see the test
    {"kind": "throughput", "chars": 2000, "delay": 0},
    {"kind": "bench", "chars": 2000, "delay": 0},
    {"kind": "bench", "chars": 2000, "delay": 0, "confirm": False},
    {"kind": "bench", "chars": 300, "delay": 0.002},
    {"kind": "bench", "chars": 300, "delay": 0.005},
    {"kind": "bench", "chars": 300, "delay": 0.010},
]

SCRIPT = ".venv/bin/python tests/gadget/vm_usb_guest.py"


@pytest.fixture(scope="module")
def vm_run():
    require_vm()
    res = run_in_vm(SCRIPT, modules=["dummy_hcd", "libcomposite", "usb_f_hid", "usbhid", "hid_generic", "evdev"],
                    env={"USB_CASES": json.dumps(CASES)}, timeout=400)
    assert res.returncode == 0, res.console[-4000:]
    data = json.loads((res.outdir / "usb.json").read_text())
    assert "error" not in data, data["error"]
    data["boot_seconds"] = res.seconds
    print(f"\nUSB VM run: {res.seconds:.1f} s wall for boot + all cases")
    return data


def case(data, **match):
    for c in data["cases"]:
        if all(c["case"].get(k) == v for k, v in match.items()):
            assert "error" not in c, c["error"]
            return c
    raise AssertionError(f"no case {match}")


def test_gadget_setup_enumerates_as_a_boot_keyboard(vm_run):
    st = vm_run["status"]
    assert st["state"] == "configured" and st["udc"] == "dummy_udc.0"
    assert st["functions"] == ["hid.usb0"] and st["hidg"] == "/dev/hidg0"
    assert vm_run["up_again"] == "dummy_udc.0"  # up twice is fine
    assert vm_run["after_down_exists"] is False  # down twice is fine
    assert len(vm_run["serial"]) == 16


def test_cli_gadget_up_status_down(vm_run):
    out = vm_run["cli"]
    assert "USB gadget clitest up on dummy_udc.0" in out
    assert "bound to dummy_udc.0, state configured" in out
    assert "USB gadget clitest removed" in out
    assert out.strip().endswith("USB gadget: not set up (run `sttkb gadget up`)\nrc=0")


@pytest.mark.parametrize("layout", ["us", "gb", "de", "fr"])
def test_pangram_typed_equals_input(vm_run, layout):
    c = case(vm_run, kind="pangram", layout=layout)
    assert c["typed"] == c["expected"]
    assert c["expected"] == c["input"]  # nothing had to be transliterated in these layouts
    assert c["held_at_end"] == []


@pytest.mark.parametrize("layout", ["us", "de"])
def test_caps_lock_on_at_the_host_text_still_right(vm_run, layout):
    c = case(vm_run, kind="caps", layout=layout)
    assert c["leds"] & 0x02, "the host's Caps Lock LED report did not reach /dev/hidg0"
    assert c["typed"] == c["expected"]


def unplug_differences(expected: str, typed: str) -> list[tuple[str, str, str]]:
    """The edits that turn ``expected`` into ``typed`` as (kind, expected part, typed part)."""
    sm = difflib.SequenceMatcher(None, expected, typed, autojunk=False)
    return [(op, expected[i1:i2], typed[j1:j2]) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal"]


def test_unplug_mid_text_then_replug_loses_nothing(vm_run):
    """Three unbind/rebind cycles while keys are arriving. The host side reads /dev/hidraw* here (it keeps
    reports received before the unplug readable; evdev drops a slow reader's unread events) and decodes the
    reports with xkbcommon in the same layout.

    Nothing may be lost. The one documented limit (docs/usb.md): the kernel does not tell userspace whether the
    single report in flight at the instant of an unplug reached the host (f_hid completes it the same way
    either way), and the transport then counts it as not delivered and sends it again — so at most one
    character per unplug may repeat, and only as an exact repeat of its neighbour. Seen in about one run in
    three under software emulation on a loaded machine.

    The text goes at the product's default pace (10 ms per report): hidraw keeps only 64 reports per reader, and
    at 2 ms a reader starved by a loaded machine lost reports all over the text (the host kernel's own input path
    does not depend on a userspace reader keeping up)."""
    c = case(vm_run, kind="unplug")
    assert c["connects"] == 4, "the host did not see the keyboard go and come back three times"
    assert "paused" in c["paused_states"]
    assert c["held_at_end"] == []
    diffs = unplug_differences(c["expected"], c["typed"])
    assert all(kind == "insert" for kind, _, _ in diffs), f"characters lost or changed: {diffs}"
    assert len(diffs) <= c["case"]["unplugs"], f"more repeats than unplugs: {diffs}"
    typed = c["typed"]
    for _, _, extra in diffs:
        assert len(extra) == 1, f"more than one character repeated at an unplug: {diffs}"
    # each inserted character is a resent key press: it repeats a neighbour in the typed text
    sm = difflib.SequenceMatcher(None, c["expected"], typed, autojunk=False)
    for op, _, _, j1, _ in sm.get_opcodes():
        if op == "insert":
            neighbours = typed[max(j1 - 1, 0):j1] + typed[j1 + 1:j1 + 2]
            assert typed[j1] in neighbours, f"inserted {typed[j1]!r} is not a repeat: {diffs}"


def test_throughput_2000_chars_read_back_exactly(vm_run):
    c = case(vm_run, kind="throughput")
    assert c["typed"] == c["expected"] and len(c["expected"]) == 2000
    print(f"\n2000 chars typed and read back by a userspace reader: {c['chars_per_s']:.0f} chars/s "
          f"({c['reports']} reports, {c['seconds']:.1f} s; TCG emulation)")
    for b in [x for x in vm_run["cases"] if x["case"]["kind"] == "bench"]:
        assert b["idle"]
        print(f"into the kernel, pace {b['delay_ms']:.0f} ms, confirm={b['confirm_delivery']}: "
              f"{b['chars_per_s']:.0f} chars/s, {b['reports_per_s']:.0f} reports/s ({b['chars']} chars)")

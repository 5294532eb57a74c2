"""The Bluetooth Classic (BR/EDR) keyboard end to end in a real Linux kernel (qemu): real bluetoothd 5.66, two
dual-mode virtual controllers (`btvirt -l2`), the sttkb keyboard on hci0 and, on hci1, a Linux host as a laptop
is one: bluetoothd's own input plugin and the kernel's hidp turn the keyboard's reports into /dev/input/eventN.

One VM boot runs every stage in tests/bt_classic/vm/guest_classic.py. Nothing is mocked: inquiry, Secure Simple
Pairing (Just Works), the SDP record as the host's bluetoothd reads it, L2CAP with encryption, the HID
transactions of the host's kernel, and the reconnection the keyboard starts itself. The text read from the host's
input device (decoded with xkbcommon in the host layout) must equal the string the guest was asked to type.

How the VM differs from a box and a laptop, and why:
- One bluetoothd serves both controllers, so the host side's input plugin would also listen on the box's HID
  PSMs; tests/bt_classic/vm/hold_psms.py holds them on hci0 while bluetoothd starts (the box itself runs
  bluetoothd without that plugin, services/bluetooth).
- bluetoothd runs on the settings the box's generator writes for ``[bluetooth] mode = "classic"``
  (services/system-generators/sttkb-bluetooth-generator: the box's main.conf with ``ControllerMode = bredr``) and
  the keyboard is built by the factory from that mode, as the daemon does; plus ``ReverseServiceDiscovery =
  false`` in this boot's copy: with one bluetoothd the box side's reverse SDP browse would find the box's own HID
  record on the host's adapter too and connect its input plugin to the host.
- The host marks the keyboard trusted after pairing (as desktop settings do); otherwise the host side's
  authorization question would go to the box's agent, the one default agent of the shared bluetoothd.
"""

from __future__ import annotations

import pytest

from sttkb.gadget.bt_classic.sdp_record import HID_UUID
from tests.ble.vm.guest_e2e import TEXT_DE, TEXT_LONG, TEXT_US
from tests.ble.vm_boot import guest_result, need, require_bluez, stack_env
from tests.vm.harness import require_vm, run_in_vm

pytestmark = pytest.mark.vm

TEXTS = {"us": TEXT_US, "de": TEXT_DE}

HOLD = ("rm -f /run/sttkb-psm-held /run/sttkb-psm-release; "
        ".venv/bin/python -m tests.bt_classic.vm.hold_psms hci0 /run/sttkb-psm-held /run/sttkb-psm-release "
        ">$STTKB_VM_OUT/hold.log 2>&1 & echo $! >/run/sttkb-hold.pid; "
        "for _ in $(seq 150); do [ -e /run/sttkb-psm-held ] && break; sleep 0.1; done; [ -e /run/sttkb-psm-held ]")

GUEST = """\
# The box's bluetoothd settings for [bluetooth] mode = "classic", written by the box's own generator.
printf '[bluetooth]\\nmode = "classic"\\n' > /run/sttkb-classic.toml
STTKB=.venv/bin/sttkb STTKB_CONFIG=/run/sttkb-classic.toml STTKB_BLUETOOTHD_CONF=services/bluetooth/main.conf \\
    sh services/system-generators/sttkb-bluetooth-generator /run/sttkb-generator
export STTKB_BT_CONF=/run/sttkb-generator/sttkb-bluetoothd.conf
grep -q '^ControllerMode = bredr' "$STTKB_BT_CONF" || { echo "no BR/EDR settings from the generator" >&2; exit 3; }
tests/ble/vm/ble_stack.sh '' || exit 3
sleep 1   # bluetoothd has probed both adapters (its input plugin failed on hci0 only)
touch /run/sttkb-psm-release
while kill -0 "$(cat /run/sttkb-hold.pid)" 2>/dev/null; do sleep 0.1; done
.venv/bin/python -m tests.bt_classic.vm.guest_classic
rc=$?
cp /var/lib/bluetooth -r "$STTKB_VM_OUT/var-lib-bluetooth" 2>/dev/null
exit $rc
"""

CONF_SED = "s/^\\[General\\]/[General]\\nReverseServiceDiscovery = false/"


def boot_dual_mode(guest: str) -> dict:
    """One VM boot of ``guest`` with two dual-mode controllers, the box's HID PSMs held while bluetoothd starts and
    hidp loaded (also tests/bt_classic/test_both_radios_vm.py): the guest's result, with ``_kernel_oops``."""
    require_vm()
    require_bluez()
    res = run_in_vm(guest, modules=["hidp"], timeout=480,
                    env=stack_env(STTKB_BTVIRT_ARGS="-l2", STTKB_BT_CONF_SED=CONF_SED,
                                  STTKB_BT_BEFORE_BLUETOOTHD=HOLD))
    (res.outdir / "console.txt").write_text(res.console)
    data = guest_result(res)
    data["_kernel_oops"] = [line for line in res.console.splitlines() if "kernel BUG" in line or "Oops" in line]
    return data


@pytest.fixture(scope="module")
def vm():
    return boot_dual_mode(GUEST)


def test_host_finds_and_pairs_with_the_keyboard_over_br_edr(vm):
    need(vm, "paired")
    assert vm["registered.published"], "bluetoothd lists the HID service on the box's adapter"
    assert vm["discovered.name"] == "sttkb vm classic keyboard"
    assert vm["discovered.class"] & 0x1FFC == 0x0540, "Class of Device: peripheral, keyboard (services/bluetooth)"
    assert vm["paired.window_result"] == [True], "the pairing window reports the new host"
    assert vm["paired.window_open_after"] is False
    assert len(vm["paired.bonded"]) == 1
    assert HID_UUID in vm["paired.host_uuids"], "the host's SDP browse found the keyboard's HID record"


def test_host_kernel_makes_a_keyboard_from_the_record(vm):
    need(vm, "connected")
    assert vm["connected.ready"] and vm["connected.link_host"]
    assert vm["connected.event_node"], "the host's hidp made an input device named like the keyboard"


def test_host_caps_lock_led_reaches_the_keyboard(vm):
    need(vm, "leds")
    assert vm["leds.caps_on_seen"] and vm["leds.caps_off_seen"]


@pytest.mark.parametrize("layout", ["us", "de"])
def test_typed_text_is_exactly_the_input(vm, layout):
    need(vm, f"typed_{layout}")
    assert vm[f"typed_{layout}.idle"]
    assert vm[f"typed_{layout}.decoded"] == TEXTS[layout]


def test_keyboard_reconnects_by_itself_and_types_the_rest(vm):
    need(vm, "resume")
    assert vm["resume.paused"] and vm["resume.state_while_away"] == "paused"
    assert vm["resume.reconnects"] >= 1, "the keyboard, not the host, brought the link back"
    assert vm["resume.idle"], "the rest was typed after the reconnection"
    assert len(vm["resume.nodes"]) >= 2, "a new input device on the host after the reconnection"
    assert vm["resume.tracking"] and vm["resume.trusted"], "delivery tracking reads the guest kernel's monitor"
    assert vm["resume.decoded"] == TEXT_LONG, f"sent again: {vm['resume.resent_total']} report(s)"


def test_reports_lost_below_the_socket_go_again_after_the_host_adapter_was_switched_off(vm):
    """The host's adapter powers off mid-text: what the box's kernel or controller still held is lost with the
    ACL link, the HCI monitor shows which reports the controller completed, and the rest is sent again after the
    keyboard reconnected — the text arrives exactly, nothing doubled."""
    need(vm, "power_off")
    assert vm["power_off.paused"] and vm["power_off.host_scanning_again"]
    assert vm["power_off.reconnects"] >= 1 and vm["power_off.idle"]
    assert vm["power_off.tracking"] and vm["power_off.trusted"]
    assert vm["power_off.decoded"] == TEXT_LONG, (
        f"sent again: {vm['power_off.resent']} report(s); tracking while off: {vm['power_off.while_off']}")


def test_outside_the_window_a_forgotten_host_can_neither_find_nor_page_the_keyboard(vm):
    """With the bond gone on both sides and the window closed, the box answers neither inquiry nor paging: its
    bluetoothd keeps page scan on only for bonded hosts. (A stranger that did get a link would still get no HID
    channel: the link accepts bonded hosts only, tests/bt_classic/test_link.py and test_peripheral_mock.py.)"""
    need(vm, "stranger")
    assert vm["stranger.window_open"] is False
    assert vm["stranger.found"] is False, "not discoverable outside the window"
    assert vm["stranger.box_scan"] == [], "neither inquiry nor page scan with no bonded host"
    assert vm["stranger.link_host"] is None
    assert vm["stranger.bonded_after"] == []


def test_keyboard_closes_cleanly(vm):
    need(vm, "closed")
    assert vm["_kernel_oops"] == [], "the guest kernel oopsed"

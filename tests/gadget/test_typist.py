"""The typist against a host simulated with xkbcommon (VirtualTransport): queueing, pause/resume, cancel,
Caps Lock changes. The USB path through a real kernel is in test_usb_vm.py."""

from __future__ import annotations

import threading
import time

import pytest

from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.keymap import get_keymap
from sttkb.gadget.keystrokes import text_to_reports
from sttkb.gadget.reports import ALL_KEYS_UP
from sttkb.gadget.typist import Typist
from sttkb.gadget.virtual import VirtualTransport
from tests.polling import wait_for

TEXT = "Falsches Üben von Xylophonmusik quält jeden größeren Zwerg. @€ é ^ 0123456789"


def make(layout="us", key_delay_s=0.0, **kw):
    transport = VirtualTransport(layout, **kw)
    return Typist(transport, layout, key_delay_s=key_delay_s, retry_interval_s=0.01), transport


def test_type_text_returns_at_once_and_text_arrives_with_all_keys_up():
    typist, host = make("de", key_delay_s=0.02)       # typing it takes seconds (two reports per character)
    start = time.monotonic()
    typist.type_text(TEXT)
    assert time.monotonic() - start < 1.0
    assert typist.state == "typing"
    assert typist.wait_idle(60)
    assert host.text == TEXT
    assert host.reports[-1] == ALL_KEYS_UP
    assert typist.state == "idle"
    typist.close()
    assert typist.state == "offline" and host.closed


def test_several_texts_queue_in_order():
    typist, host = make()
    for part in ("one ", "two ", "three"):
        typist.type_text(part)
    assert typist.wait_idle(5)
    assert host.text == "one two three"


TOTAL = len(text_to_reports(TEXT, get_keymap("de")))


@pytest.mark.parametrize("cut", [1, 2, 3, 17, 40, 41, 42, TOTAL - 2, TOTAL - 1])
def test_unplug_at_any_report_resumes_exactly_there(cut):
    """The report offered when the host vanished is not delivered; after re-plug nothing is lost or doubled."""
    typist, host = make("de", disconnect_after=cut)
    typist.type_text(TEXT)
    deadline = time.monotonic() + 5
    while host.disconnect_after is not None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.02)
    # "paused" while text waits; "offline" if only the final all-keys-up is still to be delivered
    assert typist.state == ("offline" if cut == TOTAL - 1 else "paused")
    assert not typist.wait_idle(0.05)
    host.plug()
    assert typist.wait_idle(5)
    assert host.text == TEXT
    assert host.reports[-1] == ALL_KEYS_UP
    typist.close()


def test_resume_releases_first_and_presses_modifiers_before_the_key():
    """A press that got through without its release is let go first; a Shift+key report is not sent in one go."""
    shift_h = bytes([2, 0, 0x0B, 0, 0, 0, 0, 0])

    class FailsOnceOnShiftH(VirtualTransport):
        failed = False

        def send(self, report):
            if report == shift_h and not self.failed:
                self.failed = True
                raise HostDisconnected("gone", reason="eshutdown")
            super().send(report)

    host = FailsOnceOnShiftH("us")
    typist = Typist(host, "us", key_delay_s=0, retry_interval_s=0.01)
    typist.type_text("aH")
    assert typist.wait_idle(5)
    assert host.text == "aH"
    i = host.reports.index(shift_h)
    assert host.reports[i - 2:i] == [ALL_KEYS_UP, bytes([2, 0, 0, 0, 0, 0, 0, 0])]
    typist.close()


def test_a_press_an_unplug_aborted_unseen_is_typed_again_not_lost():
    """USB's limit at the instant of an unplug: f_hid completes the 'r' press the unplug aborted as if the host had
    taken it, and only the next report fails. That transport says it cannot vouch for the report before
    (earlier_unsure), so after the re-plug typing resumes at the 'r': nothing lost."""
    r_press = bytes([0, 0, 0x15, 0, 0, 0, 0, 0])

    class AbortsThePressUnseen(VirtualTransport):
        dropped = failed = False

        def send(self, report):
            if report == r_press and not self.dropped:
                self.dropped = True              # "completed", but the host never got it
                return
            if self.dropped and not self.failed:
                self.failed = True
                raise HostDisconnected("gone", reason="eshutdown", earlier_unsure=True)
            super().send(report)

    host = AbortsThePressUnseen("us")
    typist = Typist(host, "us", key_delay_s=0, retry_interval_s=0.01)
    typist.type_text("over the")
    assert typist.wait_idle(5)
    assert host.failed and host.text == "over the"
    typist.close()


def test_going_back_to_a_shifted_character_presses_shift_alone_first():
    """The price of never losing a key: when the host did take the report before (this fake delivers it), the
    character is typed twice. Going back to one that needs Shift: Shift alone, then Shift+key, as on any resume."""
    shift_o = bytes([2, 0, 0x12, 0, 0, 0, 0, 0])

    class FailsAfterShiftO(VirtualTransport):   # the report after Shift+O fails, once
        seen = failed = False

        def send(self, report):
            if self.seen and not self.failed:
                self.failed = True
                raise HostDisconnected("gone", reason="eshutdown", earlier_unsure=True)
            super().send(report)
            self.seen = self.seen or report == shift_o

    host = FailsAfterShiftO("us")
    typist = Typist(host, "us", key_delay_s=0, retry_interval_s=0.01)
    typist.type_text("xOy")
    assert typist.wait_idle(5)
    assert host.failed and host.text == "xOOy"
    i = len(host.reports) - 1 - host.reports[::-1].index(shift_o)
    assert host.reports[i - 1] == bytes([2, 0, 0, 0, 0, 0, 0, 0])
    typist.close()


def test_cancel_returns_the_untyped_rest_and_leaves_all_keys_up():
    typist, host = make(key_delay_s=0.002)
    typist.type_text("abcdefghijklmnopqrstuvwxyz" * 4)
    typist.type_text(" and more")
    time.sleep(0.05)
    rest = typist.cancel()
    assert typist.wait_idle(5)
    full = "abcdefghijklmnopqrstuvwxyz" * 4 + " and more"
    assert host.text + rest == full
    assert rest.endswith(" and more") and host.text
    assert host.reports[-1] == ALL_KEYS_UP
    typist.close()


def test_cancel_while_paused_keeps_nothing_and_types_nothing_after_replug():
    typist, host = make(disconnect_after=10)
    typist.type_text("hello world")
    assert wait_for(lambda: typist.state == "paused", 10.0)
    rest = typist.cancel()
    assert host.text + rest == "hello world"
    host.plug()
    assert typist.wait_idle(5)
    assert host.text + rest == "hello world"
    typist.close()


def test_state_is_offline_when_idle_without_host_and_type_text_never_blocks():
    typist, host = make()
    host.unplug()
    assert typist.state == "offline"
    start = time.monotonic()
    typist.type_text("queued while unplugged")
    assert time.monotonic() - start < 5.0            # the host is gone: a blocking call would never return
    assert wait_for(lambda: typist.state == "paused", 10.0)
    host.plug()
    assert typist.wait_idle(5)
    assert host.text == "queued while unplugged"
    typist.close()


def test_caps_lock_switched_on_by_the_host_mid_text_is_followed():
    """The host's Caps Lock goes on between two characters (the user pressed it on another keyboard)."""

    class CapsMidway(VirtualTransport):
        def send(self, report):
            super().send(report)
            if len(self.text) >= 30 and self.text.endswith("then ") and not self.leds() & 0x02:
                self.host.key(58, 1)
                self.host.key(58, 0)

    host = CapsMidway("us")
    typist = Typist(host, "us", key_delay_s=0)
    text = "lower then STILL Right " * 5
    typist.type_text(text)
    assert typist.wait_idle(10)
    assert host.leds() & 0x02
    assert host.text == text
    typist.close()


def test_typing_with_caps_lock_already_on():
    typist, host = make("fr", caps_lock=True)
    typist.type_text("Bonjour à tous, 2 + 2 = 4 !")
    assert typist.wait_idle(5)
    assert host.text == "Bonjour à tous, 2 + 2 = 4 !"
    typist.close()


def test_pacing_spaces_reports_by_key_delay():
    typist, host = make(key_delay_s=0.01)
    start = time.monotonic()
    typist.type_text("abab")
    assert typist.wait_idle(5)
    elapsed = time.monotonic() - start
    assert len(host.reports) == 5
    assert elapsed >= 0.04  # 5 reports start >= 10 ms apart
    typist.close()


def test_close_is_safe_while_typing_and_twice():
    typist, host = make(key_delay_s=0.005)
    typist.type_text("x" * 200)
    time.sleep(0.02)
    typist.close()
    typist.close()
    assert host.reports[-1] == ALL_KEYS_UP
    assert threading.active_count() < 50

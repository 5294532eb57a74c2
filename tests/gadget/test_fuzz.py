"""Hypothesis fuzz of keymap + keystrokes + typist over arbitrary Unicode."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from sttkb.gadget.hid_usage import USAGE_ENTER, USAGE_TAB
from sttkb.gadget.keymap import get_keymap
from sttkb.gadget.keystrokes import plan_text, text_to_reports
from sttkb.gadget.reports import ALL_KEYS_UP, MOD_LEFT_SHIFT, MOD_RIGHT_ALT
from sttkb.gadget.typist import Typist
from sttkb.gadget.virtual import VirtualTransport

LAYOUTS = ("us", "gb", "de", "fr", "us(intl)")
ALLOWED_MODS = MOD_LEFT_SHIFT | MOD_RIGHT_ALT
# Usages that are not text keys: Enter, Esc, Backspace, Tab, Caps Lock, F-keys, arrows, Ctrl/Alt/GUI...
CONTROL_USAGES = set(range(0x28, 0x2C)) | set(range(0x39, 0x64)) | set(range(0x65, 0x87)) | set(range(0xE0, 0x100))


def check_reports(text: str, reports: list[bytes]) -> None:
    assert reports == [] or reports[-1] == ALL_KEYS_UP
    for r in reports:
        assert len(r) == 8 and r[1] == 0
        assert r[0] & ~ALLOWED_MODS == 0, f"modifier {r[0]:#x} not asked for"
        for usage in r[2:]:
            if usage in CONTROL_USAGES:
                assert (usage == USAGE_ENTER and ("\n" in text or "\r" in text)) or \
                       (usage == USAGE_TAB and "\t" in text), f"control key {usage:#x} not asked for"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=40), layout=st.sampled_from(LAYOUTS), caps=st.booleans(),
       policy=st.sampled_from(("transliterate", "skip")))
def test_any_text_gives_only_text_keys_and_ends_all_up(text, layout, caps, policy):
    km = get_keymap(layout)
    reports = text_to_reports(text, km, unmappable=policy, caps_lock=caps)
    check_reports(text, reports)
    plan = plan_text(text, km, unmappable=policy, caps_lock=caps)
    host = VirtualTransport(layout, caps_lock=caps)
    for r in reports:
        host.send(r)
    assert host.text == plan.expected
    assert not host.host.down


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=30), layout=st.sampled_from(LAYOUTS),
       cut=st.integers(min_value=0, max_value=60))
def test_typist_with_an_unplug_anywhere_types_exactly_the_plan(text, layout, cut):
    host = VirtualTransport(layout, disconnect_after=cut)
    typist = Typist(host, layout, key_delay_s=0, retry_interval_s=0.002)
    typist.type_text(text)
    host.plug()  # may come before or after the unplug: both must work
    while not typist.wait_idle(0.05):
        host.plug()
    typist.close()
    check_reports(text, host.reports)
    assert host.text == plan_text(text, get_keymap(layout)).expected

"""sttkb.gadget.routing.FirstConnectedKeyboard over two real Typists on VirtualTransports (standing in for USB and
Bluetooth: the routing logic only sees the Keyboard protocol)."""

from __future__ import annotations

import pytest

from sttkb.gadget.routing import FirstConnectedKeyboard
from sttkb.keyboard import Keyboard
from sttkb.gadget.typist import Typist
from sttkb.gadget.virtual import VirtualTransport


@pytest.fixture
def two():
    usb, ble = VirtualTransport("us"), VirtualTransport("us")
    kb = FirstConnectedKeyboard([Typist(usb, "us", key_delay_s=0.0), Typist(ble, "us", key_delay_s=0.0)])
    yield kb, usb, ble
    kb.close()


def test_it_is_a_keyboard(two):
    assert isinstance(two[0], Keyboard)


def test_text_goes_to_the_first_connected_host_only(two):
    kb, usb, ble = two
    kb.type_text("hello ")
    assert kb.wait_idle(5)
    assert (usb.text, ble.text) == ("hello ", "")
    usb.unplug()
    kb.type_text("over bluetooth ")
    assert kb.wait_idle(5)
    assert (usb.text, ble.text) == ("hello ", "over bluetooth ")
    assert kb.state == "idle"


def test_nothing_connected_waits_paused_on_the_first_and_resumes(two):
    kb, usb, ble = two
    usb.unplug()
    ble.unplug()
    assert kb.state == "offline"
    kb.type_text("later")
    assert not kb.wait_idle(0.3)
    assert kb.state == "paused"
    usb.plug()
    assert kb.wait_idle(5)
    assert (usb.text, ble.text) == ("later", "")


def test_cancel_returns_what_was_not_typed(two):
    kb, usb, ble = two
    usb.unplug()
    ble.unplug()
    kb.type_text("never sent")
    assert kb.cancel() == "never sent"
    usb.plug()
    assert kb.wait_idle(5) and usb.text == ""

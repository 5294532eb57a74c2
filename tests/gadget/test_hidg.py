"""HidgTransport against a fake tree: a FIFO stands in for /dev/hidg0 (non-blocking, pollable, fills up like the
gadget's queue) and plain files for /sys/class/udc/<udc>/state. The real /dev/hidg0 is in test_usb_vm.py."""

from __future__ import annotations

import os
import time

import pytest

from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.typist import Typist
from sttkb.gadget.usb.hidg import HidgTransport
from tests.polling import wait_for

REPORT = bytes([0, 0, 4, 0, 0, 0, 0, 0])


def read_reports(fd: int) -> list[bytes]:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return []
    return [data[i:i + 8] for i in range(0, len(data), 8)]


def test_send_writes_the_report_when_configured(fake):
    dev, sysfs, state, reader = fake
    t = HidgTransport(dev, sysfs_root=sysfs, write_timeout_s=0.2)
    assert t.udc == "dummy_udc.0" and t.wait_ready(0.1)
    t.send(REPORT)
    assert read_reports(reader) == [REPORT]
    with pytest.raises(ValueError):
        t.send(b"\0" * 7)
    t.close()
    t.close()


def test_state_change_while_sending_is_not_delivered(fake):
    dev, sysfs, state, reader = fake
    t = HidgTransport(dev, sysfs_root=sysfs, write_timeout_s=0.2)
    t.send(REPORT)
    state.write_text("not attached\n")
    with pytest.raises(HostDisconnected) as e:
        t.send(REPORT)
    assert e.value.reason == "unconfirmed"
    assert not t.wait_ready(0.1)


def test_missing_device_means_host_not_there(tmp_path, fake):
    dev, sysfs, state, reader = fake
    t = HidgTransport(tmp_path / "nope", sysfs_root=sysfs, write_timeout_s=0.1)
    with pytest.raises(HostDisconnected, match="sttkb gadget up") as e:
        t.send(REPORT)
    assert e.value.reason == "no-device"
    assert not t.wait_ready(0.05)


def test_a_host_that_takes_nothing_times_out_within_the_write_timeout(fake):
    dev, sysfs, state, reader = fake
    t = HidgTransport(dev, sysfs_root=sysfs, write_timeout_s=0.2)
    fd = os.open(dev, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except BlockingIOError:
        pass
    start = time.monotonic()
    with pytest.raises(HostDisconnected) as e:
        t.send(REPORT)
    assert e.value.reason in ("timeout", "eagain")
    assert 0.15 <= time.monotonic() - start < 2.0
    os.close(fd)


def test_led_output_report_is_read(fake):
    dev, sysfs, state, reader = fake
    t = HidgTransport(dev, sysfs_root=sysfs)
    assert t.leds() == 0
    fd = os.open(dev, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"\x02")
    os.close(fd)
    assert t.leds() == 0x02


def test_after_a_replug_ready_waits_for_the_settle_time(fake):
    dev, sysfs, state, reader = fake
    t = HidgTransport(dev, sysfs_root=sysfs, settle_s=0.3)
    assert t.wait_ready(0)  # configured since before we looked: no wait
    state.write_text("not attached\n")
    assert not t.wait_ready(0.05)
    state.write_text("configured\n")
    assert not t.wait_ready(0.1)
    assert t.wait_ready(1.0)


def test_typist_over_hidg_pauses_on_unplug_and_resumes(fake):
    dev, sysfs, state, reader = fake
    class NoLedReads(HidgTransport):
        def leds(self):  # the FIFO is one pipe for both directions: reading LEDs would eat our reports
            return 0

    t = NoLedReads(dev, sysfs_root=sysfs, write_timeout_s=0.1, settle_s=0.05)
    typist = Typist(t, "us", key_delay_s=0.002, retry_interval_s=0.02)
    state.write_text("not attached\n")
    typist.type_text("ab")
    assert wait_for(lambda: typist.state == "paused", 10.0)
    assert typist.reports_sent == 0
    state.write_text("configured\n")
    assert typist.wait_idle(5)
    got = read_reports(reader)
    # the FIFO keeps the unconfirmed first try (a real unplug aborts it); then all-up, then a, b, all-up
    assert got == [bytes([0, 0, 4, 0, 0, 0, 0, 0]), bytes(8), bytes([0, 0, 4, 0, 0, 0, 0, 0]),
                   bytes([0, 0, 5, 0, 0, 0, 0, 0]), bytes(8)]
    typist.close()

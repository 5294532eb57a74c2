"""A fake USB device tree: a FIFO stands in for /dev/hidg0 (non-blocking, pollable, fills up like the gadget's queue)
and a plain file for /sys/class/udc/<udc>/state. The real /dev/hidg0 is in test_usb_vm.py."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def fake(tmp_path):
    """(device node, sysfs root, UDC state file, a reader fd on the node)."""
    dev = tmp_path / "hidg0"
    os.mkfifo(dev)
    state = tmp_path / "sys/class/udc/dummy_udc.0/state"
    state.parent.mkdir(parents=True)
    state.write_text("configured\n")
    reader = os.open(dev, os.O_RDONLY | os.O_NONBLOCK)
    yield dev, tmp_path / "sys", state, reader
    os.close(reader)

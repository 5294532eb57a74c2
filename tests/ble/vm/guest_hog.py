"""Runs INSIDE the qemu guest with BlueZ's own HID host (hog plugin) on: the way a Linux laptop receives keys.

The sttkb keyboard on hci0 pairs with hci1; bluetoothd's hog plugin on the hci1 side reads the Report Map and
creates a kernel input device through uhid; the test reads EV_KEY events from /dev/input/eventN and decodes them
with xkbcommon in the host layout. Then the host drops the link mid-text and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from pathlib import Path

from sttkb.config.keyboard import BluetoothSettings
from sttkb.gadget.ble.keyboard import open_ble_keyboard
from sttkb.gadget.typist import Typist
from tests.xkb_host import XkbHost
from tests.ble.vm.guest_e2e import TEXT_DE, TEXT_LONG, TEXT_US
from tests.ble.vm.guest_run import run_guest, write_result
from tests.ble.vm.host import Host
from tests.ble.vm.kernel_host import EV_KEY, EVENT, event_node

log = logging.getLogger("vm-hog")
RESULT: dict = {"stages": []}
NAME = "sttkb hog keyboard"


def stage(label: str, /, **info) -> None:
    RESULT["stages"].append(label)
    RESULT.update({f"{label}.{k}": v for k, v in info.items()})
    log.info("STAGE %s %s", label, info)
    write_result(RESULT)


def find_event_device(timeout: float) -> str | None:
    return event_node(NAME, timeout)


class EventReader:
    """Reads EV_KEY events from an evdev node in a thread (the node may vanish and come back)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int]] = []
        self.times: list[float] = []
        """Kernel timestamp (CLOCK_REALTIME seconds) of each event in ``events``."""
        self._stop = False
        self.opened = 0
        self.log: list[str] = []
        """When nodes were opened and lost (for the result)."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            path = find_event_device(1.0)
            if path is None:
                continue
            try:
                with open(path, "rb", buffering=0) as f:
                    self.opened += 1
                    self._note(f"opened {path}")
                    while not self._stop:
                        data = f.read(EVENT.size)
                        if len(data) < EVENT.size:
                            break
                        sec, usec, etype, code, value = EVENT.unpack(data)
                        if etype == EV_KEY:
                            self.events.append((code, value))
                            self.times.append(sec + usec / 1e6)
                self._note(f"end of {path}")
            except OSError as e:
                self._note(f"{path}: {e}")
                time.sleep(0.2)

    def _note(self, what: str) -> None:
        line = f"{time.time():.3f} {what}"
        self.log.append(line)
        log.info("reader: %s", what)

    def text(self, layout: str, start: int = 0) -> str:
        decoder = XkbHost(layout)
        for code, value in self.events[start:]:
            decoder.key(code, value)
        return decoder.text


async def run() -> None:
    # One report per 40 ms: this boot has three ATT bearers (see test_ble_vm.py), and reports queued together
    # leave the box's kernel spread over them, out of order. One at a time, each is out before the next.
    settings = BluetoothSettings(name=NAME, adapter="hci0", pairing="just-works", reconnect_settle_s=2.0,
                                 report_interval_ms=40.0)
    kb, transport = await asyncio.to_thread(open_ble_keyboard, settings, state_dir="/tmp/sttkb-state")
    done: list[bool] = []
    await asyncio.to_thread(kb.open_pairing_window, 60.0, done.append)
    host = Host("hci1")
    await host.open()
    await host.find(30.0)
    await host.pair()
    await host._call(host.device_path, "org.bluez.Device1", "Connect")  # lets the hog profile attach
    stage("paired", window=done)
    path = await asyncio.to_thread(find_event_device, 10.0)
    reconnected = False
    if path is None:
        # Seen with bluetoothd 5.66 + resolvable private addresses: the host's HID driver reads HID Information
        # right after pairing, while the box's bluetoothd still knows the host by its old address ("Unable to find
        # device object") — the read fails and no input device is made. The next connection works.
        reconnected = True
        await host.disconnect()
        await asyncio.sleep(1.0)
        await host._call(host.device_path, "org.bluez.Device1", "Connect")
        path = await asyncio.to_thread(find_event_device, 20.0)
    names = sorted(str(p.read_text().strip()) for p in Path("/sys/class/input").glob("input*/name"))
    stage("input_device", path=path, needed_reconnect=reconnected, input_names=names)
    if path is None:
        return
    reader = EventReader()
    ready = await asyncio.to_thread(kb.wait_ready, 20.0)
    await asyncio.sleep(1.0)
    stage("ready", ready=ready)
    tracker = transport.tracker
    for layout, text in (("us", TEXT_US), ("de", TEXT_DE)):
        start = len(reader.events)
        typist = Typist(transport, layout=layout, key_delay_s=0.0)
        completed0 = tracker.completed_reports if tracker else 0
        combined0 = tracker.combined_reports if tracker else 0
        t0 = time.monotonic()
        typist.type_text(text)
        idle = await asyncio.to_thread(typist.wait_idle, 120.0)
        await asyncio.sleep(1.0)  # the monitor's reader catches up (it drains every 0.1 s)
        decoded = reader.text(layout, start)
        # From the box's own HCI monitor: how many reports its controller sent (Number Of Completed Packets) and
        # how many went as combined notifications, which the host's hog (BlueZ 5.66) ignores.
        trusted = tracker is not None and tracker.trusted
        stage(f"typed_{layout}", idle=idle, decoded=decoded, reports=typist.reports_sent,
              completed=tracker.completed_reports - completed0 if trusted else None,
              combined=tracker.combined_reports - combined0 if trusted else None,
              pending=tracker.pending if trusted else None,
              chars_per_s=round(len(text) / (time.monotonic() - t0 - 1.0), 1))

    start = len(reader.events)
    # Leave after 20 key events, one report per 50 ms: the host's Disconnect can take seconds to drop the link,
    # and the text must still be going when it does (see guest_e2e.py).
    typist = Typist(transport, layout="us", key_delay_s=0.05)
    combined_start = tracker.combined_reports if tracker is not None else 0
    typist.type_text(TEXT_LONG)
    deadline = time.monotonic() + 30.0
    while len(reader.events) - start < 20:
        if time.monotonic() > deadline:
            # The host got (almost) nothing: record the box's side of it, as for the typed texts above.
            trusted = tracker is not None and tracker.trusted
            stage("no_keys_before_resume", events=len(reader.events) - start, decoded=reader.text("us", start),
                  reports=typist.reports_sent,
                  combined=tracker.combined_reports - combined_start if trusted else None)
            typist.close()
            await asyncio.to_thread(kb.close)
            return
        await asyncio.sleep(0.05)
    log.info("host: Disconnect")
    await host.disconnect()
    await asyncio.sleep(1.5)
    state = typist.state
    combined0 = tracker.combined_reports if tracker is not None else 0
    log.info("host: Connect")
    await host._call(host.device_path, "org.bluez.Device1", "Connect")
    log.info("host: Connect returned")
    idle = await asyncio.to_thread(typist.wait_idle, 120.0)
    await asyncio.sleep(1.0)  # the monitor's reader catches up
    decoded = reader.text("us", start)
    # From the box's own HCI monitor: how many reports went out as combined notifications after the reconnect
    # (None when tracking was off or stopped trusting itself, which counts as no evidence).
    trusted = tracker is not None and tracker.trusted
    stage("resume", state_while_away=state, idle=idle, decoded=decoded,
          combined_after_reconnect=tracker.combined_reports - combined0 if trusted else None,
          resent=transport.resent, input_device_opened=reader.opened, reader_log=reader.log,
          event_times=[round(t, 3) for t in reader.times[start:]])
    await host.disconnect()
    await asyncio.to_thread(transport.close)
    await asyncio.to_thread(kb.close)
    stage("closed")


if __name__ == "__main__":
    sys.exit(run_guest(run, 300, RESULT, log))

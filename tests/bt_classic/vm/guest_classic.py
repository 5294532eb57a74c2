"""Runs INSIDE the qemu guest (see tests/bt_classic/test_classic_vm.py): the sttkb Bluetooth Classic keyboard on
hci0 (built by the factory for [bluetooth] mode = "classic"), a Linux host on hci1 = bluetoothd's own input plugin and the kernel's
hidp, the way a laptop with BlueZ receives a Classic keyboard. The host's keys are read from /dev/input/eventN
and decoded with xkbcommon (tests/xkb_host.py).

Stages (each recorded in result.json): the record is published and the pairing window open; the host discovers
the keyboard over BR/EDR, pairs (Secure Simple Pairing, Just Works) and finds the HID record; the host connects,
its kernel makes an input device; the host's Caps Lock LED reaches the keyboard; text typed in us and de; the
host drops the link mid-text and the keyboard reconnects by itself and types the rest; the host's adapter is
switched off mid-text (reports the box's kernel had taken are lost below the socket; delivery tracking sends
them again after the reconnection); a forgotten host outside the window; closing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time

from dbus_fast import Variant

from sttkb.config.keyboard import BluetoothSettings, KeyboardSettings
from sttkb.gadget.ble import bluez, defs
from sttkb.gadget.bt_classic.peripheral import ClassicPeripheral
from sttkb.gadget.factory import Roots, bluetooth_typist
from sttkb.gadget.bt_classic.sdp_record import HID_UUID
from sttkb.gadget.typist import Typist
from tests.ble.vm.guest_e2e import TEXT_DE, TEXT_LONG, TEXT_US
from tests.ble.vm.guest_run import run_guest, write_result
from tests.ble.vm.host import Host
from tests.ble.vm.kernel_host import EV_KEY, EVENT, event_node
from tests.xkb_host import XkbHost

log = logging.getLogger("vm-classic")
RESULT: dict = {"stages": []}
NAME = "sttkb vm classic keyboard"
EV_SYN, EV_LED, LED_CAPSL = 0, 0x11, 1
GONE = (-1, -1)
"""Marks where an input node vanished in EventReader.events (the link dropped)."""


def stage(label: str, /, **info) -> None:
    RESULT["stages"].append(label)
    RESULT.update({f"{label}.{k}": v for k, v in info.items()})
    log.info("STAGE %s %s", label, info)
    write_result(RESULT)


class ClassicHost(Host):
    """tests/ble/vm/host.py's BlueZ client, finding the keyboard over BR/EDR instead of LE."""

    async def find(self, timeout: float = 30.0) -> str:
        dev = await self._discover({"Transport": Variant("s", "bredr")},
                                   lambda dev: dev.get("Name") == NAME or HID_UUID in dev.get("UUIDs", []), timeout,
                                   "no Classic keyboard found by inquiry")
        self.found = {k: dev.get(k) for k in ("Name", "Class", "UUIDs", "Icon")}
        return self.address

    async def set_trusted(self) -> None:
        """A laptop's settings dialog trusts the keyboard it paired; bluetoothd then lets it reconnect without
        asking an agent (here the box's agent would be asked: one bluetoothd serves both sides)."""
        assert self.bus is not None
        await bluez.set_property(self.bus, self.device_path, defs.DEVICE, "Trusted", "b", True)


class EventReader:
    """EV_KEY events of the input device called NAME, across its disappearances (each link makes a new one)."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int]] = []
        self.nodes: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            path = event_node(NAME, 1.0)
            if path is None:
                continue
            try:
                with open(path, "rb", buffering=0) as f:
                    self.nodes.append(path)
                    while not self._stop:
                        data = f.read(EVENT.size)
                        if len(data) < EVENT.size:
                            break
                        _s, _u, etype, code, value = EVENT.unpack(data)
                        if etype == EV_KEY:
                            self.events.append((code, value))
            except OSError:
                pass
            self.events.append(GONE)
            time.sleep(0.1)

    def text(self, layout: str, start: int = 0) -> str:
        decoder = XkbHost(layout)
        for code, value in self.events[start:]:
            if (code, value) == GONE:   # the device went away: whatever it held is let go
                for held in sorted(decoder.down):
                    decoder.key(held, 0)
                continue
            decoder.key(code, value)
        return decoder.text

    def stop(self) -> None:
        self._stop = True


def set_caps_lock(path: str, on: bool) -> None:
    """What a desktop does when Caps Lock is pressed: set the LED on the keyboard's input device (the kernel
    sends the output report to the keyboard)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, EVENT.pack(0, 0, EV_LED, LED_CAPSL, int(on)) + EVENT.pack(0, 0, EV_SYN, 0, 0))
    finally:
        os.close(fd)


def tracking(transport) -> dict:
    """What the keyboard's delivery tracking knows now."""
    tracker = transport.tracker
    if tracker is None:
        return {"tracking": False}
    return {"tracking": True, "trusted": tracker.trusted, "completed_reports": tracker.completed_reports,
            "pending": tracker.pending, "resent_total": transport.resent}


def wait_for(check, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


async def run() -> None:
    settings = BluetoothSettings(mode="classic", name=NAME, adapter="hci0", pairing="just-works",
                                 pairing_timeout_s=60.0, reconnect_settle_s=1.0)
    # As the daemon builds it: the factory, from [bluetooth] mode (the typists below share its transport).
    typist, kb = await asyncio.to_thread(bluetooth_typist, KeyboardSettings(), settings,
                                         roots=Roots(bluetooth_state="/tmp/sttkb-state"))
    assert isinstance(kb, ClassicPeripheral), f"mode classic built {type(kb).__name__}"
    transport = typist.transport
    window: list[bool] = []
    await asyncio.to_thread(kb.open_pairing_window, 60.0, window.append)
    stage("registered", address=kb.address, window_open=kb.pairing_window_open, published=kb.record_published)

    host = ClassicHost("hci1")
    await host.open()
    address = await host.find(30.0)
    stage("discovered", address=address, **{k.lower(): v for k, v in host.found.items()})
    await host.pair()
    await host.set_trusted()
    wait_for(lambda: bool(window), 10.0)
    stage("paired", window_result=window, window_open_after=kb.pairing_window_open,
          bonded=[h.address for h in kb.hosts() if h.is_bonded], host_uuids=await host.prop("UUIDs"),
          agent_requests=[(m, ok) for m, _d, ok in kb.agent.requests])

    reader = EventReader()
    try:
        await host._call(host.device_path, defs.DEVICE, "Connect")   # what a desktop does after pairing
    except Exception as e:  # noqa: BLE001 - AlreadyConnected when bluetoothd connected the profile itself
        log.info("Connect: %s", e)
    ready = await asyncio.to_thread(transport.wait_ready, 20.0)
    path = await asyncio.to_thread(event_node, NAME, 20.0, bound=True)
    stage("connected", ready=ready, link_host=transport.link.host, event_node=path,
          refused=list(transport.link.refused))

    set_caps_lock(path, True)
    on = await asyncio.to_thread(wait_for, lambda: transport.leds() & 0x02, 5.0)
    set_caps_lock(path, False)
    off = await asyncio.to_thread(wait_for, lambda: not transport.leds() & 0x02, 5.0)
    stage("leds", caps_on_seen=bool(on), caps_off_seen=bool(off))

    for layout, text in (("us", TEXT_US), ("de", TEXT_DE)):
        typist = Typist(transport, layout=layout, key_delay_s=0.0)
        n0 = len(reader.events)
        t0 = time.monotonic()
        typist.type_text(text)
        idle = await asyncio.to_thread(typist.wait_idle, 120.0)
        dt = time.monotonic() - t0
        await asyncio.sleep(1.0)
        stage(f"typed_{layout}", idle=idle, decoded=reader.text(layout, n0), reports=typist.reports_sent,
              chars_per_s=round(len(text) / dt, 1))

    # The host drops the link mid-text: the typist pauses; the keyboard reconnects by itself (the typist waiting
    # for the host starts it) and the rest is typed on the host's new input device.
    typist = Typist(transport, layout="us", key_delay_s=0.05)
    n0 = len(reader.events)
    typist.type_text(TEXT_LONG)
    await asyncio.to_thread(wait_for, lambda: len(reader.events) - n0 >= 40, 60.0)
    sent_at_disconnect = typist.reports_sent
    await host.disconnect()
    away = await asyncio.to_thread(wait_for, lambda: typist.state == "paused", 10.0)
    state_while_away = typist.state
    t_away = time.monotonic()
    idle = await asyncio.to_thread(typist.wait_idle, 120.0)
    back_after = round(time.monotonic() - t_away, 2)
    await asyncio.sleep(1.0)
    stage("resume", paused=away, state_while_away=state_while_away, idle=idle, decoded=reader.text("us", n0),
          reconnects=transport.reconnects, sent_at_disconnect=sent_at_disconnect, back_after_s=back_after,
          nodes=list(reader.nodes), host_connected=await host.prop("Connected"), **tracking(transport))

    # The host's adapter switches off mid-text: its kernel drops the ACL link (reason: power off) while the box's
    # kernel and controller may still hold reports the box's socket took. The keyboard must not page the host
    # while it is off (btvirt answers the name request regardless and the failed L2CAP connection oopses this
    # guest kernel, docs/bluetooth.md), so the test withholds the reconnection target until the host's adapter
    # scans pages again; then the keyboard reconnects by itself as before.
    typist = Typist(transport, layout="us", key_delay_s=0.0)
    target, transport.reconnect_target = transport.reconnect_target, lambda: None
    n0, resent0, reconnects0 = len(reader.events), transport.resent, transport.reconnects
    typist.type_text(TEXT_LONG)
    await asyncio.to_thread(wait_for, lambda: len(reader.events) - n0 >= 40, 60.0)
    sent_at_off = typist.reports_sent
    await bluez.set_property(host.bus, host.adapter_path, defs.ADAPTER, "Powered", "b", False)
    away = await asyncio.to_thread(wait_for, lambda: typist.state == "paused", 10.0)
    await asyncio.sleep(1.0)
    while_off = tracking(transport)
    await bluez.set_property(host.bus, host.adapter_path, defs.ADAPTER, "Powered", "b", True)
    scanning = await asyncio.to_thread(wait_for, lambda: "PSCAN" in subprocess.run(
        ["hciconfig", "hci1"], capture_output=True, text=True).stdout, 15.0)
    idle = False
    if scanning:   # else a page would time out and oops the guest
        await asyncio.sleep(1.0)
        transport.reconnect_target = target
        idle = await asyncio.to_thread(typist.wait_idle, 120.0)
    await asyncio.sleep(1.0)
    stage("power_off", paused=away, idle=idle, decoded=reader.text("us", n0), sent_at_off=sent_at_off,
          host_scanning_again=scanning, reconnects=transport.reconnects - reconnects0,
          resent=transport.resent - resent0, while_off=while_off, **tracking(transport))

    # Outside the window, with the bond forgotten on both sides: the host neither finds the keyboard (no inquiry
    # scan) nor can page it (the box's bluetoothd leaves page scan on only for bonded hosts: none are left). The
    # host does not try an L2CAP connection here: on this guest kernel closing an L2CAP socket whose connection
    # failed (Page Timeout) oopses it (list corruption in hci_chan_del; tests/bt_classic/test_classic_vm.py).
    bonded = [h.address for h in kb.hosts() if h.bonded]
    await host.disconnect()
    await asyncio.to_thread(kb.forget, bonded[0])
    await host.forget()
    await asyncio.sleep(1.0)
    scan = subprocess.run(["hciconfig", "hci0"], capture_output=True, text=True).stdout
    found = await host.find_any(8.0)
    stage("stranger", found=found, box_scan=[f for f in ("PSCAN", "ISCAN") if f in scan],
          link_host=transport.link.host, bonded_after=[h.address for h in kb.hosts() if h.bonded],
          window_open=kb.pairing_window_open)

    reader.stop()
    await asyncio.to_thread(typist.close)   # closes the transport and its link
    await asyncio.to_thread(kb.close)
    stage("closed")


if __name__ == "__main__":
    threading.current_thread().name = "guest"
    sys.exit(run_guest(run, 400, RESULT, log))

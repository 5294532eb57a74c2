"""Runs INSIDE the qemu guest (see test_ble_vm.py): the sttkb keyboard on hci0 (built by open_ble_keyboard, as the
daemon does), a BlueZ client on hci1 as the host.

Stages (each recorded in result.json, so a failure says how far it got): advertise + pairing window, discover,
connect, pair (Just Works) and bond, read the HID service, subscribe, type text through the shared Typist and
turn what the host received into text through the guest kernel's HID layer (tests/ble/vm/kernel_host.py), host
disconnects mid-text and comes back, throughput. test_ble_vm.py compares the texts with the input.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time

from sttkb.config.keyboard import BluetoothSettings
from sttkb.gadget.ble import defs
from sttkb.gadget.ble.keyboard import open_ble_keyboard
from sttkb.gadget.ble.report_map import parse_report_map
from sttkb.gadget.errors import HostDisconnected
from sttkb.gadget.host_check import collect
from sttkb.gadget.reports import ALL_KEYS_UP, REPORT_DESCRIPTOR, key_report
from sttkb.gadget.typist import Typist
from tests.ble.vm.guest_run import run_guest, write_result
from tests.ble.vm.host import Host
from tests.ble.vm.kernel_host import KernelKeyboard

log = logging.getLogger("vm-guest")
RESULT: dict = {"stages": []}


def stage(label: str, /, **info) -> None:
    RESULT["stages"].append(label)
    RESULT.update({f"{label}.{k}": v for k, v in info.items()})
    log.info("STAGE %s %s", label, info)
    write_result(RESULT)


TEXT_US = "Hello, World! It's 10:45 (sharp) -- ok? #1 @home ~/path_x."
TEXT_DE = "Grüße aus Köln: 3 Äpfel & 2 Birnen? Ja!"
TEXT_LONG = ("The quick brown fox jumps over the lazy dog while 12 typists keep typing, "
             "and nothing is lost or doubled when the host goes away for a moment.")
TEXT_BENCH = "Throughput check: the five boxing wizards jump quickly, 0123456789. " * 3
DISCONNECT = b"disconnect"


def raw_reports() -> list[bytes]:
    """The reports the raw stage sends without a typist: 20 keys, each released."""
    return [r for i in range(20) for r in (key_report(0, 4 + i % 26), ALL_KEYS_UP)]


def decode(reports: list[tuple[float, bytes]], layout: str, report_map: bytes) -> str:
    """What a Linux host in ``layout`` types from these reports (at a DISCONNECT marker it lets go of every key,
    as when the link drops)."""
    with KernelKeyboard(report_map, layout) as host:
        for _, report in reports:
            host.feed(ALL_KEYS_UP if report == DISCONNECT else report)
        return host.text


def _wait_not_ready(kb, timeout: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not kb.ready:
            return round(time.monotonic() - t0, 3)
        time.sleep(0.005)
    return None


def send_all(transport, reports: list[bytes], ready_timeout: float = 30.0) -> dict:
    """Send every report in order like the typist does: on HostDisconnected wait for the host, retry the same."""
    pauses = 0
    i = 0
    while i < len(reports):
        try:
            transport.send(reports[i])
            i += 1
        except HostDisconnected:
            pauses += 1
            if not transport.wait_ready(ready_timeout):
                raise
    return {"pauses": pauses}


async def run() -> None:
    # reconnect_settle_s: this test host (unlike a HOGP host, which keeps its subscription) re-subscribes only after
    # its own service discovery on reconnect, which takes a few seconds in this emulated VM.
    settings = BluetoothSettings(name="sttkb vm keyboard", adapter="hci0", pairing="just-works",
                                 pairing_timeout_s=60.0,
                                 reconnect_settle_s=4.0)
    window: list[bool] = []
    kb, transport = await asyncio.to_thread(open_ble_keyboard, settings, state_dir="/tmp/sttkb-state")
    stage("registered", tracking=transport.tracker is not None)
    await asyncio.to_thread(kb.open_pairing_window, 60.0, window.append)
    stage("window_open", open=kb.pairing_window_open)

    host = Host("hci1")
    await host.open()
    address = await host.find(30.0)
    stage("discovered", name=host.name, address=address, discoverable_flag=await host.advertised_discoverable())
    await host.pair()  # connects and pairs at once, like a laptop's "add device"
    stage("connected")
    for _ in range(100):
        if window:
            break
        await asyncio.sleep(0.1)
    agent_asked = len(kb.agent.requests)
    stage("paired", window_result=window, window_open_after=kb.pairing_window_open,
          bonded=[h.address for h in kb.hosts() if h.is_bonded],
          agent_requests=[(m, ok) for m, _d, ok in kb.agent.requests])

    report_map = await host.read(defs.UUID_HID, defs.UUID_REPORT_MAP)
    pnp = await host.read(defs.UUID_DEVICE_INFO, defs.UUID_PNP_ID)
    battery = await host.read(defs.UUID_BATTERY, defs.UUID_BATTERY_LEVEL)
    dis_count = (await host.services()).count(defs.UUID_DEVICE_INFO)
    await host.write(defs.UUID_HID, defs.UUID_REPORT, b"\x02", need="write")  # host turns Caps Lock LED on
    await asyncio.sleep(0.5)
    leds = kb.leds
    await host.write(defs.UUID_HID, defs.UUID_REPORT, b"\x00", need="write")
    stage("read", report_map_ok=report_map == REPORT_DESCRIPTOR, report_map=parse_report_map(report_map).describe(),
          pnp=pnp.hex(), battery=battery[0], device_info_services=dis_count, leds_seen=leds)

    # `sttkb check` (bleak) on the host's adapter sees a healthy keyboard. bleak reuses the existing link
    # (its own connect() lost a race with these virtual controllers, see tests/ble/vm/host.py).
    report = await collect(adapter="hci1", scan_timeout=8.0)
    stage("check", ok=report.ok, problems=report.problems, rendered=report.render())
    if not await host.prop("Connected"):
        await host.connect()

    await host.subscribe()
    ready = await asyncio.to_thread(kb.wait_ready, 15.0)
    stage("subscribed", ready=ready)

    # Raw reports in order (no typist): what arrives must equal what was sent.
    reports = raw_reports()
    n0 = len(host.reports)
    t0 = time.monotonic()
    await asyncio.to_thread(send_all, transport, reports)
    ok = await host.wait_reports(n0 + len(reports), 10.0)
    got = [r for _, r in host.reports[n0:]]
    stage("raw", all_arrived=ok, received=[r.hex() for r in got],
          seconds=round(time.monotonic() - t0, 3))

    # Text through the shared Typist; what the host received goes through the guest kernel's HID layer and
    # xkbcommon in the host's layout.
    for layout, text in (("us", TEXT_US), ("de", TEXT_DE)):
        typist = Typist(transport, layout=layout, key_delay_s=0.0)
        n0 = len(host.reports)
        t0 = time.monotonic()
        typist.type_text(text)
        idle = await asyncio.to_thread(typist.wait_idle, 120.0)
        await host.wait_reports(n0 + typist.reports_sent, 10.0)
        dt = time.monotonic() - t0
        decoded = decode(host.reports[n0:], layout, report_map)
        stage(f"typed_{layout}", idle=idle, decoded=decoded, reports=typist.reports_sent,
              chars_per_s=round(len(text) / dt, 1))

    # The host disconnects mid-text and comes back: the typist pauses and resumes where it stopped. The host
    # leaves after 20 reports and the typist sends one per 50 ms (≈ 7 s for the text): in CI the host's
    # Disconnect call once took ~3 s to drop the link, and unpaced the whole text had gone out by then.
    typist = Typist(transport, layout="us", key_delay_s=0.05)
    n0 = len(host.reports)
    typist.type_text(TEXT_LONG)
    await host.wait_reports(n0 + 20, 60.0)
    at_disconnect = {"host_received": len(host.reports) - n0, "keyboard_sent": typist.reports_sent}
    await host.disconnect()
    host.reports.append((time.monotonic(), DISCONNECT))
    noticed = await asyncio.to_thread(lambda: _wait_not_ready(kb, 10.0))
    at_disconnect["keyboard_sent_when_noticed"] = typist.reports_sent
    at_disconnect["noticed_after_s"] = noticed
    await asyncio.sleep(1.0)
    at_disconnect["state_while_away"] = typist.state
    t_back = time.monotonic()
    await host.connect()
    await host.subscribe()
    at_disconnect["reconnect_s"] = round(time.monotonic() - t_back, 2)
    idle = await asyncio.to_thread(typist.wait_idle, 120.0)
    await asyncio.sleep(1.0)
    decoded = decode(host.reports[n0:], "us", report_map)
    tracking = transport.tracker
    stage("resume", idle=idle, decoded=decoded, resent=transport.resent,
          tracking=tracking is not None and tracking.trusted and tracking.completed_reports > 0, **at_disconnect)

    # Throughput: typist flat out (key_delay 0), transport paced at its default minimum interval.
    for interval in (transport.min_interval_s, 0.0):
        transport.min_interval_s = interval
        typist = Typist(transport, layout="us", key_delay_s=0.0)
        n0 = len(host.reports)
        t0 = time.monotonic()
        typist.type_text(TEXT_BENCH)
        await asyncio.to_thread(typist.wait_idle, 180.0)
        ok = await host.wait_reports(n0 + typist.reports_sent, 20.0)
        dt = time.monotonic() - t0
        decoded = decode(host.reports[n0:], "us", report_map)
        stage(f"throughput_{int(interval * 1000)}ms", all_arrived=ok, decoded=decoded,
              chars=len(TEXT_BENCH), seconds=round(dt, 2), chars_per_s=round(len(TEXT_BENCH) / dt, 1),
              reports_per_s=round(typist.reports_sent / dt, 1))

    # Hosts: the bonded host is listed and remembered; `use` prefers it.
    bonded = [h.address for h in await asyncio.to_thread(kb.hosts) if h.is_bonded]
    used, _connected = await asyncio.to_thread(kb.use, bonded[0])
    stage("hosts", bonded=bonded, last=kb.state.last, preferred=kb.state.preferred, used=used.address)

    # Outside the window: a host that is not bonded (any more) neither finds, pairs with nor reads the keyboard.
    await host.disconnect()
    forgotten = await asyncio.to_thread(kb.forget, bonded[0])
    await host.forget()  # the laptop forgets it too and tries to start over
    found = await host.find_any(10.0)
    discoverable_flag = await host.advertised_discoverable() if found else None
    pair_error = ""
    kicked = None
    report_map_error = ""
    if found:
        try:
            await host.pair(timeout=10.0)
        except Exception as e:  # noqa: BLE001
            pair_error = str(e)
        try:
            await host.read(defs.UUID_HID, defs.UUID_REPORT_MAP)
        except Exception as e:  # noqa: BLE001
            report_map_error = str(e)[:200]
        await asyncio.sleep(3.0)
        kicked = not any(h.connected for h in await asyncio.to_thread(kb.hosts))
    stage("security", forgotten=forgotten.address, found=found, discoverable_flag=discoverable_flag, pair_error=pair_error[:200],
          report_map_error=report_map_error, unbonded_host_disconnected=kicked,
          bonded_after=[h.address for h in await asyncio.to_thread(kb.hosts) if h.is_bonded],
          agent_requests=[(m, ok) for m, _d, ok in kb.agent.requests[agent_asked:]])
    await host.disconnect()
    await asyncio.to_thread(transport.close)
    await asyncio.to_thread(kb.close)
    stage("closed")


if __name__ == "__main__":
    threading.current_thread().name = "guest"
    sys.exit(run_guest(run, 420, RESULT, log))

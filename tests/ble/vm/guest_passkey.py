"""Runs INSIDE the qemu guest (see tests/ble/test_passkey_vm.py): pairing by a spoken passkey, with real bluetoothd
and the kernel's SMP on both sides.

The keyboard (hci0) is built by open_ble_keyboard with the default ``[bluetooth] pairing = "passkey"``; the host
(hci1) is a BlueZ client whose agent has a display (KeyboardDisplay), so LE Secure Connections runs Passkey Entry:
the host's kernel picks six digits and BlueZ shows them on the host's agent (DisplayPasskey), and asks the
keyboard's agent for them (RequestPasskey). The person who reads the code and says it, and the box's ears (the
project's passkey listener with real whisper.cpp), run on the machine outside the VM (whisper.cpp is ~100x slower
under this emulator: one decode would take minutes, the host gives 30 s). They meet here through the shared
directory ``$STTKB_VM_OUT/ears``:

    shown-N.K.json    the guest: what the host's screen shows in attempt N, try K (the person reads it)
    request-N.K.json  the guest: the keyboard's agent was asked for the code (the box starts listening)
    answer-N.K.json   outside: what the ears heard ({"passkey": "123456"} or {"passkey": null})

A person whose code was misheard tries again inside the same window (the host's Pair again), as a user would:
the spoken attempts get up to :data:`TRIES` tries, and the result says how many each took (tiny.en mishears some
espeak-ng digits; the listener then answers nothing rather than a wrong code, and the pairing fails cleanly).

The keyboard's passkey handler is the only stand-in for the daemon: it writes the request and answers with what
the ears heard, nothing else. Every attempt is recorded in result.json for the test to check.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sttkb.config.keyboard import BluetoothSettings
from sttkb.gadget.ble import defs
from sttkb.gadget.ble.keyboard import open_ble_keyboard
from sttkb.gadget.typist import Typist
from sttkb.keyboard import PasskeyRequest
from tests.ble.vm.guest_e2e import TEXT_US, decode
from tests.ble.vm.guest_run import OUT, run_guest, write_result
from tests.ble.vm.host import Host

EARS = OUT / "ears"
log = logging.getLogger("vm-guest")
RESULT: dict = {"stages": []}


@dataclass(frozen=True)
class Attempt:
    """One pairing attempt: how the person answers (``say``: "code", "wrong" digits, or None = silence), in which
    espeak-ng ``voice`` and ``way`` (see tests/ble/test_passkey_vm.py), with which host agent and box mode."""

    name: str
    say: str | None = "code"
    voice: str = "en-us"
    way: str = "each"
    host_capability: str = "KeyboardDisplay"
    box_pairing: str = "passkey"
    host_sc: bool = True     # False: the host's controller has LE Secure Connections off (legacy pairing)
    retry: bool = True       # the person says the code again after a failed pairing (up to TRIES)

    @property
    def tries(self) -> int:
        return TRIES if self.say == "code" and self.retry else 1


TRIES = 8
"""Tries of a spoken attempt (the person says the code again after a failed pairing, in the same window). Measured
natively on 10 random codes each (scripted espeak-ng, tiny.en q8_0): en-us pairs 10, en-us+f3 one by one 9,
en-us+m3 in groups 6 heard right; 8 tries leave well under 1 % for a run to fail by chance."""

ATTEMPTS = (
    Attempt("silence", say=None),                       # nobody says anything: the request ends, the window stays
    Attempt("wrong", say="wrong"),                      # other digits: pairing fails, nothing is bonded
    Attempt("each", voice="en-us", way="each"),         # "four, seven, two, nine, one, three" ("oh" for 0)
    Attempt("digits", voice="en-us+m3", way="digits"),  # "four seven two, nine one three" ("double" for a repeat)
    Attempt("pairs", voice="en-us", way="pairs"),       # "forty seven, twenty nine, thirteen"
    Attempt("just-works-bond", say=None, host_capability="NoInputNoOutput"),  # the default's fallback: bonds
    Attempt("legacy-host", box_pairing="passkey-only", host_sc=False, retry=False),  # legacy pairing: refused
    Attempt("secure-host", voice="en-us+f3", box_pairing="passkey-only"),  # a code over Secure Connections: pairs
    Attempt("just-works-host", say=None, host_capability="NoInputNoOutput", box_pairing="passkey-only"),
)
"""After "just-works-bond" the keyboard restarts in passkey-only and that host, still bonded, tries to read the
HID service ("old_bond" in the result): it must read nothing."""


def stage(label: str, /, **info) -> None:
    RESULT["stages"].append(label)
    RESULT.update({f"{label}.{k}": v for k, v in info.items()})
    log.info("STAGE %s %s", label, {k: v for k, v in info.items() if k != "passkey_shown"})
    write_result(RESULT)


def _write(name: str, data: dict) -> None:
    tmp = EARS / f".{name}.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, EARS / name)


class EarsBridge:
    """The keyboard's passkey handler in this guest: tell the ears outside, answer with what they heard."""

    def __init__(self) -> None:
        self.key = ""                    # "N.K": attempt N, try K
        self.timings: dict[str, dict] = {}

    def handle(self, request: PasskeyRequest) -> None:
        key = self.key
        t0 = time.monotonic()
        _write(f"request-{key}.json", {"host": request.host, "seconds_left": round(request.seconds_left(), 1)})
        threading.Thread(target=self._answer, args=(key, request, t0), daemon=True).start()

    def _answer(self, n: str, request: PasskeyRequest, t0: float) -> None:
        path = EARS / f"answer-{n}.json"
        while not request.done and not path.exists():
            time.sleep(0.05)
        answered = False
        if path.exists():
            answered = request.answer(json.loads(path.read_text())["passkey"])
        self.timings[n] = {"request_to_answer_s": round(time.monotonic() - t0, 2), "answered": answered,
                           "outcome": request.outcome}


def bond_info(adapter_address: str, host_address: str) -> dict:
    """bluetoothd's stored keys for the host (key values left out): {section: {field: value}}."""
    path = Path("/var/lib/bluetooth") / adapter_address / host_address / "info"
    if not path.exists():
        return {}
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return {s: {k: v for k, v in parser[s].items() if k != "Key"} for s in parser.sections()
            if "Key" in s or s == "General"}


def host_secure_connections(on: bool) -> None:
    """Switch LE Secure Connections on the host's controller (hci1) through the kernel's management API: off, its
    kernel pairs the legacy way, as a Bluetooth 4.0/4.1 host does."""
    state = "on" if on else "off"
    for args in (["power", "off"], ["sc", state], ["power", "on"]):
        subprocess.run(["btmgmt", "--index", "1", *args], capture_output=True, timeout=20)
    for _ in range(50):
        if "UP RUNNING" in subprocess.run(["hciconfig", "hci1"], capture_output=True, text=True).stdout:
            return
        time.sleep(0.1)


def adapter_address(name: str) -> str:
    out = subprocess.run(["hciconfig", name], capture_output=True, text=True).stdout
    return out.split("BD Address: ", 1)[1].split()[0]


async def attempt(n: int, spec: Attempt, kb, ears: EarsBridge) -> Host:
    shown: list[int] = []

    def on_display(passkey: int) -> None:
        shown.append(passkey)
        _write(f"shown-{ears.key}.json", {"passkey": f"{passkey:06d}"})

    window: list[bool] = []
    await asyncio.to_thread(kb.open_pairing_window, 120.0, window.append)
    await asyncio.to_thread(host_secure_connections, spec.host_sc)
    host = Host("hci1", spec.host_capability, on_display=on_display)
    await host.open()
    await host.find(30.0)
    tries: list[dict] = []
    for k in range(spec.tries):
        ears.key = key = f"{n}.{k}"
        t0 = time.monotonic()
        error = ""
        try:
            await host.pair(timeout=30.0)
        except Exception as e:  # noqa: BLE001 - a refused pairing is an expected outcome
            error = str(e)[:300]
        took = round(time.monotonic() - t0, 1)
        for _ in range(40):   # the agent's answer (or its end) is recorded a moment after Pair returns
            if key in ears.timings or not (EARS / f"request-{key}.json").exists():
                break
            await asyncio.sleep(0.1)
        tries.append({"error": error, "pair_seconds": took, "asked": (EARS / f"request-{key}.json").exists(),
                      **ears.timings.get(key, {})})
        if not error:
            break
    for _ in range(50):   # the bonded signal reaches the keyboard a moment after the host's Pair returns
        if window or tries[-1]["error"]:
            break
        await asyncio.sleep(0.1)
    bonded = [h.address for h in await asyncio.to_thread(kb.hosts) if h.is_bonded]
    info = {a: bond_info(adapter_address("hci0"), a) for a in bonded}
    stage(spec.name, tries=tries, host_paired=bool(await host.prop("Paired")), box_bonded=bonded, bond_info=info,
          shown=len(shown), window_result=window, window_open_after=kb.pairing_window_open,
          pairing_recorded=dict(kb.state.pairing), **tries[-1])
    return host


async def forget_both(kb, host: Host) -> None:
    for address in [h.address for h in await asyncio.to_thread(kb.hosts) if h.is_bonded]:
        await asyncio.to_thread(kb.forget, address)
    if host.device_path:
        await host.disconnect()
        await host.forget()
    await host.close()
    if kb.pairing_window_open:
        await asyncio.to_thread(kb.close_pairing_window)


async def run() -> None:
    EARS.mkdir(exist_ok=True)
    ears = EarsBridge()
    kb = transport = None
    mode = ""
    for n, spec in enumerate(ATTEMPTS):
        if spec.box_pairing != mode:
            if transport is not None:
                await asyncio.to_thread(transport.close)
                await asyncio.to_thread(kb.close)
            settings = BluetoothSettings(name="sttkb vm keyboard", adapter="hci0", pairing=spec.box_pairing,
                                         reconnect=False, reconnect_settle_s=4.0)
            kb, transport = await asyncio.to_thread(open_ble_keyboard, settings, state_dir="/tmp/sttkb-state")
            kb.on_passkey_request(ears.handle)
            mode = spec.box_pairing
        host = await attempt(n, spec, kb, ears)
        if spec.name == "pairs" and await host.prop("Paired"):
            await type_text(kb, transport, host)
        if spec.name == "just-works-bond" and await host.prop("Paired"):
            kb, transport = await old_bond_under_passkey_only(kb, transport, host, ears)
            mode = "passkey-only"
        await forget_both(kb, host)
    await asyncio.to_thread(transport.close)
    await asyncio.to_thread(kb.close)
    stage("closed")


async def old_bond_under_passkey_only(kb, transport, host: Host, ears: EarsBridge):
    """The keyboard restarts with pairing = "passkey-only"; the host bonded by Just Works connects again and reads
    the Report Map: refused (the secure-* flags need an authenticated Secure Connections key)."""
    await host.disconnect()
    await asyncio.to_thread(transport.close)
    await asyncio.to_thread(kb.close)
    settings = BluetoothSettings(name="sttkb vm keyboard", adapter="hci0", pairing="passkey-only",
                                 reconnect=False, reconnect_settle_s=4.0)
    kb, transport = await asyncio.to_thread(open_ble_keyboard, settings, state_dir="/tmp/sttkb-state")
    kb.on_passkey_request(ears.handle)
    # With one bluetoothd for both controllers, the host side's automatic security upgrade uses the default agent's
    # capability (the keyboard's, KeyboardOnly), so it may run passkey entry and the keyboard gets asked: the
    # person outside answers requests of this stage with nothing at once.
    ears.key = "old-bond"
    read_error = ""
    try:
        await host.connect(attempts=2, timeout=20.0)
        report_map = await host.read(defs.UUID_HID, defs.UUID_REPORT_MAP)
    except Exception as e:  # noqa: BLE001 - refused is the expected outcome
        read_error, report_map = str(e)[:300], b""
    stage("old_bond", read_error=read_error, read_bytes=len(report_map),
          ready=await asyncio.to_thread(kb.wait_ready, 3.0))
    return kb, transport


async def type_text(kb, transport, host: Host) -> None:
    """After a passkey pairing the host reads the HID service and the keyboard types to it."""
    if not await host.prop("Connected"):
        await host.connect()
    report_map = await host.read(defs.UUID_HID, defs.UUID_REPORT_MAP)
    await host.subscribe()
    ready = await asyncio.to_thread(kb.wait_ready, 20.0)
    typist = Typist(transport, layout="us", key_delay_s=0.0)
    n0 = len(host.reports)
    typist.type_text(TEXT_US)
    idle = await asyncio.to_thread(typist.wait_idle, 120.0)
    await host.wait_reports(n0 + typist.reports_sent, 10.0)
    stage("typed", ready=ready, idle=idle, decoded=decode(host.reports[n0:], "us", report_map))
    typist.close()


def bluetoothd_evidence() -> dict:
    """Did bluetoothd die under the guest (and what did it say last)? The test tells an upstream crash from ours."""
    try:
        os.kill(int(Path("/run/bluetoothd.pid").read_text()), 0)
        return {"bluetoothd_died": False}
    except (OSError, ValueError):
        lines = (OUT / "bluetoothd.log").read_text(errors="replace").splitlines() \
            if (OUT / "bluetoothd.log").exists() else []
        return {"bluetoothd_died": True, "bluetoothd_assertion": next(
            (line for line in reversed(lines) if "assertion" in line), "")}


if __name__ == "__main__":
    threading.current_thread().name = "guest"
    sys.exit(run_guest(run, 600, RESULT, log, evidence=bluetoothd_evidence))

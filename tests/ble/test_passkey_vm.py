"""Pairing by a spoken code, end to end: real bluetoothd 5.66 and the kernel's LE Secure Connections on both sides
(two virtual controllers in a qemu VM, tests/ble/vm/guest_passkey.py), espeak-ng as the person reading the code
off the host's screen, and the project's passkey listener with real whisper.cpp as the box's ears.

Where the parts run: Bluetooth in the VM; the person and the ears on this machine, beside it. whisper.cpp runs
about 100x slower under the VM's software emulation (one decode takes minutes; tests/daemon/test_run_vm.py), and
the host gives the keyboard 30 s. The two sides meet through the VM's shared result directory: the guest writes
what the host's screen shows and that the keyboard was asked; the person synthesizes the code in a voice and a way
of saying it, the ears hear it as a microphone would (the audio is fed in real time; the physical microphone is
the one thing replaced), and their answer goes back to the keyboard's agent.

Attempts, in one boot (see ATTEMPTS in the guest): nobody speaks (the request ends, nothing bonds, the window
stays open), wrong digits (pairing fails, nothing bonds), then three voices and three ways of saying the code
(each pairs; bluetoothd's stored key for the host is an authenticated Secure Connections one; the last one types
text that the guest kernel's HID layer turns back into exactly the input), and a host without a display against
``passkey-only`` (refused, nothing asked), a host pairing the legacy way (Secure Connections off on its controller:
refused before the code is asked) and one pairing with Secure Connections (pairs), after a host that bonded Just Works under the default mode finds it
can read nothing once the keyboard is switched to ``passkey-only``. tiny.en mishears some espeak-ng digits (measured: about one code in
five or six said digit by digit): the listener then answers nothing, or six wrong digits that the host's SMP
refuses (asserted on every try: a misheard code never pairs), and the person says the code again in the same
window, as a user would, up to TRIES times. The time from
RequestPasskey to the answer is printed (run with -s).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.ble.vm.guest_e2e import TEXT_US
from tests.ble.vm.guest_passkey import ATTEMPTS
from tests.ble.vm_boot import guest_result, require_bluez, stack_env
from tests.speech import room, speak
from tests.vm.harness import new_outdir, require_vm, run_in_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(1500)]

GUEST = """\
tests/ble/vm/ble_stack.sh input,hog || exit 3
.venv/bin/python -m tests.ble.vm.guest_passkey
"""

WORDS = "zero one two three four five six seven eight nine".split()
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
READING_S = 1.5   # the user finds the code on the screen before saying it (seconds)
WPM = 140         # words per minute: read out carefully
CHUNK_S = 0.03    # what a microphone delivers at a time
AUTHENTICATED_SC = "3"
"""bluetoothd's info file, ``Authenticated`` of each long-term key group (BlueZ 5.66 writes the Secure Connections
key as [PeripheralLongTermKey] and [SlaveLongTermKey]): the kernel's key type, mgmt's LTK types 0 unauthenticated
legacy, 1 authenticated legacy, 2 unauthenticated P-256 (Secure Connections, Just Works), 3 authenticated P-256
(Secure Connections with a passkey)."""


def _digit(d: str) -> str:
    return "oh" if d == "0" else WORDS[int(d)]


def _digits(group: str) -> str:
    out, i = [], 0
    while i < len(group):
        if i + 1 < len(group) and group[i + 1] == group[i]:
            out.append(f"double {_digit(group[i])}")
            i += 2
        else:
            out.append(_digit(group[i]))
            i += 1
    return " ".join(out)


def _pair(two: str) -> str:
    if two == "00":
        return "double oh"
    if two[0] == "0":
        return f"oh {WORDS[int(two[1])]}"
    if two[0] == "1":
        return TEENS[int(two[1])]
    return TENS[int(two[0])] + ("" if two[1] == "0" else f" {WORDS[int(two[1])]}")


def way_of_saying(code: str, way: str) -> str:
    """What the person says for ``code``: "each" digit on its own ("four, seven, two, ..."; "oh" for 0), "digits"
    one by one in two groups ("oh" for 0, "double" for a repeat),
    "groups" two three-digit figures that espeak reads as numbers (a group starting with 0 digit by digit), or
    "pairs" three two-digit numbers ("forty seven, oh five, thirteen")."""
    halves = (code[:3], code[3:])
    if way == "each":
        return ", ".join(_digit(d) for d in code)
    if way == "digits":
        return ", ".join(_digits(h) for h in halves)
    if way == "groups":
        return ", ".join(h if h[0] != "0" else _digits(h) for h in halves)
    if way == "pairs":
        return ", ".join(_pair(code[i:i + 2]) for i in (0, 2, 4))
    raise ValueError(way)


def wrong(code: str) -> str:
    """Another code: every digit one higher."""
    return "".join(str((int(d) + 1) % 10) for d in code)


class PersonAndEars(threading.Thread):
    """Outside the VM: for each request the keyboard's agent got, the person reads the host's screen and says the
    code (or wrong digits, or nothing), and the box's listener hears it live and answers."""

    def __init__(self, ears_dir: Path, engine) -> None:
        super().__init__(name="person-and-ears", daemon=True)
        self.dir, self.engine = ears_dir, engine
        self.stop = threading.Event()
        self.log: dict[int, list[dict]] = {}   # attempt -> what happened on each try
        self.failure = ""

    def run(self) -> None:
        try:
            done: set[str] = set()
            while not self.stop.is_set():
                for request in sorted(self.dir.glob("request-*.json")):
                    key = request.name[len("request-"):-len(".json")]
                    if key in done:
                        continue
                    done.add(key)
                    if key.split(".")[0].isdigit():
                        self._answer(key, json.loads(request.read_text()))
                    else:   # not an attempt's (see old_bond_under_passkey_only): nobody says anything
                        self._write(key, None)
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failure = f"{type(e).__name__}: {e}"

    def _write(self, key: str, passkey: str | None) -> None:
        (self.dir / f".answer-{key}.tmp").write_text(json.dumps({"passkey": passkey}))
        (self.dir / f".answer-{key}.tmp").rename(self.dir / f"answer-{key}.json")

    def _answer(self, key: str, request: dict) -> None:
        from sttkb.passkey_listener import hear_passkey
        n = int(key.split(".")[0])
        spec = ATTEMPTS[n]
        shown_path = self.dir / f"shown-{key}.json"
        t0 = time.monotonic()
        while not shown_path.exists() and time.monotonic() - t0 < 5.0:
            time.sleep(0.02)
        shown = json.loads(shown_path.read_text())["passkey"] if shown_path.exists() else None
        deadline = t0 + request["seconds_left"] - 1.0
        said = None
        audio = room(READING_S, seed=n)
        if spec.say is not None and shown is not None:
            said = shown if spec.say == "code" else wrong(shown)
            audio = np.concatenate([audio, speak(way_of_saying(said, spec.way), voice=spec.voice, wpm=WPM)])
        speech_end = t0 + len(audio) / 16000
        heard = hear_passkey(_live(audio, deadline, seed=n), self.engine, deadline=deadline)
        answered = time.monotonic()
        self._write(key, heard)
        self.log.setdefault(n, []).append({
            "said_the_shown_code": said is not None and said == shown, "said": said is not None,
            "heard_what_was_said": heard is not None and heard == said, "heard_something": heard is not None,
            "heard_a_wrong_code": heard is not None and heard != said,
            "end_of_speech_to_answer_s": round(answered - speech_end, 2) if said else None})


def _live(audio: np.ndarray, deadline: float, seed: int):
    """``audio`` then room noise until ``deadline``, in microphone-sized chunks at the pace a microphone gives
    them."""
    n = int(CHUNK_S * 16000)
    start = time.monotonic()
    i = 0
    while time.monotonic() < deadline:
        chunk = audio[i * n:(i + 1) * n] if i * n < len(audio) else room(CHUNK_S, seed=seed + i)
        wait = start + i * CHUNK_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield chunk
        i += 1


@pytest.fixture(scope="module")
def vm(default_model):
    require_vm()
    require_bluez()
    from sttkb.asr.engine import WhisperEngine
    engine = WhisperEngine(default_model)
    outdir = new_outdir()
    (outdir / "ears").mkdir()
    (outdir / "ears").chmod(0o777)
    person = PersonAndEars(outdir / "ears", engine)
    person.start()
    try:
        res = run_in_vm(GUEST, timeout=900, env=stack_env(), outdir=outdir)
    finally:
        person.stop.set()
        person.join(timeout=60)
    data = guest_result(res)
    data.update(_person=person.log, _failure=person.failure)
    return data


UPSTREAM_CRASH = "_dbus_check_is_valid_path"
"""bluetoothd 5.66 (Debian 12, the box's) sometimes aborts on this libdbus assertion right after a passkey pairing
completes (seen once in about six boots here; the same assertion in bluez/bluez#767, open upstream). A stage the
guest never reached because of it is an expected failure naming that evidence; any other stop fails."""


def need(vm, stage: str) -> None:
    if stage not in vm["stages"] and vm.get("bluetoothd_died") and UPSTREAM_CRASH in vm.get("bluetoothd_assertion", ""):
        pytest.xfail(f"bluetoothd aborted before stage {stage!r}: {vm['bluetoothd_assertion']!r} (bluez/bluez#767)")
    if stage not in vm["stages"] or vm["_failure"]:
        pytest.fail(f"the guest stopped before stage {stage!r}: {vm.get('error')} {vm['_failure']}\n"
                    f"logs: {vm['_outdir']}\n{vm.get('traceback', '')}\n{vm['_console']}")


def _index(name: str) -> int:
    return [a.name for a in ATTEMPTS].index(name)


def _attempt(vm, name: str) -> dict:
    need(vm, name)
    return {k.split(".", 1)[1]: v for k, v in vm.items() if k.startswith(f"{name}.")}


@pytest.mark.parametrize("name", ["each", "digits", "pairs", "secure-host"])
def test_the_spoken_code_pairs_with_an_authenticated_key(vm, name):
    n = _index(name)
    got, person = _attempt(vm, name), vm["_person"].get(n, [])
    assert got["asked"] and got["shown"] >= 1, "the host showed a code and the keyboard was asked for it"
    assert person and all(p["said_the_shown_code"] for p in person), person
    assert len(person) == len(got["tries"]) and all(t["asked"] for t in got["tries"]), (person, got["tries"])
    for heard, try_ in zip(person, got["tries"]):
        if heard["heard_a_wrong_code"]:   # misheard digits that still make six: the host's SMP must refuse them
            assert try_["error"], f"a misheard code paired: {heard} {try_}"
    assert person[-1]["heard_what_was_said"], f"misheard on every one of {len(person)} tries: {person}"
    assert got["error"] == "" and got["host_paired"], got
    assert len(got["box_bonded"]) == 1 and got["window_result"] == [True]
    address = got["box_bonded"][0]
    ltks = {group: keys["Authenticated"] for group, keys in got["bond_info"][address].items()
            if group.endswith("LongTermKey")}
    assert ltks and set(ltks.values()) == {AUTHENTICATED_SC}, f"bluetoothd stored another kind of key: {ltks}"
    assert got["pairing_recorded"][address] == "passkey"
    print(f"\n{name} ({ATTEMPTS[n].voice}): paired on try {len(got['tries'])} of {len(person)} said; "
          f"RequestPasskey -> answer {got['request_to_answer_s']} s in the VM; end of speech -> answer "
          f"{person[-1]['end_of_speech_to_answer_s']} s; Pair() took {got['pair_seconds']} s")


def test_then_the_host_types_exactly_the_input(vm):
    need(vm, "typed")
    assert vm["typed.ready"] and vm["typed.idle"]
    assert vm["typed.decoded"] == TEXT_US


def test_wrong_digits_bond_nothing(vm):
    got, person = _attempt(vm, "wrong"), vm["_person"].get(_index("wrong"), [])
    assert got["asked"] and len(person) == 1 and person[0]["said"] and not person[0]["said_the_shown_code"]
    assert got["error"], "the host reports a failed pairing"
    assert not got["host_paired"] and got["box_bonded"] == []
    assert got["window_open_after"], "the user can try again inside the same window"


def test_silence_ends_the_request_and_keeps_the_window(vm):
    got, person = _attempt(vm, "silence"), vm["_person"].get(_index("silence"), [])
    assert got["asked"] and len(person) == 1 and not person[0]["heard_something"]
    assert got["outcome"] in ("refused", "timed out", "cancelled by the host"), got
    assert got["error"] and not got["host_paired"] and got["box_bonded"] == []
    assert got["window_open_after"]
    print(f"\nsilence: the request ended ({got['outcome']}) after {got['request_to_answer_s']} s")


def test_a_host_without_a_display_pairs_just_works_by_default(vm):
    got = _attempt(vm, "just-works-bond")
    assert not got["asked"] and got["error"] == "" and len(got["box_bonded"]) == 1, got
    address = got["box_bonded"][0]
    assert got["pairing_recorded"][address] == "just-works"
    ltks = {g: k["Authenticated"] for g, k in got["bond_info"][address].items() if g.endswith("LongTermKey")}
    assert set(ltks.values()) == {"2"}, f"not an unauthenticated P-256 (Just Works) key: {ltks}"


def test_an_old_just_works_bond_reads_nothing_under_passkey_only(vm):
    need(vm, "old_bond")
    assert vm["old_bond.read_bytes"] == 0 and vm["old_bond.read_error"], vm["old_bond.read_error"]
    assert not vm["old_bond.ready"], "the keyboard would type to a host that has no authenticated key"


def test_passkey_only_pairs_a_secure_connections_host_by_its_code(vm):
    got = _attempt(vm, "secure-host")
    assert got["asked"] and got["error"] == "" and got["host_paired"], got
    address = got["box_bonded"][0]
    ltks = {g: k["Authenticated"] for g, k in got["bond_info"][address].items() if g.endswith("LongTermKey")}
    assert set(ltks.values()) == {AUTHENTICATED_SC}, ltks


def test_passkey_only_refuses_legacy_pairing_before_the_code_is_asked(vm):
    """The host's controller has Secure Connections off: the SMP feature exchange (read on the box's HCI monitor)
    says legacy pairing, whose code an eavesdropper can brute-force; the box refuses before listening."""
    got = _attempt(vm, "legacy-host")
    assert got["shown"] >= 1, "the host did show a code (passkey entry, the legacy way)"
    assert not got["asked"] and got["error"] and got["box_bonded"] == [] and not got["host_paired"], got


def test_passkey_only_refuses_a_host_without_a_display(vm):
    got = _attempt(vm, "just-works-host")
    assert not got["asked"], "no code to enter: Just Works"
    assert got["error"] and got["box_bonded"] == []

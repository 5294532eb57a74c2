"""The daemon and a spoken Bluetooth pairing code (issue #14): the ``passkey`` state, its LED, and where the code
goes (into the request, nowhere else).

Real: the daemon, its state machine, capture hub, journal and keyboard (Typist → VirtualTransport). Test doubles:
the Bluetooth side (conftest's FakePairing keeps the daemon's handler; the test plays BlueZ by handing it a real
:class:`sttkb.keyboard.PasskeyRequest` and cancelling it), the scripted microphone, and ``hear_passkey``
(:class:`WordListener`, which hears the scripted words). The last test uses the real listener with real whisper.cpp
and espeak-ng speech as the microphone.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sttkb.daemon.button import HOLD_START, PRESS, Gesture
from sttkb.daemon.led import LogLed
from sttkb.keyboard import PasskeyRequest
from tests.daemon.conftest import Rig
from tests.polling import wait_for

DIGITS = {w: str(n) for n, w in enumerate("zero one two three four five six seven eight nine".split())}
SECRET = "472913"
SAID = ("four", "seven", "two", "nine", "one", "three")


class WordListener:
    """``Parts.hear_passkey`` stand-in: the digit words the scripted microphone delivers, six of them → the code;
    any other word → None; the end of the chunks or the deadline → None. Records how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, float]] = []
        self.returned = threading.Event()

    def __call__(self, chunks, transcriber, *, deadline):
        self.calls.append((transcriber, deadline))
        digits = ""
        try:
            for chunk in chunks:
                if time.monotonic() >= deadline:
                    return None
                if chunk.word is None:
                    continue
                if chunk.word not in DIGITS:
                    return None
                digits += DIGITS[chunk.word]
                if len(digits) == 6:
                    return digits
            return None
        finally:
            self.returned.set()


def ask(rig: Rig, timeout_s: float = 29.0) -> PasskeyRequest:
    """Play the Bluetooth side: a host shows a code and BlueZ asks the agent, which asks the daemon."""
    request = PasskeyRequest("Laptop", timeout_s)
    rig.pairing.passkey_handler(request)
    return request


@pytest.fixture
def listener():
    return WordListener()


@pytest.fixture
def prig(tmp_path, listener):
    r = Rig(tmp_path, hear_passkey=listener, led=LogLed())
    yield r
    r.close()


def open_window(rig: Rig) -> None:
    rig.daemon.command({"cmd": "pair"})
    rig.wait_state("pairing")


def test_the_code_said_in_the_window_answers_the_request_and_nothing_else(prig, listener, caplog):
    caplog.set_level(logging.DEBUG)
    open_window(prig)
    request = ask(prig)
    prig.wait_state("passkey")
    assert wait_for(lambda: prig.daemon.parts.led.current == "passkey", 10.0)
    status = prig.daemon.command({"cmd": "status"})
    assert status["state"] == "passkey" and status["passkey"]["host"] == "Laptop"
    assert 25 < status["passkey"]["seconds_left"] <= 29
    prig.mic.say(*SAID)
    assert request.wait(5) == SECRET and request.outcome == "answered"
    prig.wait_state("pairing")                         # the window stays open until a host pairs or it times out
    assert wait_for(lambda: prig.daemon.parts.led.current == "pairing", 10.0)
    assert prig.daemon.command({"cmd": "status"})["passkey"] is None
    assert listener.calls[0][0] is prig.transcriber    # the daemon's loaded model, no second one
    prig.pairing.on_done(True)                          # the host paired: the window closes
    prig.wait_state("idle")
    assert "passkey" in prig.daemon.parts.led.history
    time.sleep(0.2)
    assert prig.transport.text == "" and prig.daemon.typed_text == []
    assert prig.journal.entries() == []
    assert SECRET not in caplog.text and "four" not in caplog.text
    assert "pairing code for Laptop: answered" in caplog.text


def test_a_request_while_idle_goes_back_to_idle(prig):
    """The window was opened by another process (`sttkb bt pair`): the daemon would never hear it close."""
    request = ask(prig)
    prig.wait_state("passkey")
    prig.mic.say(*SAID)
    assert request.wait(5) == SECRET
    prig.wait_state("idle")


def test_a_cancelled_request_stops_listening_at_once(prig, listener):
    open_window(prig)
    request = ask(prig)
    prig.wait_state("passkey")
    prig.mic.say("four", "seven")
    request.cancel("cancelled by the host")
    prig.wait_state("pairing", timeout=5.0)          # at once, against the 29 s the request had left
    assert listener.returned.wait(5.0)                 # its capture ended: the listener returned
    assert request.wait(0) is None


def test_wrong_words_refuse_and_the_window_stays_usable(prig):
    open_window(prig)
    first = ask(prig)
    prig.wait_state("passkey")
    prig.mic.say("four", "seven", "banana")
    assert first.wait(5) is None and first.outcome == "refused"
    prig.wait_state("pairing")
    second = ask(prig)                                  # the user tries again while the window is open
    prig.wait_state("passkey")
    prig.mic.say(*SAID)
    assert second.wait(5) == SECRET
    prig.wait_state("pairing")


def test_a_busy_box_refuses_at_once(prig, listener, caplog):
    prig.daemon.gesture(Gesture(PRESS))
    prig.daemon.gesture(Gesture(HOLD_START))
    prig.wait_state("listening")
    with caplog.at_level(logging.WARNING):
        request = ask(prig)
        assert wait_for(lambda: request.done, 10.0)
    assert request.outcome == "refused" and request.wait(0) is None
    assert prig.daemon.state.value == "listening" and listener.calls == []
    assert "Laptop shows a pairing code, but the box is busy (listening): refused" in caplog.text


def test_a_press_refuses_the_code_and_closes_the_window(prig):
    open_window(prig)
    request = ask(prig)
    prig.wait_state("passkey")
    prig.daemon.gesture(Gesture(PRESS))
    assert wait_for(lambda: request.done, 10.0) and request.outcome == "refused"
    prig.wait_state("idle")
    assert prig.pairing.closed == 1


def test_the_deadline_refuses(tmp_path, listener):
    r = Rig(tmp_path, hear_passkey=listener)
    try:
        open_window(r)
        request = ask(r, timeout_s=0.5)
        assert request.wait(3) is None and request.outcome == "refused"
        r.wait_state("pairing")
    finally:
        r.close()


def test_no_listener_refuses(tmp_path, caplog):
    r = Rig(tmp_path)  # e.g. `sttkb run --simulate`: no Bluetooth, no hear_passkey
    try:
        open_window(r)
        with caplog.at_level(logging.ERROR):
            request = ask(r)
            assert wait_for(lambda: request.done, 10.0)
        assert request.outcome == "refused"
        r.wait_state("pairing")
        assert "cannot listen for one: refused" in caplog.text
    finally:
        r.close()


def test_losing_the_microphone_refuses_the_code(prig):
    open_window(prig)
    request = ask(prig)
    prig.wait_state("passkey")
    prig.mic.plugged = False
    prig.wait_state("error")
    assert wait_for(lambda: request.done, 10.0) and request.outcome == "refused"


def test_nothing_can_be_typed_while_the_code_is_said(prig):
    open_window(prig)
    ask(prig)
    prig.wait_state("passkey")
    reply = prig.daemon.command({"cmd": "type", "text": "hello"})
    assert not reply["ok"] and "busy (passkey)" in reply["error"]
    time.sleep(0.2)
    assert prig.transport.text == ""


def test_a_second_code_while_one_is_said_is_refused(prig):
    open_window(prig)
    first = ask(prig)
    prig.wait_state("passkey")
    second = ask(prig)
    assert wait_for(lambda: second.done, 10.0) and second.outcome == "refused"
    assert not first.done and prig.daemon.state.value == "passkey"
    prig.mic.say(*SAID)
    assert first.wait(5) == SECRET


def test_a_window_that_times_out_while_the_code_is_said_ends_in_idle(prig):
    open_window(prig)
    request = ask(prig)
    prig.wait_state("passkey")
    prig.pairing.on_done(False)                         # the window's time is up; the request runs its course
    time.sleep(0.1)
    assert prig.daemon.state.value == "passkey"
    prig.mic.say(*SAID)
    assert request.wait(5) == SECRET
    prig.wait_state("idle")


def test_sttkb_status_shows_the_passkey_state(tmp_path, listener, monkeypatch, capsys):
    from sttkb.cli import main
    from sttkb.daemon.control import ControlServer
    with tempfile.TemporaryDirectory(prefix="sttkb-c") as d:
        sock = Path(d) / "control.sock"
        monkeypatch.setenv("STTKB_CONTROL_SOCKET", str(sock))
        rig = Rig(tmp_path, hear_passkey=listener)
        server = ControlServer(rig.daemon.command, sock, group=None)
        server.start()
        try:
            open_window(rig)
            ask(rig)
            rig.wait_state("passkey")
            assert main(["status"]) == 0
            out = capsys.readouterr().out
            assert "state:     passkey" in out
            assert re.search(r"pairing:   say the code Laptop shows \(2[5-9] s left\)", out)
        finally:
            server.close()
            rig.close()


# -- the real listener --------------------------------------------------------------------------------------------
class LiveMic:
    """The physical microphone's stand-in (the one part that cannot exist here): room noise in 30 ms chunks at a
    microphone's pace, and whatever :meth:`play` is given, as if said into it."""

    CHUNK = 480

    def __init__(self) -> None:
        from tests.speech import room
        self.noise = room(10.0, seed=7)
        self.lock = threading.Lock()
        self.playing: np.ndarray | None = None
        self.played_until: float | None = None     # monotonic time the last played sample was delivered
        self._stop = threading.Event()

    def play(self, audio: np.ndarray) -> None:
        with self.lock:
            self.playing = audio

    def stop(self) -> None:
        self._stop.set()

    def chunks(self):
        start, i, pos = time.monotonic(), 0, 0
        while not self._stop.is_set():
            i += 1
            delay = start + i * self.CHUNK / 16000 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            at = (i * self.CHUNK) % (len(self.noise) - self.CHUNK)
            chunk = self.noise[at:at + self.CHUNK].copy()
            with self.lock:
                if self.playing is not None:
                    part = self.playing[pos:pos + self.CHUNK]
                    chunk[:len(part)] += part
                    pos += self.CHUNK
                    if pos >= len(self.playing):
                        self.playing, pos, self.played_until = None, 0, time.monotonic()
            yield chunk


@pytest.mark.slow
def test_the_real_listener_hears_a_code_said_into_the_microphone(tmp_path, default_model, caplog):
    """hear_passkey wired as `sttkb run` wires it (sttkb.cli.daemon), real whisper.cpp on the embedded default
    model, espeak-ng speech played into the microphone stand-in."""
    from tests.speech import have_espeak, room, speak
    if not have_espeak():
        pytest.skip("espeak-ng missing")
    from sttkb.asr.engine import WhisperEngine
    from sttkb.chain import Transcriber
    from sttkb.cli.daemon import passkey_listener
    from sttkb.config import Config
    from sttkb.config.asr import AsrSettings
    from sttkb.daemon.journal import Journal
    from sttkb.daemon.service import Daemon, Parts
    from sttkb.gadget.typist import Typist
    from sttkb.gadget.virtual import VirtualTransport
    from tests.daemon.conftest import FakePairing, make_config

    caplog.set_level(logging.DEBUG)
    engine = WhisperEngine(default_model, AsrSettings(threads=2))
    engine.warm_up()
    heard: list[str] = []
    decode = engine.decode_private
    engine.decode_private = lambda seg, **kw: heard.append(decode(seg, **kw)) or heard[-1]
    mic, pairing, transport = LiveMic(), FakePairing(), VirtualTransport("us")
    keyboard = Typist(transport, "us", "transliterate", 0.0)
    journal = Journal(tmp_path / "journal.jsonl")
    config = make_config()
    daemon = Daemon(config, Parts(keyboard=keyboard, transcriber=Transcriber(Config(), engine=engine),
                                  open_mic=lambda: mic, pairing=pairing, journal=journal, led=LogLed(),
                                  hear_passkey=passkey_listener(config)))
    daemon.start()
    loop = threading.Thread(target=daemon.run, daemon=True)
    loop.start()
    try:
        daemon.command({"cmd": "pair"})
        request = PasskeyRequest("Laptop", 29.0)
        pairing.passkey_handler(request)
        assert wait_for(lambda: daemon.state.value == "passkey", 10.0)
        asked_at = time.monotonic()
        mic.play(np.concatenate([room(0.5), speak("four seven two nine one three", "en-us", 160)]))
        assert request.wait(29) == SECRET
        answered_at = time.monotonic()
        print(f"\nthe real listener in the daemon: answered {answered_at - mic.played_until:.2f} s after the end of "
              f"speech, {answered_at - asked_at:.2f} s after the request")
        assert wait_for(lambda: daemon.state.value == "pairing", 10.0)
        # the loop thread shows the state on the LED just after entering it: wait for that, do not race it
        assert wait_for(lambda: daemon.parts.led.history[-2:] == ["passkey", "pairing"], 10.0), \
            daemon.parts.led.history
        time.sleep(0.2)
        assert transport.text == "" and journal.entries() == []
        assert heard and all(text not in caplog.text for text in heard)
        assert SECRET not in caplog.text
    finally:
        daemon.shutdown()
        loop.join(5)
        daemon.close()
        keyboard.close()
        engine.close()

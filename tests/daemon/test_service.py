"""The daemon end to end with the real keyboard stack (Typist → VirtualTransport → decoded host text), a
scripted microphone and a word-level transcriber (see conftest.py for why those two are stand-ins)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

from sttkb.daemon.button import HOLD_END, HOLD_START, LONG_HOLD, PRESS, TAPS, Gesture
from sttkb.daemon.journal import CANCELLED, TYPED, UNTYPED, Journal, read_entries
from sttkb.daemon.state import State
from tests.daemon.conftest import CHUNK_S, Rig, WordTranscriber, make_config
from tests.polling import wait_for


def hold(rig: Rig) -> None:
    rig.daemon.gesture(Gesture(PRESS))
    rig.daemon.gesture(Gesture(HOLD_START))
    rig.wait_state("listening")


def said(rig: Rig) -> None:
    """Wait until the microphone has delivered everything said so far."""
    while rig.mic.words:
        time.sleep(0.02)
    time.sleep(0.06)


def release(rig: Rig) -> None:
    rig.daemon.gesture(Gesture(HOLD_END, held_s=1.0))


def test_push_to_talk_types_each_segment_while_held_and_the_tail_after_release(rig):
    hold(rig)
    rig.mic.say("hello", "world")
    rig.wait_text("hello world ")  # typed while the button is still held
    assert rig.daemon.state is State.LISTENING
    rig.mic.say("second")
    time.sleep(0.12)
    release(rig)  # right after the word: only the tail is left
    rig.wait_state("idle")
    assert rig.transport.text == "hello world second "
    entries = rig.journal.entries()
    assert [(e.text, e.state) for e in entries] == [("hello world ", TYPED), ("second ", TYPED)]
    assert len(rig.daemon.final_latencies) == 1 and 0 < rig.daemon.final_latencies[0] < 2.0
    assert len(rig.daemon.latencies) == 2


def test_the_journal_has_the_text_on_disk_before_the_first_key(tmp_path):
    r = Rig(tmp_path)
    seen = []
    real_type = r.keyboard.type_text

    def checking_type(text):
        on_disk = read_entries(tmp_path / "journal.jsonl")
        seen.append([(e.text, e.state) for e in on_disk][-1])
        real_type(text)

    r.keyboard.type_text = checking_type
    try:
        hold(r)
        r.mic.say("private")
        r.wait_text("private ")
        assert seen == [("private ", UNTYPED)]
    finally:
        r.close()


def test_untyped_text_from_before_a_crash_is_never_typed_by_itself(tmp_path):
    j = Journal(tmp_path / "journal.jsonl")
    j.append("said before the power went ", 7)
    j.close()
    r = Rig(tmp_path)
    try:
        time.sleep(0.5)
        assert r.transport.text == ""
        status = r.daemon.status()
        assert status["untyped"] == 1
        r.daemon.gesture(Gesture(TAPS, count=3))  # triple press: retype offers it
        r.wait_text("said before the power went ")
        r.wait_state("idle")
        assert r.journal.entries()[0].state == TYPED
    finally:
        r.close()


def test_a_press_while_typing_cancels_the_rest(tmp_path):
    r = Rig(tmp_path, key_delay_s=0.01)
    try:
        hold(r)
        r.mic.say(*["word"] * 30)
        while r.mic.words:
            time.sleep(0.05)
        release(r)
        r.wait_state("typing", timeout=8)
        time.sleep(0.2)
        r.daemon.gesture(Gesture(PRESS))
        r.wait_state("idle")
        time.sleep(0.2)
        typed = r.transport.text
        assert 0 < len(typed) < len("word " * 30)
        (entry,) = r.journal.entries()
        assert entry.state == CANCELLED and typed + entry.left == "word " * 30
    finally:
        r.close()


def test_silence_types_nothing(rig):
    hold(rig)
    time.sleep(0.5)
    release(rig)
    rig.wait_state("idle")
    assert rig.transport.text == ""
    assert rig.journal.entries() == []


def test_handsfree_stops_after_the_silence_time(rig):
    rig.daemon.gesture(Gesture(TAPS, count=2))
    rig.wait_state("handsfree")
    rig.mic.say("no", "hands")
    rig.wait_text("no hands ")
    rig.wait_state("idle", timeout=4.0)  # handsfree_silence_s = 2 in the test config
    assert rig.transport.text == "no hands "
    assert rig.transcriber.awaited_at_pause      # each phrase is awaited at its pause: no beam decode delays it


def handsfree_rig(tmp_path, silence_s: float = 3.0) -> Rig:
    """A rig whose hands-free mode stops after ``silence_s`` of silence."""
    c = make_config()
    button = dataclasses.replace(c.button, handsfree_silence_s=silence_s)
    return Rig(tmp_path, config=dataclasses.replace(c, button=button))


def test_handsfree_silence_counts_from_the_speech_not_from_a_held_sentence_end(tmp_path):
    """The chain types a held "." only after a pause ([text] hold_sentence_end_s): that is no speech, so it must
    not restart the hands-free silence clock (3 s here, from the words; the mark comes 1.5 s after them, so a
    restarted clock would stop 4.5 s after the words)."""
    r = handsfree_rig(tmp_path)
    r.transcriber.held_mark_after = int(1.5 / CHUNK_S)
    try:
        r.daemon.gesture(Gesture(TAPS, count=2))
        r.wait_state("handsfree")
        r.mic.say("no", "hands")
        r.wait_text("no hands")
        typed_at = time.monotonic()
        r.wait_text("no hands. ", timeout=5.0)
        r.wait_state("idle", timeout=6.0)
        assert time.monotonic() - typed_at < 3.8, "the held mark restarted the silence clock"
        assert r.transport.text == "no hands. "
    finally:
        r.close()


def test_handsfree_silence_counts_from_the_speech_of_words_typed_after_a_silence(tmp_path):
    """With [text] wait_for_next_phrase a phrase is typed when the next one comes or, if none does, after a silence:
    those words were spoken before the silence, so the hands-free clock (3 s) counts from their speech, not from
    their typing (2 s later here: stopping 1 s after they are typed, not 3 s)."""
    r = handsfree_rig(tmp_path)
    r.transcriber.words_after = int(2.0 / CHUNK_S)
    try:
        r.daemon.gesture(Gesture(TAPS, count=2))
        r.wait_state("handsfree")
        r.mic.say("no", "hands")
        r.wait_text("no hands ")
        typed_at = time.monotonic()
        r.wait_state("idle", timeout=6.0)
        assert time.monotonic() - typed_at < 2.4, "typing the words restarted the silence clock"
        assert r.transport.text == "no hands "
    finally:
        r.close()


def test_hold_to_talk_is_awaited_at_the_release(rig):
    hold(rig)
    rig.mic.say("held")
    rig.wait_text("held ")
    release(rig)
    rig.wait_state("idle")
    assert rig.transcriber.awaited_at_pause is False   # [asr] beam_when_idle may use the time before the release


def test_mic_unplugged_goes_to_error_and_recovers_without_restart(rig, caplog):
    with caplog.at_level(logging.ERROR):
        rig.mic.plugged = False
        rig.wait_state("error")
    assert "microphone lost" in caplog.text
    rig.daemon.gesture(Gesture(HOLD_START))  # holding the button does nothing without a mic
    time.sleep(0.2)
    assert rig.daemon.state is State.ERROR
    rig.mic.plugged = True
    rig.wait_state("idle", timeout=3)  # retried every 0.5 s
    hold(rig)
    rig.mic.say("back")
    said(rig)
    release(rig)
    rig.wait_text("back ")


def test_a_mic_that_silently_stops_delivering_counts_as_unplugged(rig):
    rig.mic.silent_hang = True
    rig.wait_state("error", timeout=4)  # no audio for 2 s
    rig.mic.silent_hang = False
    rig.wait_state("idle", timeout=4)
    hold(rig)
    rig.mic.say("alive")
    said(rig)
    release(rig)
    rig.wait_text("alive ")


def test_mic_lost_while_listening_still_types_what_was_said(rig):
    hold(rig)
    rig.mic.say("before")
    time.sleep(0.12)
    rig.mic.plugged = False
    rig.wait_state("error")
    rig.wait_text("before ")


def test_an_asr_failure_drops_that_segment_and_the_daemon_lives_on(rig, caplog):
    hold(rig)
    with caplog.at_level(logging.WARNING):
        rig.mic.say("before")
        rig.wait_text("before ")
        rig.mic.say("boom")
        time.sleep(0.3)
        rig.mic.say("after")  # same hold: the recording goes on after the failed segment
        said(rig)
        release(rig)
        rig.wait_state("idle")
    assert "transcription failed" in caplog.text
    assert rig.transport.text == "before after "
    hold(rig)
    rig.mic.say("fine")
    said(rig)
    release(rig)
    rig.wait_text("before after fine ")


def test_a_silent_long_hold_opens_pairing_but_a_long_dictation_does_not(rig):
    hold(rig)
    rig.daemon.gesture(Gesture(LONG_HOLD))
    release(rig)
    rig.wait_state("pairing")
    assert rig.pairing.opened == [rig.daemon.config.bluetooth.pairing_timeout_s]
    rig.daemon.gesture(Gesture(PRESS))  # a press closes the window
    rig.wait_state("idle")
    hold(rig)
    rig.mic.say("long", "talk")
    time.sleep(0.3)
    rig.daemon.gesture(Gesture(LONG_HOLD))
    release(rig)
    rig.wait_state("idle")
    assert len(rig.pairing.opened) == 1
    assert rig.transport.text == "long talk "


def test_model_use_loads_before_dropping_and_a_bad_model_keeps_the_old(tmp_path):
    loads = []

    def load_model(name):
        loads.append(name)
        if name == "broken":
            raise RuntimeError("not a ggml file")
        return WordTranscriber(tag=f"[{name}]"), name

    r = Rig(tmp_path, load_model=load_model)
    old = r.transcriber
    try:
        reply = r.daemon.command({"cmd": "model_use", "name": "broken"})
        assert reply["ok"] is False and "still using tiny" in reply["error"]
        assert r.daemon.transcriber is old and not old.closed
        reply = r.daemon.command({"cmd": "model_use", "name": "base"})
        assert reply == {"ok": True, "model": "base", "previous": "tiny"}
        assert old.closed
        hold(r)
        r.mic.say("hi")
        said(r)
        release(r)
        r.wait_text("[base]hi ")
    finally:
        r.close()


def test_control_commands(rig):
    assert rig.daemon.command({"cmd": "status"})["state"] == "idle"
    assert rig.daemon.command({"cmd": "type", "text": "typed by command"})["ok"]
    rig.wait_text("typed by command")
    rig.wait_state("idle")
    assert rig.daemon.command({"cmd": "listen"})["state"] == "handsfree"
    busy = rig.daemon.command({"cmd": "type", "text": "x"})
    assert busy["ok"] is False and "busy" in busy["error"]
    rig.mic.say("spoken")
    rig.wait_text("spoken ")
    assert rig.daemon.command({"cmd": "stop"})["state"] in ("transcribing", "typing", "idle")
    rig.wait_state("idle")
    assert rig.daemon.command({"cmd": "retype"})["ok"]
    rig.wait_text("spoken spoken ")
    hist = rig.daemon.command({"cmd": "history"})
    assert [e["text"] for e in hist["entries"]] == ["spoken "]
    json.dumps(hist)  # goes over the socket as JSON


def test_illegal_events_are_logged_and_survived(rig, caplog):
    from sttkb.daemon.state import Event
    with caplog.at_level(logging.WARNING):
        rig.daemon.post(Event.STREAM_END_PAIR)
        assert wait_for(lambda: "cannot happen" in caplog.text, 10.0)
    assert rig.daemon.state is State.IDLE
    assert rig.daemon.command({"cmd": "status"})["ok"]


def test_the_led_follows_the_state(tmp_path):
    from sttkb.daemon.led import LogLed
    led = LogLed()
    r = Rig(tmp_path, led=led, key_delay_s=0.005)
    try:
        hold(r)
        r.mic.say("lights", "on")
        said(r)
        release(r)
        r.wait_state("idle")
        r.mic.plugged = False
        r.wait_state("error")
        assert wait_for(lambda: led.current == "error", 2.0)   # shown just after the state is entered
        seen = [p for i, p in enumerate(led.history) if i == 0 or led.history[i - 1] != p]
        assert seen[:2] == ["idle", "listening"]
        assert "typing" in seen and seen[-2:] == ["idle", "error"]
    finally:
        r.close()

"""The always-open microphone hub: pre-roll, no audio typed twice, loss detection (scripted mic, see conftest)."""

from __future__ import annotations

import threading
import time

import pytest

from sttkb.daemon.capture import CaptureHub
from tests.daemon.conftest import ScriptedMic


def words_of(session) -> list[str]:
    return [c.word for c in session if c.word]


def test_pre_roll_keeps_the_word_said_with_the_press_but_never_repeats_audio():
    mic = ScriptedMic()
    lost = []
    hub = CaptureHub(mic.open, on_lost=lost.append, pre_roll_s=0.3)
    hub.start()
    try:
        mic.say("early")
        time.sleep(0.12)                   # said just before the press
        first = hub.session()
        mic.say("inside")
        time.sleep(0.15)
        hub.end_session(first)
        second = hub.session()             # pressed again at once: its pre-roll overlaps the first session
        mic.say("next")
        time.sleep(0.15)
        hub.end_session(second)
        assert words_of(first) == ["early", "inside"]
        assert words_of(second) == ["next"]
    finally:
        hub.close()
    assert lost == []


def test_idle_audio_is_dropped():
    mic = ScriptedMic()
    hub = CaptureHub(mic.open, on_lost=lambda e: None, pre_roll_s=0.1)
    hub.start()
    try:
        mic.say("private")
        time.sleep(0.4)                    # longer ago than the pre-roll
        s = hub.session()
        time.sleep(0.1)
        hub.end_session(s)
        assert words_of(s) == []
    finally:
        hub.close()


def test_a_missing_mic_fails_start_and_a_pulled_one_is_reported():
    mic = ScriptedMic()
    mic.plugged = False
    hub = CaptureHub(mic.open, on_lost=lambda e: None)
    with pytest.raises(OSError, match="no such audio device"):
        hub.start()
    mic.plugged = True
    lost = threading.Event()
    errors = []
    hub = CaptureHub(mic.open, on_lost=lambda e: (errors.append(e), lost.set()))
    hub.start()
    s = hub.session()
    mic.plugged = False
    assert lost.wait(10)
    assert isinstance(errors[0], OSError) and not hub.running
    list(s)  # the open session ended: iterating finishes
    assert s.drained
    with pytest.raises(OSError):
        hub.session()

"""`sttkb run --simulate` end to end: espeak-ng speech replayed in real time as the microphone, real whisper.cpp
(the embedded default model), the real daemon, and a virtual host that decodes the HID reports to text.

Only the button is scripted (there is no pin here): by default it is held over the whole file.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import jiwer
import numpy as np
import pytest

from sttkb.audio.files import write_wav
from tests.speech import have_espeak, room, speak

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_espeak(), reason="espeak-ng missing")]

STTKB = Path(sys.executable).with_name("sttkb")
FIRST = "I will call you back after the meeting this afternoon."
SECOND = "Please send the report to the team before noon tomorrow."


def wer(ref: str, hyp: str) -> float:
    clean = lambda s: " ".join(re.sub(r"[^a-z0-9' ]+", " ", s.lower()).split())  # noqa: E731
    return jiwer.wer(clean(ref), clean(hyp))


@pytest.fixture(scope="module")
def two_sentences(tmp_path_factory) -> tuple[Path, float]:
    """room, sentence 1, 2.5 s pause, sentence 2, room; returns the file and where sentence 1 ends (s)."""
    first = speak(FIRST)
    audio = np.concatenate([room(1.0), first, room(2.5), speak(SECOND, voice="en-us+m3"), room(1.5)])
    path = tmp_path_factory.mktemp("sim") / "two.wav"
    write_wav(path, audio)
    return path, 1.0 + len(first) / 16000


def run_simulate(audio: Path, model: Path, *extra: str, timeout: float = 180,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="sttkb-s") as d:
        return subprocess.run([str(STTKB), "run", "--simulate", "--audio", str(audio), "--model", str(model),
                               "--control", str(Path(d) / "c.sock"), *extra],
                              capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_held_over_the_whole_file_types_what_was_said_and_reports_latency(two_sentences, default_model):
    """Also run under a NOTIFY_SOCKET, as systemd would: READY after the model is loaded, STOPPING at the end."""
    audio, _ = two_sentences
    with tempfile.TemporaryDirectory(prefix="sttkb-n") as d:
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(Path(d) / "notify"))
        notify.settimeout(0.2)
        messages: list[str] = []
        done = threading.Event()

        def listen():
            while not done.is_set():
                try:
                    messages.append(notify.recv(4096).decode())
                except socket.timeout:
                    pass

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        r = run_simulate(audio, default_model, env={"NOTIFY_SOCKET": str(Path(d) / "notify"),
                                                   "WATCHDOG_USEC": "2000000"})
        time.sleep(0.3)
        done.set()
        listener.join(2)
        notify.close()
    assert r.returncode == 0, r.stderr
    ready = [i for i, m in enumerate(messages) if m.startswith("READY=1")]
    assert len(ready) == 1 and messages[-1] == "STOPPING=1"
    assert all(i > ready[0] for i, m in enumerate(messages) if m == "WATCHDOG=1")
    assert "WATCHDOG=1" in messages and any(m.startswith("STATUS=listening") for m in messages)
    typed = r.stdout.strip()
    error = wer(f"{FIRST} {SECOND}", typed)
    print(f"host typed: {typed!r} (WER {error:.2f})\n{r.stderr.strip().splitlines()[-1]}")
    assert error <= 0.25
    m = re.search(r"latency, end of speech → last keystroke: ([\d.]+) s after each release; "
                  r"per segment median ([\d.]+) s, max ([\d.]+) s \((\d+) segments\)", r.stderr)
    assert m, r.stderr
    assert int(m.group(4)) >= 2  # each sentence typed as its own segment, while "held"
    assert 0 < float(m.group(1)) < 10 and 0 < float(m.group(2)) < 10


def test_only_speech_inside_the_hold_is_typed(two_sentences, default_model, tmp_path):
    audio, first_end = two_sentences
    script = tmp_path / "gestures.txt"
    script.write_text(f"hold 0.5 {first_end + 1.0:.2f}   # release in the pause before sentence 2\n")
    r = run_simulate(audio, default_model, "--gestures", str(script))
    assert r.returncode == 0, r.stderr
    typed = r.stdout.strip()
    assert wer(FIRST, typed) <= 0.25, typed
    assert "report" not in typed.lower() and "team" not in typed.lower()


def test_silence_types_nothing(default_model, tmp_path):
    path = tmp_path / "quiet.wav"
    write_wav(path, room(5.0))
    r = run_simulate(path, default_model)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert "nothing was typed" in r.stderr


def test_a_bad_audio_file_is_one_clear_line(default_model, tmp_path):
    bad = tmp_path / "not.wav"
    bad.write_text("hello")
    r = run_simulate(bad, default_model, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("sttkb: error:") and "Traceback" not in r.stderr
    assert "loading model" not in r.stderr  # checked before the slow part

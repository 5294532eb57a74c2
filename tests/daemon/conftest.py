"""Daemon test parts.

Real: the daemon, its state machine, journal, control socket, capture hub, and the keyboard (gadget's Typist
over a VirtualTransport whose host decodes the HID reports back to text). Stand-ins, because they cannot exist
here or must misbehave on cue: a microphone that can be unplugged (:class:`ScriptedMic`) and a word-level
transcriber (:class:`WordTranscriber`) that fails on request. The end-to-end test with real whisper.cpp is in
test_simulate.py.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

import pytest

from sttkb.config import Config
from sttkb.daemon.journal import Journal
from sttkb.daemon.service import Daemon, Parts

CHUNK_S = 0.05


class Chunk:
    """50 ms of 'audio' carrying the word spoken in it (None = silence)."""

    def __init__(self, word: str | None) -> None:
        self.word = word

    def __len__(self) -> int:
        return int(16000 * CHUNK_S)


class ScriptedMic:
    """A real-time microphone stand-in: yields a chunk every 50 ms; words said with :meth:`say`."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.plugged = True
        self.silent_hang = False
        self.lock = threading.Lock()
        self.opened = 0

    def say(self, *words: str) -> None:
        with self.lock:
            self.words.extend(words)

    def open(self):
        if not self.plugged:
            raise OSError("no such audio device")
        self.opened += 1
        return self._frames()

    def _frames(self):
        while True:
            time.sleep(CHUNK_S)
            if not self.plugged:
                raise OSError("audio device disappeared")
            while self.silent_hang and self.plugged:  # a pulled USB mic that just stops delivering
                time.sleep(CHUNK_S)
            with self.lock:
                word = self.words.pop(0) if self.words else None
            yield Chunk(word)


@dataclass
class Piece:
    text: str
    segment_end_s: float
    sentence_end: bool = False
    """Only a held sentence end, typed after a silence (as sttkb.chain.TextPiece)."""
    speech_end_s: float | None = None
    after_silence: bool = False
    """Words that waited for a next phrase and came after a silence instead (as sttkb.chain.TextPiece)."""


class WordTranscriber:
    """Emits the words heard as one piece when 3 silent chunks follow them (a VAD stand-in). The word "boom"
    raises, like whisper.cpp failing."""

    def __init__(self, tag: str = "", held_mark_after: int = 0, words_after: int = 0) -> None:
        self.tag = tag
        self.closed = False
        self.held_mark_after = held_mark_after
        """If > 0: each piece ends without its ".", which comes as a piece of its own after this many more silent
        chunks (the chain's held sentence end, typed after ``[text] hold_sentence_end_s``)."""
        self.words_after = words_after
        """If > 0: the words come this many silent chunks after the 3 that end them, flagged ``after_silence`` (the
        chain's ``[text] wait_for_next_phrase`` when no next phrase comes)."""

    def stream(self, source, *, awaited_at_pause=False):
        self.awaited_at_pause = awaited_at_pause
        words, pos, silent, held = [], 0.0, 0, False
        for chunk in source.chunks():
            pos += CHUNK_S
            if chunk.word == "boom":
                raise RuntimeError("whisper.cpp failed")
            if chunk.word:
                words.append(chunk.word)
                silent = 0
            else:
                silent += 1
                if words and silent == 3 + self.words_after:
                    end = pos - (3 + self.words_after) * CHUNK_S
                    yield Piece(self.tag + " ".join(words) + ("" if self.held_mark_after else " "), end,
                                speech_end_s=end, after_silence=bool(self.words_after))
                    words, held = [], bool(self.held_mark_after)
                elif held and silent == 3 + self.held_mark_after:
                    yield Piece(". ", pos, sentence_end=True)
                    held = False
        if words:
            yield Piece(self.tag + " ".join(words) + " ", pos)

    def close(self) -> None:
        self.closed = True


class FakePairing:
    """The Bluetooth pairing window (BlueZ is tested in tests/ble): records opens, closes on request, and keeps the
    daemon's pairing-code handler so a test can play the Bluetooth side asking for a code."""

    def __init__(self) -> None:
        self.opened: list[float] = []
        self.closed = 0
        self.on_done = None
        self.passkey_handler = None

    def on_passkey_request(self, handler):
        self.passkey_handler = handler

    def open_pairing_window(self, timeout_s, on_done):
        self.opened.append(timeout_s)
        self.on_done = on_done

    def close_pairing_window(self):
        self.closed += 1
        if self.on_done:
            self.on_done(False)


def make_config(**daemon_overrides) -> Config:
    c = Config()
    return dataclasses.replace(
        c, daemon=dataclasses.replace(c.daemon, mic_retry_s=0.5, pre_roll_s=0.1, **daemon_overrides),
        button=dataclasses.replace(c.button, handsfree_silence_s=2.0))


class Rig:
    def __init__(self, tmp_path, *, key_delay_s=0.0, load_model=None, config=None, journal=True,
                 notifier=None, led=None, hear_passkey=None) -> None:
        from sttkb.gadget.typist import Typist
        from sttkb.gadget.virtual import VirtualTransport

        self.mic = ScriptedMic()
        self.transport = VirtualTransport("us")
        self.keyboard = Typist(self.transport, "us", "transliterate", key_delay_s)
        self.transcriber = WordTranscriber()
        self.pairing = FakePairing()
        self.journal = Journal(tmp_path / "journal.jsonl", enabled=journal)
        self.daemon = Daemon(config or make_config(), Parts(
            keyboard=self.keyboard, transcriber=self.transcriber, open_mic=self.mic.open, load_model=load_model,
            model_name="tiny", pairing=self.pairing, journal=self.journal,
            notifier=notifier, led=led, hear_passkey=hear_passkey))
        self.daemon.start()
        self.thread = threading.Thread(target=self.daemon.run, daemon=True)
        self.thread.start()

    def wait_state(self, state: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.daemon.state.value != state:
            assert time.monotonic() < deadline, f"state {self.daemon.state.value}, wanted {state}"
            time.sleep(0.01)

    def wait_text(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.transport.text:
            assert time.monotonic() < deadline, f"host shows {self.transport.text!r}, wanted {text!r}"
            time.sleep(0.01)

    def close(self) -> None:
        self.daemon.shutdown()
        self.thread.join(5)
        self.daemon.close()
        self.keyboard.close()


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    r.close()

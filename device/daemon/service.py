"""The daemon: microphone → transcriber → journal → keyboard, driven by one state machine on one loop.

Threads hand work to the loop through :meth:`Daemon.post` (events) and :meth:`Daemon.call` (control
commands); only the loop changes state. The loop pings the systemd watchdog, so a hung loop stops the pings
and systemd restarts the daemon.

Every outside part comes in through the constructor (see :class:`Parts`): the keyboard, the transcriber and
how to load another model, the microphone, the pairing window, the LED, how to hear a spoken pairing code.
``sttkb run`` builds them.

Pairing codes (Bluetooth passkey entry): the pairing window hands the daemon a
:class:`sttkb.keyboard.PasskeyRequest` when a host shows a code. In idle or pairing the daemon enters ``passkey``,
opens a capture session and runs ``Parts.hear_passkey`` on a worker thread; its six digits (or None) go straight
into the request, never to the keyboard, the journal or the log. When the request ends (answered, or given up by the
host or BlueZ) the capture ends and the daemon is back in ``pairing`` — or in ``idle`` when the window is not its
own (`sttkb bt pair` opened it: the daemon gets no word when that window closes, so it does not wait for it).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol

from sttkb.config import Config
from sttkb.daemon import Error
from sttkb.daemon.button import HOLD_END, HOLD_START, LONG_HOLD, PRESS, TAPS, Gesture
from sttkb.daemon.capture import CaptureHub, SessionAudio
from sttkb.daemon.journal import CANCELLED, TYPED, Journal, JournalError
from sttkb.daemon.led import pattern_for
from sttkb.daemon.notify import Notifier, watchdog_interval_s
from sttkb.daemon.state import ACTIONS, Event, IllegalTransition, State, transition
from sttkb.daemon.typing_tracker import Piece, TypingTracker
from sttkb.keyboard import Keyboard, PairingWindow, PasskeyRequest

log = logging.getLogger(__name__)

MIC_STALL_S = 2.0  # no audio for this long from an open microphone = it is gone (seconds)


class TranscriberLike(Protocol):
    """What the daemon needs from ``sttkb.chain.Transcriber``."""

    def stream(self, source: Iterable[Any], *, awaited_at_pause: bool = False) -> Iterator[Any]:
        """Yield TextPiece-like objects (``.text``, ``.segment_end_s``) as segments finish. ``awaited_at_pause``:
        hands-free, each phrase's text is awaited when its pause ends it (no beam decode where there is time)."""


@dataclass
class Parts:
    """The outside world, built by the composition root (``sttkb run``) or a test."""

    keyboard: Keyboard
    transcriber: TranscriberLike
    open_mic: Callable[[], Iterable[Any]]                   # raises OSError when there is no microphone
    load_model: Callable[[str], tuple[TranscriberLike, str]] | None = None  # NAME → (warmed transcriber, name)
    model_name: str = ""
    pairing: PairingWindow | None = None
    journal: Journal | None = None
    notifier: Notifier | None = None
    led: Any = None                                           # StatusLed-like: .show(pattern), .close()
    reload_config: Callable[[], Config] | None = None
    mic_ends_run: bool = False   # simulate: the replayed file ending ends the run instead of "mic lost"
    hear_passkey: Callable[..., str | None] | None = None
    """``hear_passkey(chunks, transcriber, *, deadline)`` → the six digits said, or None: listens to ``chunks``
    (a capture session, which the daemon ends to stop it) with the daemon's current transcriber's model until
    ``deadline`` (time.monotonic). None: pairing codes are refused."""


@dataclass
class Session:
    id: int
    mode: str                          # "ptt" | "handsfree"
    audio: SessionAudio
    started: float
    last_speech: float
    produced_text: bool = False
    pair_candidate: bool = False
    pieces: list[Piece] = field(default_factory=list)
    ended: bool = False


@dataclass
class PasskeyListen:
    """The pairing code being listened for: its request and the capture session it hears."""

    request: PasskeyRequest
    audio: SessionAudio
    started: float                     # daemon clock when listening began


class _Resumable:
    """A session's audio as a source the chain may stop: its ``stop()`` only ends the current stream, so a new
    stream can carry on with the rest of the recording after a failed segment."""

    def __init__(self, audio: SessionAudio) -> None:
        self.audio = audio

    def chunks(self) -> Iterator[Any]:
        return self.audio.chunks()

    def stop(self) -> None:
        pass  # the daemon ends the recording (release, stop, mic lost), not the chain

    @property
    def overflows(self) -> int:
        return self.audio.overflows


_reply_events = {"listen": Event.LISTEN, "stop": Event.STOP, "type": Event.TYPE_TEXT, "retype": Event.RETYPE,
                 "pair": Event.PAIR}


class Daemon:
    def __init__(self, config: Config, parts: Parts, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self.parts, self.clock = config, parts, clock
        self.keyboard = parts.keyboard
        self.transcriber = parts.transcriber
        self.model_name = parts.model_name
        self.journal = parts.journal or Journal(enabled=False)
        self.notifier = parts.notifier or Notifier("")
        self.state = State.IDLE
        self.session: Session | None = None          # the newest listening session
        self._sessions: dict[int, Session] = {}      # sessions whose stream has not ended yet
        self._session_ids = itertools.count(1)
        self._queue: queue.Queue = queue.Queue()
        self._asr_lock = threading.Lock()   # one stream at a time; a model swap waits for it
        self._stop = threading.Event()
        self._last_transcript: Piece | None = None
        self._mic_retry_at = 0.0
        self._probe_running = False
        self.latencies: list[float] = []          # per piece: end of speech → its last keystroke (s)
        self.final_latencies: list[float] = []    # per session: end of speech → last keystroke after release
        self.breakdowns: list[tuple[float, float, float]] = []  # per piece: pause wait, whisper, typing (s)
        self.typed_text: list[str] = []
        self.run_done = threading.Event()        # simulate: the replayed file ended and everything was typed
        self._source_ended = False
        self.passkey: PasskeyListen | None = None   # the pairing code being listened for
        self._window_open = False                   # the daemon's own pairing window is open
        self.hub = CaptureHub(parts.open_mic, on_lost=self._mic_lost_cb, pre_roll_s=config.daemon.pre_roll_s,
                              clock=clock)
        self.tracker = TypingTracker(self.keyboard, self._typed_cb, clock=clock)
        missing = [a for a in ACTIONS if not hasattr(self, "_do_" + a)]
        assert not missing, f"state table names actions the daemon lacks: {missing}"
        if parts.pairing is not None and hasattr(parts.pairing, "on_passkey_request"):
            parts.pairing.on_passkey_request(self._passkey_requested)

    # -- threads hand work to the loop -----------------------------------------------------------------------
    def post(self, event: Event, **data: Any) -> None:
        self._queue.put((event, data))

    def call(self, fn: Callable[[], Any], timeout: float | None = 10.0) -> Any:
        """Run ``fn`` on the loop and return its result (from another thread)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((fn, {"future": fut}))
        return fut.result(timeout)

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the loop, without waiting."""
        self._queue.put((fn, {}))

    def _passkey_requested(self, request: PasskeyRequest) -> None:
        """The pairing window's handler (any thread): a host shows a code. Returns at once."""
        self.post(Event.PASSKEY_REQUEST, request=request)

    def gesture(self, g: Gesture) -> None:
        """Button callback (any thread): map the gesture to an event and post it."""
        b = self.config.button
        if g.kind == PRESS:
            self.post(Event.PRESS)
        elif g.kind == HOLD_START:
            self.post(Event.START_PTT)
        elif g.kind == HOLD_END:
            self.post(Event.END_PTT)
        elif g.kind == LONG_HOLD:
            if b.long_hold == "pair":
                self.post(Event.LONG_HOLD)
        elif g.kind == TAPS and g.count in (2, 3):
            action = b.double_press if g.count == 2 else b.triple_press
            ev = {"handsfree": Event.TOGGLE_HANDSFREE, "retype": Event.RETYPE, "pair": Event.PAIR}.get(action)
            if ev is not None:
                self.post(ev)

    def command(self, req: dict) -> dict:
        """Control-socket handler (runs on a connection thread)."""
        cmd = req["cmd"]
        if cmd == "model_use":
            return self._model_use(str(req.get("name", "")))
        if cmd == "reload":
            return self._reload()
        if cmd == "history":
            return {"ok": True, "journal": str(self.journal.path) if self.journal.enabled else None,
                    "entries": [e.__dict__ for e in self.journal.entries()[-int(req.get("limit", 50)):]]}
        if cmd == "status":
            return self.call(self.status)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self.post(_reply_events[cmd], reply=fut, **{k: v for k, v in req.items() if k != "cmd"})
        return fut.result(timeout=30)

    # -- the loop --------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the microphone (or go to error and retry) — call before :meth:`run`."""
        try:
            self.hub.start()
        except OSError as e:
            log.error("no microphone (%s): retrying every %g s", e, self.config.daemon.mic_retry_s)
            self._enter(State.ERROR)
            self._mic_retry_at = self.clock() + self.config.daemon.mic_retry_s
        self._show()

    def run(self) -> None:
        """Process events until :meth:`shutdown`. Pings the watchdog between events."""
        interval = watchdog_interval_s() if self.config.daemon.watchdog else None
        tick = min(0.25, interval) if interval else 0.25
        next_ping = 0.0
        self.notifier.ready(self.status_line())
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=tick)
            except queue.Empty:
                item = None
            if item is not None:
                self._dispatch(*item)
            self._periodic()
            now = self.clock()
            if interval and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + interval
        self.notifier.stopping()

    def shutdown(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop everything (after :meth:`run` returned). Queued text still being typed is left to finish."""
        self._stop.set()
        if self.session:
            self.hub.end_session(self.session.audio)
        self._end_passkey()
        if self.parts.pairing is not None and hasattr(self.parts.pairing, "on_passkey_request"):
            self.parts.pairing.on_passkey_request(None)
        self.hub.close()
        self.tracker.close()
        self.journal.close()
        if self.parts.led is not None:
            self.parts.led.close()

    def _dispatch(self, what: Any, data: dict) -> None:
        if callable(what) and not isinstance(what, Event):
            fut = data.get("future")
            try:
                result = what()
            except Exception as e:
                if fut is None:
                    log.exception("loop task failed")
                else:
                    fut.set_exception(e)
                return
            if fut is not None:
                fut.set_result(result)
            return
        self.handle(what, data)

    def handle(self, event: Event, data: dict | None = None) -> None:
        """One event through the state table (on the loop thread)."""
        data = data or {}
        reply: concurrent.futures.Future | None = data.get("reply")
        session_id = data.get("session")
        if event is Event.STREAM_END:
            self._sessions.pop(session_id, None)
        if event in (Event.STREAM_END, Event.ASR_ERROR) and session_id is not None and (
                self.session is None or self.session.id != session_id):
            log.debug("%s of an earlier session", event.value)  # its text was typed already
            return
        if event is Event.STREAM_END and self.session and self.session.pair_candidate \
                and not self.session.produced_text:
            event = Event.STREAM_END_PAIR
        if event is Event.TYPING_DONE and (self.tracker.busy or not self.keyboard.wait_idle(0)):
            return  # more text was queued meanwhile: still typing
        if event is Event.PASSKEY_DONE and (self.passkey is None or self.passkey.request is not data.get("request")):
            log.debug("a pairing code request the daemon already let go of has ended")
            return
        if event is Event.PAIRING_DONE:
            self._window_open = False
        try:
            t = transition(self.state, event)
        except IllegalTransition as e:
            log.warning("%s", e)
            if reply:
                reply.set_result({"ok": False, "error": str(e)})
            return
        before = self.state
        self._enter(t.next)
        if t.next is not before:
            log.info("%s --%s--> %s", before.value, event.value, t.next.value)
        try:
            if t.action:
                getattr(self, "_do_" + t.action)(data)
        except Error as e:
            log.error("%s", e)
            if reply and not reply.done():
                reply.set_result({"ok": False, "error": str(e)})
        except Exception as e:
            log.exception("action %s failed", t.action)
            if reply and not reply.done():
                reply.set_result({"ok": False, "error": f"internal error: {e}"})
        if reply and not reply.done():
            reply.set_result({"ok": True, "state": self.state.value})
        self._show()

    def _enter(self, state: State) -> None:
        self.state = state

    def _show(self) -> None:
        if self.parts.led is not None:
            self.parts.led.show(pattern_for(self.state, self.keyboard.state, remote_up=self._remote_up()))
        self.notifier.status(self.status_line())

    def _remote_up(self) -> bool:
        """False while a remote engine is configured and its server does not answer (duck-typed)."""
        return bool(getattr(getattr(self.transcriber, "engine", None), "remote_up", True))

    def _periodic(self) -> None:
        now = self.clock()
        s = self.session
        if self.state is State.HANDSFREE and s and now - s.last_speech > self.config.button.handsfree_silence_s:
            log.info("hands-free: %g s of silence, stopping", self.config.button.handsfree_silence_s)
            self.handle(Event.SILENCE_TIMEOUT)
        if self.hub.stalled(now, MIC_STALL_S):
            log.error("microphone gave no audio for %g s: treating it as unplugged", MIC_STALL_S)
            self.hub.abandon()
            self.handle(Event.MIC_LOST)
        if self.state is State.ERROR and not self.hub.running and now >= self._mic_retry_at \
                and not self._probe_running and not self._source_ended:
            self._mic_retry_at = now + self.config.daemon.mic_retry_s
            self._probe_running = True
            threading.Thread(target=self._probe_mic, name="sttkb-mic-retry", daemon=True).start()
        if self.parts.led is not None and self.state in (State.TYPING, State.IDLE):
            self.parts.led.show(pattern_for(self.state, self.keyboard.state, remote_up=self._remote_up()))
        if self.passkey is not None and self.passkey.request.seconds_left() <= 0:
            self.hub.end_session(self.passkey.audio)  # the host has given up: stop listening (the worker answers)

    # -- workers ---------------------------------------------------------------------------------------------
    def _probe_mic(self) -> None:
        try:
            self.hub.start()
        except OSError as e:
            log.debug("microphone still missing: %s", e)
        else:
            self.post(Event.MIC_BACK)
        finally:
            self._probe_running = False

    def _mic_lost_cb(self, error: Exception | None) -> None:
        if self.parts.mic_ends_run and error is None:
            self._source_ended = True
            self.call_soon(self._end_of_source)
            return
        log.error("microphone lost (%s): retrying every %g s", error or "stream ended",
                  self.config.daemon.mic_retry_s)
        self.post(Event.MIC_LOST)

    def _end_of_source(self) -> None:
        """Simulate: the replayed file ended. Finish the current session; the run ends when all is typed."""
        if self.session and not self.session.ended:
            return  # its STREAM_END will come and the run ends after typing
        self._maybe_finish_run()

    def _maybe_finish_run(self) -> None:
        if self._source_ended and self.state is State.IDLE:
            self.run_done.set()

    def _session_worker(self, session: Session, transcriber: TranscriberLike) -> None:
        audio = _Resumable(session.audio)
        with self._asr_lock:
            read_at_failure = -1
            while True:
                try:
                    for piece in transcriber.stream(audio, awaited_at_pause=session.mode == "handsfree"):
                        self.post(Event.SEGMENT_READY, piece=piece, session=session.id)
                    break
                except Exception as e:
                    # whisper.cpp failed on a segment: that segment is lost; go on with the audio after it
                    log.error("transcription failed, a segment is dropped: %s", e)
                    log.debug("transcription failure", exc_info=True)
                    self.post(Event.ASR_ERROR, session=session.id)
                    stuck = session.audio.read_count == read_at_failure  # failed again without progress
                    read_at_failure = session.audio.read_count
                    if session.audio.drained or stuck:
                        if stuck:
                            self.hub.end_session(session.audio)
                        break
        self.post(Event.STREAM_END, session=session.id)

    def _passkey_worker(self, listen: PasskeyListen) -> None:
        """Hear the code and answer the request (the code goes nowhere else). The answer ends the request, whose
        done callback brings the daemon back (``PASSKEY_DONE``)."""
        passkey = None
        try:
            with self._asr_lock:  # the model has one user at a time; a model swap waits
                if not listen.request.done:
                    passkey = self.parts.hear_passkey(listen.audio, self.transcriber,  # type: ignore[misc]
                                                      deadline=listen.request.deadline)
        except Exception as e:
            log.error("listening for the pairing code failed (%s): refused", type(e).__name__)
            log.debug("pairing code listener failure", exc_info=True)
        finally:
            self.hub.end_session(listen.audio)
        try:
            listen.request.answer(passkey)
        except ValueError:
            log.error("the pairing code listener gave something that is not six digits: refused")
            listen.request.answer(None)

    def _typed_cb(self, pieces: list[Piece]) -> None:
        for p in pieces:
            for rid in p.journal_ids:
                try:
                    self.journal.mark(rid, TYPED)
                except JournalError as e:
                    log.error("%s", e)
            if p.latency_s is not None:
                self.latencies.append(p.latency_s)
            if p.breakdown is not None:
                self.breakdowns.append(p.breakdown)
        self.post(Event.TYPING_DONE, pieces=pieces)

    # -- actions (named in the state table) ------------------------------------------------------------------
    def _start(self, mode: str) -> None:
        try:
            audio = self.hub.session()
        except OSError as e:
            self.post(Event.MIC_LOST, error=str(e))
            return
        now = self.clock()
        self.session = Session(next(self._session_ids), mode, audio, started=now, last_speech=now)
        self._sessions[self.session.id] = self.session
        threading.Thread(target=self._session_worker, args=(self.session, self.transcriber),
                         name=f"sttkb-session-{self.session.id}", daemon=True).start()
        log.info("listening (%s)", "hold to talk" if mode == "ptt" else "hands-free")

    def _do_start_ptt(self, data: dict) -> None:
        self._start("ptt")

    def _do_start_handsfree(self, data: dict) -> None:
        self._start("handsfree")

    def _do_stop_capture(self, data: dict) -> None:
        if self.session:
            self.hub.end_session(self.session.audio)

    def _do_mark_pair_candidate(self, data: dict) -> None:
        if self.session:
            self.session.pair_candidate = True

    def _do_type_piece(self, data: dict) -> None:
        piece = data["piece"]
        text = getattr(piece, "text", "") or ""
        if not text:
            return
        s = self._sessions.get(data.get("session")) or (
            self.session if self.session and self.session.id == data.get("session") else None)
        now = self.clock()
        speech_end = None
        if s is not None:
            s.produced_text = True
            end_s = getattr(piece, "speech_end_s", None) or getattr(piece, "segment_end_s", None)
            if s.audio.started_at is not None and end_s is not None:
                speech_end = s.audio.started_at + float(end_s)  # the end of speech, on the monotonic clock
            if getattr(piece, "after_silence", False):
                # a phrase that waited for the next one: the silence since its speech counts
                if speech_end is not None:
                    s.last_speech = max(s.last_speech, speech_end)
            elif not getattr(piece, "sentence_end", False):   # a held mark typed after a silence is no speech
                s.last_speech = now
        sid = s.id if s else int(data.get("session") or 0)
        try:
            rid: tuple[int, ...] = (self.journal.append(text, sid),)  # fsynced BEFORE the first key
        except JournalError as e:
            log.error("%s; typing anyway", e)
            rid = ()
        log.debug("typing %r", text)
        p = Piece(text, rid, sid, speech_end, closed_at=getattr(piece, "closed_at", None),
                  ready_at=getattr(piece, "ready_at", None))
        self.keyboard.type_text(text)
        self.tracker.add(p)
        self.typed_text.append(text)
        if s is not None:
            s.pieces.append(p)
        self._remember(p)

    def _remember(self, p: Piece) -> None:
        last = self._last_transcript
        if last is not None and last.session == p.session and p.session:
            self._last_transcript = Piece(last.text + p.text, last.journal_ids + p.journal_ids, p.session)
        else:
            self._last_transcript = Piece(p.text, p.journal_ids, p.session)

    def _do_drop_segment(self, data: dict) -> None:
        log.warning("a segment could not be transcribed and was dropped (see the log above)")

    def _do_wait_typing(self, data: dict) -> None:
        s = self.session
        if s:
            s.ended = True
        if not self.tracker.busy and self.keyboard.wait_idle(0):
            self.post(Event.TYPING_DONE, pieces=[])

    def _do_typing_done(self, data: dict) -> None:
        s = self.session
        if s and s.ended and s.pieces and all(p.typed_at is not None for p in s.pieces):
            last = s.pieces[-1]
            if last.latency_s is not None:
                self.final_latencies.append(last.latency_s)
                log.info("latency: end of speech → last keystroke %.2f s", last.latency_s)
        self.session = None
        self._maybe_finish_run()

    def _do_cancel_typing(self, data: dict) -> None:
        remainder = self.keyboard.cancel()
        for piece, left in self.tracker.cancel(remainder):
            for rid in piece.journal_ids:
                try:
                    self.journal.mark(rid, CANCELLED if left else TYPED, left=left)
                except JournalError as e:
                    log.error("%s", e)
        if remainder:
            log.info("typing cancelled (%d characters not typed)", len(remainder))
        self.session = None
        self._maybe_finish_run()

    def _type_command_text(self, text: str, journal_ids: tuple[int, ...] = ()) -> None:
        self.keyboard.type_text(text)
        self.tracker.add(Piece(text, journal_ids))
        self.typed_text.append(text)

    def _do_type_text(self, data: dict) -> None:
        text = str(data.get("text") or "")
        if not text:
            self._back_if_nothing()
            raise Error("nothing to type: give the text, e.g. `sttkb type 'hello'`")
        self._type_command_text(text)

    def _do_retype(self, data: dict) -> None:
        rid = data.get("id")
        if rid is not None:
            entries = {e.id: e for e in self.journal.entries()}
            if int(rid) not in entries:
                self._back_if_nothing()
                raise Error(f"no transcript {rid} in the journal; see `sttkb history`")
            e = entries[int(rid)]
            self._type_command_text(e.text, (e.id,))
            return
        last = self._last_transcript
        if last is None:  # nothing said since the start: the journal's last session
            entries = self.journal.entries()
            if entries:
                last_session = entries[-1].session
                parts = [e for e in entries if e.session == last_session]
                last = Piece("".join(e.text for e in parts), tuple(e.id for e in parts), last_session)
        if last is None or not last.text:
            self._back_if_nothing()
            raise Error("nothing to retype yet")
        self._type_command_text(last.text, last.journal_ids)

    def _back_if_nothing(self) -> None:
        if self.state is State.TYPING and not self.tracker.busy:
            self._enter(State.IDLE)

    def _do_reject_busy(self, data: dict) -> None:
        raise Error(f"busy ({self.state.value}); try again when the box is idle")

    def _do_reject_no_mic(self, data: dict) -> None:
        raise Error("no microphone: plug one in (the box retries every "
                    f"{self.config.daemon.mic_retry_s:g} s), see `journalctl -u sttkb`")

    def _do_open_pairing(self, data: dict) -> None:
        if self.parts.pairing is None:
            if self.state is State.PAIRING:
                self._enter(State.IDLE)
            raise Error("Bluetooth pairing is not available (Bluetooth off in [bluetooth] or no adapter)")
        timeout = self.config.bluetooth.pairing_timeout_s
        self.parts.pairing.open_pairing_window(timeout, lambda paired: self.post(Event.PAIRING_DONE,
                                                                                 paired=paired))
        self._window_open = True
        log.info("Bluetooth pairing window open for %g s", timeout)

    def _do_close_pairing(self, data: dict) -> None:
        if self.parts.pairing is not None:
            self.parts.pairing.close_pairing_window()

    def _do_pairing_done(self, data: dict) -> None:
        log.info("pairing window closed (%s)", "a host paired" if data.get("paired") else "no host paired")

    # -- pairing codes ---------------------------------------------------------------------------------------
    def _back_from_passkey(self) -> None:
        """Where the daemon goes when a pairing code is done with: its own window is still open, or not."""
        self._enter(State.PAIRING if self._window_open else State.IDLE)

    def _end_passkey(self) -> PasskeyListen | None:
        """Let go of the code being listened for: refuse it if nothing answered yet, end its capture."""
        listen, self.passkey = self.passkey, None
        if listen is not None:
            listen.request.answer(None)          # nothing if it has ended; its PASSKEY_DONE is then ignored
            self.hub.end_session(listen.audio)   # the listener returns soon after
        return listen

    def _do_start_passkey(self, data: dict) -> None:
        request: PasskeyRequest = data["request"]
        if self.parts.hear_passkey is None:
            request.answer(None)
            self._back_from_passkey()
            raise Error(f"{request.host} shows a pairing code, but this daemon cannot listen for one: refused")
        try:
            audio = self.hub.session()
        except OSError as e:
            request.answer(None)
            self._back_from_passkey()
            self.post(Event.MIC_LOST, error=str(e))
            raise Error(f"{request.host} shows a pairing code, but there is no microphone to hear it: refused") \
                from e
        self.passkey = PasskeyListen(request, audio, self.clock())
        request.add_done_callback(lambda: self.post(Event.PASSKEY_DONE, request=request))
        threading.Thread(target=self._passkey_worker, args=(self.passkey,), name="sttkb-passkey",
                         daemon=True).start()
        log.info("%s shows a pairing code: listening for it (%.0f s left)", request.host, request.seconds_left())

    def _do_refuse_passkey(self, data: dict) -> None:
        request: PasskeyRequest = data["request"]
        request.answer(None)
        log.warning("%s shows a pairing code, but the box is busy (%s): refused; pair again when it is idle",
                    request.host, self.state.value)

    def _do_passkey_done(self, data: dict) -> None:
        listen = self._end_passkey()
        if listen is not None:
            log.info("pairing code for %s: %s after %.1f s", listen.request.host, listen.request.outcome,
                     self.clock() - listen.started)
        self._back_from_passkey()

    def _do_stop_passkey(self, data: dict) -> None:
        listen = self._end_passkey()
        if listen is not None:
            log.info("pairing code for %s refused: the button was pressed; closing the pairing window",
                     listen.request.host)
        if not self._window_open:
            self._enter(State.IDLE)    # no PAIRING_DONE comes for a window the daemon did not open
        self._do_close_pairing(data)  # `sttkb bt pair`'s window too: the press means "stop pairing"

    def _do_mic_lost(self, data: dict) -> None:
        if self.session:
            self.hub.end_session(self.session.audio)
        self._end_passkey()
        self._mic_retry_at = self.clock() + self.config.daemon.mic_retry_s

    def _do_mic_back(self, data: dict) -> None:
        log.info("microphone is back")
        self.session = None

    # -- model and config changes (control threads; the swap waits for the running stream) -------------------
    def _model_use(self, name: str) -> dict:
        if self.parts.load_model is None:
            raise Error("this daemon cannot change models")
        if not name:
            raise Error("which model? see `sttkb model list`")
        try:
            new, resolved = self.parts.load_model(name)  # loaded and warmed before the old one goes
        except Exception as e:
            log.error("model %s failed to load, keeping %s: %s", name, self.model_name, e)
            return {"ok": False, "error": f"model {name!r} failed to load ({e}); still using "
                                           f"{self.model_name or 'the previous model'}"}
        with self._asr_lock:
            old, self.transcriber = self.transcriber, new
            old_name, self.model_name = self.model_name, resolved
        close = getattr(old, "close", None)
        if close:
            close()
        log.info("model %s replaces %s", resolved, old_name)
        return {"ok": True, "model": resolved, "previous": old_name}

    def _reload(self) -> dict:
        if self.parts.reload_config is None:
            raise Error("this daemon has no config file to reload")
        config = self.parts.reload_config()
        self.call(lambda: setattr(self, "config", config))
        return {"ok": True, "note": "gesture actions, hands-free silence and microphone retry applied; pins, "
                                    "button timings, audio, model and keyboard settings apply after "
                                    "`systemctl restart sttkb`"}

    # -- status ----------------------------------------------------------------------------------------------
    def status(self) -> dict:
        entries = self.journal.entries() if self.journal.enabled else []
        return {
            "ok": True, "state": self.state.value, "keyboard": self.keyboard.state, "model": self.model_name,
            "mic": "ok" if self.hub.running else "missing",
            "journal": str(self.journal.path) if self.journal.enabled else None,
            "untyped": sum(1 for e in entries if e.state == "untyped"),
            "last_latency_s": round(self.final_latencies[-1], 3) if self.final_latencies else None,
            "median_latency_s": round(statistics.median(self.latencies), 3) if self.latencies else None,
            "passkey": None if self.passkey is None else {
                "host": self.passkey.request.host, "seconds_left": round(self.passkey.request.seconds_left(), 1)},
            "engine": self.engine_status(),
        }

    def engine_status(self) -> dict:
        """Who decodes: ``{"engine": "local"}``, or the remote engine's own ``status()`` (the server, whether it
        answers, who made the last text, the last round trip). Duck-typed: the daemon imports no ASR code."""
        status = getattr(getattr(self.transcriber, "engine", None), "status", None)
        if callable(status):
            try:
                return dict(status())
            except Exception:   # the status must answer even if the engine cannot say
                log.warning("the engine's status failed", exc_info=True)
        return {"engine": "local"}

    def status_line(self) -> str:
        mic = "" if self.hub.running else ", no microphone"
        return f"{self.state.value}{mic}, model {self.model_name or '?'}"


"""The daemon's one state machine: a transition table, pure data, no I/O.

    idle ─hold─▶ listening ─release─▶ transcribing ─tail done─▶ typing ─typed─▶ idle
    idle ─double press─▶ handsfree ─double press / N s silence─▶ transcribing ...
    idle ─pair─▶ pairing ─window closed─▶ idle          any ─mic lost─▶ error ─mic back─▶ idle
    idle, pairing ─a host shows a code─▶ passkey ─answered/cancelled─▶ pairing (idle: the window is not ours)

``handsfree`` is listening without holding the button (the LED shows it as listening). While listening,
each finished segment is typed at once (``SEGMENT_READY`` → ``type_piece``); on release only the tail is left.
``passkey`` is listening for the pairing code a host shows (Bluetooth passkey entry): the code goes to the
request, never to the keyboard or the journal. A request while the box is busy is refused at once.

:func:`transition` returns the next state and the name of the daemon method to run (or None: nothing to do).
A pair missing from :data:`TRANSITIONS` cannot happen when the daemon works (e.g. a segment while idle): it
raises :class:`IllegalTransition`, which the daemon logs and survives.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from sttkb.daemon import Error


class State(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"          # push-to-talk: the button is held
    HANDSFREE = "handsfree"          # listening until toggled off, stopped, or N s of silence
    TRANSCRIBING = "transcribing"    # capture stopped, the tail is being transcribed
    TYPING = "typing"                # all text produced, the keyboard is still sending it
    PAIRING = "pairing"              # Bluetooth pairing window open
    PASSKEY = "passkey"              # listening for the code a pairing host shows ("say the code")
    ERROR = "error"                  # microphone missing; retried every few seconds


class Event(enum.Enum):
    # button gestures (after the configured gesture → event mapping) and control commands
    PRESS = "press"                  # any press, at once (cancels typing)
    START_PTT = "start_ptt"          # press held past hold_s
    END_PTT = "end_ptt"              # release after a hold
    LONG_HOLD = "long_hold"          # still held after pair_hold_s
    TOGGLE_HANDSFREE = "toggle_handsfree"
    LISTEN = "listen"                # control: start hands-free listening
    STOP = "stop"                    # control: stop listening (or close the pairing window)
    RETYPE = "retype"
    TYPE_TEXT = "type_text"
    PAIR = "pair"
    # from the daemon's own workers
    SEGMENT_READY = "segment_ready"
    ASR_ERROR = "asr_error"          # whisper failed on one segment: it is dropped
    STREAM_END = "stream_end"        # the session's last segment is transcribed
    STREAM_END_PAIR = "stream_end_pair"  # ... and it was a silent long hold: open the pairing window
    SILENCE_TIMEOUT = "silence_timeout"
    TYPING_DONE = "typing_done"
    PAIRING_DONE = "pairing_done"
    PASSKEY_REQUEST = "passkey_request"  # a pairing host shows a code the keyboard must enter
    PASSKEY_DONE = "passkey_done"    # that request ended: answered, refused, or given up by the host or BlueZ
    MIC_LOST = "mic_lost"
    MIC_BACK = "mic_back"


class Transition(NamedTuple):
    next: State
    action: str | None


class IllegalTransition(Error, RuntimeError):
    """An event arrived in a state where it cannot happen; the daemon logs it and stays where it is."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"event {event.value!r} cannot happen in state {state.value!r}; ignored")
        self.state, self.event = state, event


S, E = State, Event


def _rows(state: State, rows: dict[Event, tuple[State, str | None]]) -> dict[tuple[State, Event], Transition]:
    return {(state, ev): Transition(nxt, action) for ev, (nxt, action) in rows.items()}


def _listening_rows(state: State) -> dict[Event, tuple[State, str | None]]:
    """What push-to-talk and hands-free listening share."""
    return {
        E.SEGMENT_READY: (state, "type_piece"),
        E.ASR_ERROR: (state, "drop_segment"),
        E.STREAM_END: (S.TYPING, "wait_typing"),         # the source ended by itself (end of a file)
        E.STREAM_END_PAIR: (S.TYPING, "wait_typing"),
        E.STOP: (S.TRANSCRIBING, "stop_capture"),
        E.LISTEN: (state, None),
        E.PRESS: (state, None),
        E.RETYPE: (state, "reject_busy"),
        E.TYPE_TEXT: (state, "reject_busy"),
        E.PAIR: (state, "reject_busy"),
        E.TYPING_DONE: (state, None),                    # one piece typed; more may come
        E.MIC_LOST: (S.ERROR, "mic_lost"),
        E.MIC_BACK: (state, None),
        E.PAIRING_DONE: (state, None),
        E.PASSKEY_REQUEST: (state, "refuse_passkey"),
    }


TRANSITIONS: dict[tuple[State, Event], Transition] = {
    **_rows(S.IDLE, {
        E.PRESS: (S.IDLE, None),
        E.START_PTT: (S.LISTENING, "start_ptt"),
        E.END_PTT: (S.IDLE, None),
        E.LONG_HOLD: (S.PAIRING, "open_pairing"),        # only when the hold could not start listening
        E.TOGGLE_HANDSFREE: (S.HANDSFREE, "start_handsfree"),
        E.LISTEN: (S.HANDSFREE, "start_handsfree"),
        E.STOP: (S.IDLE, None),
        E.RETYPE: (S.TYPING, "retype"),
        E.TYPE_TEXT: (S.TYPING, "type_text"),
        E.PAIR: (S.PAIRING, "open_pairing"),
        E.SILENCE_TIMEOUT: (S.IDLE, None),
        E.TYPING_DONE: (S.IDLE, None),
        E.PAIRING_DONE: (S.IDLE, None),
        E.MIC_LOST: (S.ERROR, "mic_lost"),
        E.MIC_BACK: (S.IDLE, None),
        E.PASSKEY_REQUEST: (S.PASSKEY, "start_passkey"),   # the window was opened by `sttkb bt pair`
    }),
    **_rows(S.LISTENING, {
        **_listening_rows(S.LISTENING),
        E.END_PTT: (S.TRANSCRIBING, "stop_capture"),
        E.LONG_HOLD: (S.LISTENING, "mark_pair_candidate"),  # pairs at release only if nothing was said
        E.START_PTT: (S.LISTENING, None),
        E.TOGGLE_HANDSFREE: (S.LISTENING, None),
        E.SILENCE_TIMEOUT: (S.LISTENING, None),           # push-to-talk never times out
    }),
    **_rows(S.HANDSFREE, {
        **_listening_rows(S.HANDSFREE),
        E.TOGGLE_HANDSFREE: (S.TRANSCRIBING, "stop_capture"),
        E.SILENCE_TIMEOUT: (S.TRANSCRIBING, "stop_capture"),
        E.START_PTT: (S.HANDSFREE, None),
        E.END_PTT: (S.HANDSFREE, None),
        E.LONG_HOLD: (S.HANDSFREE, None),
    }),
    **_rows(S.TRANSCRIBING, {
        E.SEGMENT_READY: (S.TRANSCRIBING, "type_piece"),
        E.ASR_ERROR: (S.TRANSCRIBING, "drop_segment"),
        E.STREAM_END: (S.TYPING, "wait_typing"),
        E.STREAM_END_PAIR: (S.PAIRING, "open_pairing"),
        E.PRESS: (S.TRANSCRIBING, None),                  # the next hold may start a new session
        E.START_PTT: (S.LISTENING, "start_ptt"),         # capture at once; transcribed after the tail
        E.TOGGLE_HANDSFREE: (S.HANDSFREE, "start_handsfree"),
        E.LISTEN: (S.HANDSFREE, "start_handsfree"),
        E.END_PTT: (S.TRANSCRIBING, None),
        E.LONG_HOLD: (S.TRANSCRIBING, None),
        E.STOP: (S.TRANSCRIBING, None),
        E.RETYPE: (S.TRANSCRIBING, "reject_busy"),
        E.TYPE_TEXT: (S.TRANSCRIBING, "reject_busy"),
        E.PAIR: (S.TRANSCRIBING, "reject_busy"),
        E.SILENCE_TIMEOUT: (S.TRANSCRIBING, None),
        E.TYPING_DONE: (S.TRANSCRIBING, None),
        E.PAIRING_DONE: (S.TRANSCRIBING, None),
        E.MIC_LOST: (S.ERROR, "mic_lost"),
        E.MIC_BACK: (S.TRANSCRIBING, None),
        E.PASSKEY_REQUEST: (S.TRANSCRIBING, "refuse_passkey"),
    }),
    **_rows(S.TYPING, {
        E.TYPING_DONE: (S.IDLE, "typing_done"),
        E.PRESS: (S.IDLE, "cancel_typing"),
        E.START_PTT: (S.LISTENING, "start_ptt"),
        E.TOGGLE_HANDSFREE: (S.HANDSFREE, "start_handsfree"),
        E.LISTEN: (S.HANDSFREE, "start_handsfree"),
        E.RETYPE: (S.TYPING, "retype"),
        E.TYPE_TEXT: (S.TYPING, "type_text"),
        E.PAIR: (S.TYPING, "reject_busy"),
        E.END_PTT: (S.TYPING, None),
        E.LONG_HOLD: (S.TYPING, None),
        E.STOP: (S.TYPING, None),
        E.SILENCE_TIMEOUT: (S.TYPING, None),
        E.PAIRING_DONE: (S.TYPING, None),
        E.MIC_LOST: (S.ERROR, "mic_lost"),
        E.MIC_BACK: (S.TYPING, None),
        E.PASSKEY_REQUEST: (S.TYPING, "refuse_passkey"),
    }),
    **_rows(S.PAIRING, {
        E.PAIRING_DONE: (S.IDLE, "pairing_done"),
        E.PRESS: (S.PAIRING, "close_pairing"),
        E.STOP: (S.PAIRING, "close_pairing"),
        E.PAIR: (S.PAIRING, None),
        E.START_PTT: (S.PAIRING, None),
        E.END_PTT: (S.PAIRING, None),
        E.LONG_HOLD: (S.PAIRING, None),
        E.TOGGLE_HANDSFREE: (S.PAIRING, None),
        E.LISTEN: (S.PAIRING, "reject_busy"),
        E.RETYPE: (S.PAIRING, "reject_busy"),
        E.TYPE_TEXT: (S.PAIRING, "reject_busy"),
        E.SILENCE_TIMEOUT: (S.PAIRING, None),
        E.TYPING_DONE: (S.PAIRING, None),
        E.MIC_LOST: (S.ERROR, "mic_lost"),
        E.MIC_BACK: (S.PAIRING, None),
        E.PASSKEY_REQUEST: (S.PASSKEY, "start_passkey"),
    }),
    **_rows(S.PASSKEY, {
        E.PASSKEY_DONE: (S.PAIRING, "passkey_done"),     # idle instead when the window is not the daemon's
        E.PASSKEY_REQUEST: (S.PASSKEY, "refuse_passkey"),  # one code at a time
        E.PRESS: (S.PAIRING, "stop_passkey"),            # refuse and close the window, like a press in pairing
        E.STOP: (S.PAIRING, "stop_passkey"),
        E.PAIRING_DONE: (S.PASSKEY, "pairing_done"),     # the window timed out: the request still runs its course
        E.PAIR: (S.PASSKEY, None),
        E.START_PTT: (S.PASSKEY, None),                  # a hold that began before the request
        E.END_PTT: (S.PASSKEY, None),
        E.LONG_HOLD: (S.PASSKEY, None),
        E.TOGGLE_HANDSFREE: (S.PASSKEY, None),
        E.LISTEN: (S.PASSKEY, "reject_busy"),
        E.RETYPE: (S.PASSKEY, "reject_busy"),            # nothing is typed while the code is being said
        E.TYPE_TEXT: (S.PASSKEY, "reject_busy"),
        E.SILENCE_TIMEOUT: (S.PASSKEY, None),
        E.TYPING_DONE: (S.PASSKEY, None),
        E.MIC_LOST: (S.ERROR, "mic_lost"),               # refuses the request: nothing left to hear it with
        E.MIC_BACK: (S.PASSKEY, None),
    }),
    **_rows(S.ERROR, {
        E.MIC_BACK: (S.IDLE, "mic_back"),
        E.MIC_LOST: (S.ERROR, None),
        E.SEGMENT_READY: (S.ERROR, "type_piece"),        # what was said before the mic went is still typed
        E.ASR_ERROR: (S.ERROR, "drop_segment"),
        E.STREAM_END: (S.ERROR, None),
        E.STREAM_END_PAIR: (S.ERROR, None),
        E.PRESS: (S.ERROR, "cancel_typing"),
        E.START_PTT: (S.ERROR, "reject_no_mic"),
        E.TOGGLE_HANDSFREE: (S.ERROR, "reject_no_mic"),
        E.LISTEN: (S.ERROR, "reject_no_mic"),
        E.LONG_HOLD: (S.ERROR, "open_pairing"),          # pairing needs no microphone
        E.PAIR: (S.ERROR, "open_pairing"),
        E.RETYPE: (S.ERROR, "retype"),                   # typing needs no microphone
        E.TYPE_TEXT: (S.ERROR, "type_text"),
        E.END_PTT: (S.ERROR, None),
        E.STOP: (S.ERROR, None),
        E.SILENCE_TIMEOUT: (S.ERROR, None),
        E.TYPING_DONE: (S.ERROR, None),
        E.PAIRING_DONE: (S.ERROR, None),
        E.PASSKEY_REQUEST: (S.ERROR, "refuse_passkey"),  # no microphone to hear the code
    }),
}

#: Daemon methods the table names; the daemon must implement each one (a test checks this).
ACTIONS = frozenset(t.action for t in TRANSITIONS.values() if t.action)

#: States in which the microphone is capturing.
CAPTURING = frozenset({S.LISTENING, S.HANDSFREE})


def transition(state: State, event: Event) -> Transition:
    """The next state and the daemon action for ``event`` in ``state``; raises :class:`IllegalTransition`."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None

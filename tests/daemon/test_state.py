"""The daemon's state machine, table-driven: every (state, event) pair, the legal ones and the illegal ones.

SPEC below is the behaviour written out by hand from the issues (what the user sees; issue #14 for
``passkey``, saying a Bluetooth pairing code), independent of how device/daemon/state.py builds its table.
"-" = illegal (cannot happen), "=" = stay, nothing to do.
"""

from __future__ import annotations

import pytest

from sttkb.daemon.state import (CAPTURING, TRANSITIONS, Event, IllegalTransition, State, Transition,
                                 transition)

SPEC = {
    "idle": {
        "passkey_request": "passkey:start_passkey", "passkey_done": "-",
        "press": "=", "start_ptt": "listening:start_ptt", "end_ptt": "=", "long_hold": "pairing:open_pairing",
        "toggle_handsfree": "handsfree:start_handsfree", "listen": "handsfree:start_handsfree", "stop": "=",
        "retype": "typing:retype", "type_text": "typing:type_text", "pair": "pairing:open_pairing",
        "segment_ready": "-", "asr_error": "-", "stream_end": "-", "stream_end_pair": "-",
        "silence_timeout": "=", "typing_done": "=", "pairing_done": "=", "mic_lost": "error:mic_lost",
        "mic_back": "=",
    },
    "listening": {
        "passkey_request": "listening:refuse_passkey", "passkey_done": "-",
        "press": "=", "start_ptt": "=", "end_ptt": "transcribing:stop_capture",
        "long_hold": "listening:mark_pair_candidate", "toggle_handsfree": "=", "listen": "=",
        "stop": "transcribing:stop_capture", "retype": "listening:reject_busy",
        "type_text": "listening:reject_busy", "pair": "listening:reject_busy",
        "segment_ready": "listening:type_piece", "asr_error": "listening:drop_segment",
        "stream_end": "typing:wait_typing", "stream_end_pair": "typing:wait_typing", "silence_timeout": "=",
        "typing_done": "=", "pairing_done": "=", "mic_lost": "error:mic_lost", "mic_back": "=",
    },
    "handsfree": {
        "passkey_request": "handsfree:refuse_passkey", "passkey_done": "-",
        "press": "=", "start_ptt": "=", "end_ptt": "=", "long_hold": "=",
        "toggle_handsfree": "transcribing:stop_capture", "listen": "=", "stop": "transcribing:stop_capture",
        "retype": "handsfree:reject_busy", "type_text": "handsfree:reject_busy", "pair": "handsfree:reject_busy",
        "segment_ready": "handsfree:type_piece", "asr_error": "handsfree:drop_segment",
        "stream_end": "typing:wait_typing", "stream_end_pair": "typing:wait_typing",
        "silence_timeout": "transcribing:stop_capture", "typing_done": "=", "pairing_done": "=",
        "mic_lost": "error:mic_lost", "mic_back": "=",
    },
    "transcribing": {
        "passkey_request": "transcribing:refuse_passkey", "passkey_done": "-",
        "press": "=", "start_ptt": "listening:start_ptt", "end_ptt": "=", "long_hold": "=",
        "toggle_handsfree": "handsfree:start_handsfree", "listen": "handsfree:start_handsfree", "stop": "=",
        "retype": "transcribing:reject_busy", "type_text": "transcribing:reject_busy",
        "pair": "transcribing:reject_busy", "segment_ready": "transcribing:type_piece",
        "asr_error": "transcribing:drop_segment", "stream_end": "typing:wait_typing",
        "stream_end_pair": "pairing:open_pairing", "silence_timeout": "=", "typing_done": "=",
        "pairing_done": "=", "mic_lost": "error:mic_lost", "mic_back": "=",
    },
    "typing": {
        "passkey_request": "typing:refuse_passkey", "passkey_done": "-",
        "press": "idle:cancel_typing", "start_ptt": "listening:start_ptt", "end_ptt": "=", "long_hold": "=",
        "toggle_handsfree": "handsfree:start_handsfree", "listen": "handsfree:start_handsfree", "stop": "=",
        "retype": "typing:retype", "type_text": "typing:type_text", "pair": "typing:reject_busy",
        "segment_ready": "-", "asr_error": "-", "stream_end": "-", "stream_end_pair": "-",
        "silence_timeout": "=", "typing_done": "idle:typing_done", "pairing_done": "=",
        "mic_lost": "error:mic_lost", "mic_back": "=",
    },
    "pairing": {
        "passkey_request": "passkey:start_passkey", "passkey_done": "-",
        "press": "pairing:close_pairing", "start_ptt": "=", "end_ptt": "=", "long_hold": "=",
        "toggle_handsfree": "=", "listen": "pairing:reject_busy", "stop": "pairing:close_pairing",
        "retype": "pairing:reject_busy", "type_text": "pairing:reject_busy", "pair": "=",
        "segment_ready": "-", "asr_error": "-", "stream_end": "-", "stream_end_pair": "-",
        "silence_timeout": "=", "typing_done": "=", "pairing_done": "idle:pairing_done",
        "mic_lost": "error:mic_lost", "mic_back": "=",
    },
    "passkey": {
        "passkey_request": "passkey:refuse_passkey", "passkey_done": "pairing:passkey_done",
        "press": "pairing:stop_passkey", "stop": "pairing:stop_passkey", "start_ptt": "=", "end_ptt": "=",
        "long_hold": "=", "toggle_handsfree": "=", "listen": "passkey:reject_busy", "retype": "passkey:reject_busy",
        "type_text": "passkey:reject_busy", "pair": "=", "segment_ready": "-", "asr_error": "-", "stream_end": "-",
        "stream_end_pair": "-", "silence_timeout": "=", "typing_done": "=", "pairing_done": "passkey:pairing_done",
        "mic_lost": "error:mic_lost", "mic_back": "=",
    },
    "error": {
        "passkey_request": "error:refuse_passkey", "passkey_done": "-",
        "press": "error:cancel_typing", "start_ptt": "error:reject_no_mic", "end_ptt": "=",
        "long_hold": "error:open_pairing", "toggle_handsfree": "error:reject_no_mic",
        "listen": "error:reject_no_mic", "stop": "=", "retype": "error:retype", "type_text": "error:type_text",
        "pair": "error:open_pairing", "segment_ready": "error:type_piece", "asr_error": "error:drop_segment",
        "stream_end": "=", "stream_end_pair": "=", "silence_timeout": "=", "typing_done": "=",
        "pairing_done": "=", "mic_lost": "=", "mic_back": "idle:mic_back",
    },
}

CASES = [(state, event, SPEC[state][event]) for state in SPEC for event in SPEC[state]]


def test_spec_covers_every_state_and_event():
    assert set(SPEC) == {s.value for s in State}
    for state, row in SPEC.items():
        assert set(row) == {e.value for e in Event}, state


@pytest.mark.parametrize("state,event,expected", CASES, ids=[f"{s}-{e}" for s, e, _ in CASES])
def test_transition(state, event, expected):
    st, ev = State(state), Event(event)
    if expected == "-":
        with pytest.raises(IllegalTransition, match=f"{event}.*{state}"):
            transition(st, ev)
        assert (st, ev) not in TRANSITIONS
        return
    if expected == "=":
        assert transition(st, ev) == Transition(st, None)
        return
    nxt, action = expected.split(":")
    assert transition(st, ev) == Transition(State(nxt), action)


def test_illegal_transition_is_a_runtime_error_the_daemon_can_log():
    with pytest.raises(RuntimeError) as info:
        transition(State.IDLE, Event.SEGMENT_READY)
    assert info.value.state is State.IDLE and info.value.event is Event.SEGMENT_READY


def _walk(events: list[str]) -> list[str]:
    state, seen = State.IDLE, []
    for ev in events:
        state = transition(state, Event(ev)).next
        seen.append(state.value)
    return seen


def test_push_to_talk_round_trip_goes_idle_listening_transcribing_typing_idle():
    assert _walk(["press", "start_ptt", "segment_ready", "end_ptt", "segment_ready", "stream_end",
                  "typing_done"]) == ["idle", "listening", "listening", "transcribing", "transcribing",
                                      "typing", "idle"]


def test_handsfree_stops_after_silence_and_a_press_cancels_the_typing():
    assert _walk(["toggle_handsfree", "segment_ready", "silence_timeout", "stream_end", "press"]) == [
        "handsfree", "handsfree", "transcribing", "typing", "idle"]


def test_a_silent_long_hold_opens_the_pairing_window_at_release():
    assert _walk(["start_ptt", "long_hold", "end_ptt", "stream_end_pair", "pairing_done"]) == [
        "listening", "listening", "transcribing", "pairing", "idle"]


def test_a_spoken_pairing_code_returns_to_the_open_window_and_its_closing_to_idle():
    assert _walk(["pair", "passkey_request", "passkey_done", "passkey_request", "passkey_done",
                  "pairing_done"]) == ["pairing", "passkey", "pairing", "passkey", "pairing", "idle"]


def test_a_press_while_the_code_is_said_closes_the_window():
    assert _walk(["pair", "passkey_request", "press", "pairing_done"]) == ["pairing", "passkey", "pairing", "idle"]


def test_a_busy_box_refuses_a_pairing_code_and_nothing_is_typed_meanwhile():
    for state in (State.LISTENING, State.HANDSFREE, State.TRANSCRIBING, State.TYPING, State.ERROR):
        assert transition(state, Event.PASSKEY_REQUEST) == Transition(state, "refuse_passkey")
    for event in (Event.RETYPE, Event.TYPE_TEXT, Event.LISTEN):
        assert transition(State.PASSKEY, event) == Transition(State.PASSKEY, "reject_busy")


def test_mic_loss_anywhere_goes_to_error_and_back_to_idle():
    for state in State:
        assert transition(state, Event.MIC_LOST).next is State.ERROR
    assert transition(State.ERROR, Event.MIC_BACK).next is State.IDLE


def test_capturing_states_are_the_listening_ones():
    assert CAPTURING == {State.LISTENING, State.HANDSFREE}

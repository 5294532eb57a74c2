"""The rule of ``[asr] beam_when_idle`` (sttkb.asr.idle_beam): which phrase gets a beam decode, how much time it has,
and how the time a beam decode takes is learned. Pure functions: no model (the real streaming case is in
test_idle_beam.py)."""

from __future__ import annotations

import pytest

from sttkb.config.audio import VadSettings
from sttkb.asr.idle_beam import (BEAM, RECENT, START_RATIO, BeamTimer, Horizons, budget_s, decide,
                                 next_phrase_end_s)

# A phrase a pause closed while the button is held, nothing else waiting, greedy heard words, 0.4 s expected, 0.55 s
# there: beam. Each row changes one thing.
TIME = dict(enabled=True, beam_size=1, closed_by_pause=True, awaited_at_pause=False, others_waiting=False,
            greedy_heard=True, estimate_s=0.40, budget_s=0.55)


@pytest.mark.parametrize("change, verdict", [
    ({}, BEAM),
    ({"enabled": False}, "off"),
    ({"beam_size": 5}, "beam everywhere"),                 # every decode is beam already
    ({"closed_by_pause": False}, "awaited now"),           # the release, the stream's end, the hands-free stop, batch
    ({"awaited_at_pause": True}, "awaited at the pause"),  # hands-free listening: the user waits at each pause
    ({"others_waiting": True}, "busy"),                    # a closed segment, a pause, the release is queued
    ({"greedy_heard": False}, "nothing heard"),            # silence and noise stay nothing
    ({"estimate_s": 0.56}, "no time"),
    ({"budget_s": 0.0}, "no time"),                        # the greedy decode itself ran past the budget
    ({"budget_s": -0.2}, "no time"),
    ({"estimate_s": 0.55}, BEAM),                          # exactly fits
    ({"closed_by_pause": False, "enabled": False}, "off"),
    ({"closed_by_pause": False, "estimate_s": 0.0, "budget_s": 10.0}, "awaited now"),   # time never beats the release
    ({"awaited_at_pause": True, "estimate_s": 0.0, "budget_s": 10.0}, "awaited at the pause"),
])
def test_decide(change, verdict):
    assert decide(**{**TIME, **change}) == verdict


@pytest.mark.parametrize("vad, seconds", [
    ({}, 0.25 + 0.24),                                     # min_speech 250 ms, then speculate_ms 240
    ({"speculate_ms": 0}, 0.25 + 0.70),                    # no decoding during the pause: end_silence_ms
    ({"speculate_ms": 100}, 0.25 + 0.24),                  # never before the post-roll is complete
    ({"speculate_ms": 2000}, 0.25 + 0.70),                 # never after end_silence_ms
    ({"min_speech_ms": 0}, 0.12 + 0.24),                   # a segment opens after 120 ms of speech at the least
    ({"min_speech_ms": 600, "end_silence_ms": 1000}, 0.60 + 0.24),
])
def test_next_phrase_end(vad, seconds):
    assert next_phrase_end_s(VadSettings(**vad)) == pytest.approx(seconds)


def test_budget_counts_from_the_close():
    assert budget_s(100.0, 100.0, 0.55) == pytest.approx(0.55)
    assert budget_s(100.0, 100.3, 0.55) == pytest.approx(0.25)     # the greedy decode after the close took 0.3 s
    assert budget_s(100.0, 101.0, 0.55) < 0
    assert budget_s(100.0, 100.1, 4.0) == pytest.approx(3.9)


def test_the_horizon_is_the_soonest_need_in_recent_dictation():
    h = Horizons()
    assert h.horizon_s(0.55) == 0.55                               # nothing seen: the soonest possible
    for seconds in (4.2, 6.0, 3.1):
        h.observe(seconds)
    assert h.horizon_s(0.55) == pytest.approx(3.1)
    h.observe(0.3)                                                 # let go 0.3 s after a pause closed a phrase
    assert h.horizon_s(0.55) == pytest.approx(0.3)                 # below the floor: no beam for a while
    for _ in range(RECENT):
        h.observe(5.0)
    assert h.horizon_s(0.55) == pytest.approx(5.0)                 # only recent dictation counts
    h.observe(-0.1)                                                # clocks: never negative
    assert h.horizon_s(0.55) == 0.0


def test_beam_timer_starts_conservative_and_learns():
    timer = BeamTimer()
    assert timer.ratio == START_RATIO and timer.estimate(0.2) == pytest.approx(0.2 * START_RATIO)
    timer.learn(0.20, 0.38)
    assert timer.ratio == pytest.approx(1.9)
    timer.learn(0.10, 0.21)
    assert timer.ratio == pytest.approx(2.0)                       # the mean of what was measured
    for _ in range(10):
        timer.learn(0.1, 0.3)
    assert timer.ratio == pytest.approx(3.0)                       # only the recent ones count
    timer.learn(0.0, 0.3)                                          # nothing to learn from
    assert timer.ratio == pytest.approx(3.0)


def test_an_abandoned_decode_raises_the_estimate_only_if_it_ran_longer_than_expected():
    timer = BeamTimer()
    timer.learn(0.2, 0.4)
    timer.learn_at_least(0.2, 0.1)                                 # stopped early: says nothing about its length
    assert timer.ratio == pytest.approx(2.0)
    timer.learn_at_least(0.2, 0.8)                                 # had run 4x the greedy time and was not done
    assert timer.ratio == pytest.approx(3.0)

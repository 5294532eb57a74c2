"""The VAD segmenter on synthetic signals (real webrtcvad): a vowel-like buzz stands in for a talker, room noise
for the pauses; noises that must never open a segment."""

from __future__ import annotations

import numpy as np
import pytest

from sttkb.audio.vad import POST_ROLL_MS, Segmenter
from sttkb.config.audio import VadSettings
from tests.speech import (RATE, buzz, concat, hum, keyboard_clicks, pink_noise, room, set_level, silence, speak,
                          white_noise)

FRAME = 0.03


def run(audio: np.ndarray, settings: VadSettings | None = None, chunk: int = 480, **kw):
    seg = Segmenter(settings or VadSettings(), **kw)
    out = []
    for i in range(0, len(audio), chunk):
        out.extend(seg.feed(audio[i:i + chunk]))
    out.extend(seg.flush())
    return seg, out


def test_pre_roll_is_kept_and_silence_after_is_trimmed():
    audio = concat(room(1.5), buzz(1.0), room(2.0))
    seg, out = run(audio)
    assert len(out) == 1
    s = out[0]
    # Speech starts at 1.5 s: the segment starts pre_roll (300 ms) earlier, to the frame.
    assert s.start_s == pytest.approx(1.5 - 0.3, abs=2 * FRAME)
    assert s.speech_end_s == pytest.approx(2.5, abs=2 * FRAME)
    # Only the post-roll of the 2 s of silence goes to the model.
    assert s.end_s == pytest.approx(2.5 + POST_ROLL_MS / 1000, abs=2 * FRAME)
    assert len(s.samples) == pytest.approx((s.end_s - s.start_s) * RATE, abs=1)
    assert s.speech_rms_dbfs == pytest.approx(-20, abs=2)
    assert s.pause_before_s == pytest.approx(1.5, abs=2 * FRAME)


def test_a_pause_shorter_than_end_silence_keeps_one_segment_a_longer_one_splits():
    short = concat(room(0.5), buzz(1.0), room(0.45), buzz(1.0), room(1.5))
    _, out = run(short)
    assert len(out) == 1

    long = concat(room(0.5), buzz(1.0), room(1.2), buzz(1.0), room(1.5))
    _, out = run(long)
    assert len(out) == 2
    assert out[1].pause_before_s == pytest.approx(1.2, abs=2 * FRAME)
    assert out[0].end_s <= out[1].start_s + 1e-9


def test_segment_is_released_after_end_silence_not_at_end_of_stream():
    settings = VadSettings(end_silence_ms=600)
    seg = Segmenter(settings)
    audio = concat(room(0.5), buzz(1.0), room(5.0))
    released_at = None
    for i in range(0, len(audio), 480):
        if seg.feed(audio[i:i + 480]):
            released_at = (i + 480) / RATE
            break
    assert released_at == pytest.approx(1.5 + 0.6, abs=2 * FRAME)


@pytest.mark.parametrize(("speech_s", "kept"), [(0.15, False), (0.2, False), (0.45, True)])
def test_min_speech(speech_s, kept):
    seg, out = run(concat(room(1.0), buzz(speech_s), room(1.5)), VadSettings(min_speech_ms=250))
    assert bool(out) == kept
    if not kept:
        assert seg.stats.segments == 0


def test_long_speech_is_cut_at_its_quietest_point_and_continues():
    # 18 s of talking with a 400 ms pause (shorter than end_silence) at 8.0-8.4 s; max 12 s.
    audio = concat(room(0.5), buzz(7.5), room(0.4), buzz(10.0), room(1.5))
    seg, out = run(audio, VadSettings(max_segment_s=12.0))
    assert seg.stats.cuts_at_max == 1
    assert len(out) == 2
    first, second = out
    assert first.duration_s <= 12.0 + 1e-9
    # The cut falls inside the soft stretch, not at the hard 12 s limit.
    assert 8.0 - FRAME <= first.end_s <= 8.4 + FRAME
    assert second.start_s == pytest.approx(first.end_s)
    assert second.pause_before_s == 0.0
    # Nothing lost at the cut: the two pieces are contiguous audio.
    assert np.array_equal(np.concatenate([first.samples, second.samples])[: len(first.samples) + 480],
                          audio[int(first.start_s * RATE): int(first.start_s * RATE) + len(first.samples) + 480])


def test_max_segment_override_from_the_encoder_window_wins_when_smaller():
    phrases = [part for _ in range(6) for part in (buzz(3.0), room(0.3))]  # 20 s of talk, a breath every 3 s
    _, out = run(concat(room(0.5), *phrases, room(1.0)), VadSettings(max_segment_s=25.0), max_segment_s=10.0)
    assert len(out) >= 2
    assert max(s.duration_s for s in out) <= 10.0 + 1e-9


@pytest.mark.parametrize("level", [-52.0, -60.0])
def test_level_gate_keeps_quiet_sounds_out(level):
    seg, out = run(concat(room(1.0, -80), buzz(1.0, level), room(1.0, -80)), VadSettings(level_gate_dbfs=-45.0))
    assert out == []
    assert seg.stats.voiced_frames == 0


def test_a_breath_does_not_open_a_segment():
    # A breath: 300 ms of soft noise with a swell.
    env = np.sin(np.linspace(0, np.pi, int(0.3 * RATE))) ** 2
    breath = (white_noise(0.3, -38) * env).astype(np.float32)
    _, out = run(concat(room(1.0), breath, room(1.0), breath, room(1.0)))
    assert out == []


@pytest.mark.parametrize("noise", [
    pytest.param(lambda: silence(30.0), id="digital-silence"),
    pytest.param(lambda: room(30.0, -60), id="room"),
    pytest.param(lambda: white_noise(30.0, -20), id="white"),
    pytest.param(lambda: pink_noise(30.0, -20), id="pink"),
    pytest.param(lambda: hum(30.0, -15), id="hum"),
    pytest.param(lambda: keyboard_clicks(30.0), id="keyboard"),
    pytest.param(lambda: keyboard_clicks(30.0, per_second=12.0, seed=4), id="fast-typing"),
    pytest.param(lambda: concat(silence(5.0), white_noise(25.0, -20)), id="fan-switched-on"),
])
def test_noise_alone_never_makes_a_segment(noise):
    seg, out = run(noise())
    assert out == [], [(s.start_s, s.end_s) for s in out]


def test_speech_over_steady_noise_is_still_found():
    said = speak("Please send the report by Friday afternoon.", "en-us", 160, level_dbfs=-18)
    noise = pink_noise(2.0 + len(said) / RATE + 2.0, -35)
    audio = noise.copy()
    audio[2 * RATE:2 * RATE + len(said)] += said
    _, out = run(audio)
    assert len(out) == 1
    assert out[0].start_s < 2.0 and out[0].speech_end_s > 2.0 + len(said) / RATE - 0.3


def test_chunk_size_does_not_change_the_segments():
    audio = concat(room(0.7), buzz(1.3), room(1.0), buzz(0.8), room(1.2))
    _, a = run(audio, chunk=480)
    _, b = run(audio, chunk=137)
    _, c = run(audio, chunk=16000)
    assert [(s.start_s, s.end_s) for s in a] == [(s.start_s, s.end_s) for s in b] == [(s.start_s, s.end_s) for s in c]
    assert len(a) == 2


def test_flush_closes_speech_in_progress():
    seg = Segmenter(VadSettings())
    assert seg.feed(concat(room(0.5), buzz(1.0))) == []
    assert seg.in_speech
    out = seg.flush()
    assert len(out) == 1 and out[0].speech_end_s == pytest.approx(1.5, abs=2 * FRAME)
    assert not seg.in_speech


def test_espeak_sentences_make_one_segment_each():
    parts = [room(0.5)]
    for text in ("The meeting starts at nine.", "Bring the slides and the budget.", "Thanks a lot."):
        parts += [speak(text, "en-gb", 150), room(2.0)]
    _, out = run(concat(*parts))
    assert len(out) == 3


def test_segment_level_reflects_speech_level():
    _, out = run(concat(room(0.5), set_level(buzz(1.0), -30), room(1.0)))
    assert out[0].speech_rms_dbfs == pytest.approx(-30, abs=2)


def test_periodicity_tells_vowels_from_noise_and_clicks():
    from sttkb.audio.vad import PERIODIC_MIN, periodicity
    vowel = buzz(0.03, syllable_s=0)
    assert periodicity(vowel[:480]) > 0.8
    assert periodicity(white_noise(0.03)[:480]) < PERIODIC_MIN
    clicks = keyboard_clicks(3.0, per_second=30.0, floor_dbfs=-90)
    frames = [clicks[i:i + 480] for i in range(0, len(clicks) - 480, 480)]
    loud = [f for f in frames if np.sqrt(np.mean(f ** 2)) > 0.01]
    assert loud and np.mean([periodicity(f) >= PERIODIC_MIN for f in loud]) < 0.2


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_every_frame_length_finds_a_low_voice(frame_ms):
    _, out = run(concat(room(0.5), buzz(1.0, f0=95.0), room(1.5)), VadSettings(frame_ms=frame_ms))
    assert len(out) == 1 and out[0].speech_end_s == pytest.approx(1.5, abs=0.1)


# -- the segment offered while a pause is still going on ([vad] speculate_ms) ---------------------------------------
def offers_and_closes(audio: np.ndarray, settings: VadSettings, *, release_at_s: float | None = None):
    """Feed ``audio`` in 30 ms chunks, asking for a tentative segment after each; the button is released (flush)
    at ``release_at_s``. Returns (offered segments with the stream time they were offered, closed segments)."""
    seg = Segmenter(settings)
    offered, closed = [], []
    end = len(audio) if release_at_s is None else int(release_at_s * RATE)
    for i in range(0, end, 480):
        closed.extend(seg.feed(audio[i:min(i + 480, end)]))
        t = seg.tentative()
        if t is not None:
            offered.append((seg.position_s, t))
    closed.extend(seg.flush())
    return offered, closed


def same(a, b) -> bool:
    return (a.start_s, a.end_s, a.speech_end_s, a.pause_before_s) == (b.start_s, b.end_s, b.speech_end_s,
                                                                      b.pause_before_s) \
        and np.array_equal(a.samples, b.samples)


def test_a_pause_that_lasts_closes_exactly_the_offered_segment():
    settings = VadSettings(speculate_ms=300, end_silence_ms=700)
    offered, closed = offers_and_closes(concat(room(0.5), buzz(1.2), room(0.9), buzz(1.0), room(1.5)), settings)
    assert len(closed) == 2 and len(offered) == 2        # once per pause, not once per frame
    for (at, t), c in zip(offered, closed):
        assert same(t, c)
        # offered after speculate_ms of silence, before end_silence_ms closed it
        assert 0.3 - FRAME <= at - t.speech_end_s <= 0.7


def test_the_button_released_during_the_pause_closes_the_offered_segment():
    settings = VadSettings(speculate_ms=300, end_silence_ms=700)
    offered, closed = offers_and_closes(concat(room(0.5), buzz(1.2), room(2.0)), settings, release_at_s=2.2)
    assert len(offered) == 1 and len(closed) == 1
    assert same(offered[0][1], closed[0])


def test_speech_that_resumes_never_closes_what_was_offered():
    settings = VadSettings(speculate_ms=300, end_silence_ms=700)
    offered, closed = offers_and_closes(concat(room(0.5), buzz(1.2), room(0.5), buzz(1.0), room(1.5)), settings)
    assert len(closed) == 1 and len(offered) == 2          # the thinking pause, then the real end
    assert not same(offered[0][1], closed[0])
    assert closed[0].end_s > offered[0][1].end_s + 0.9
    assert same(offered[1][1], closed[0])


def test_offering_changes_nothing_that_closes():
    audio = concat(room(0.5), buzz(1.2), room(0.5), buzz(0.6), room(0.9), buzz(1.0), room(1.5))
    _, plain = run(audio, VadSettings(speculate_ms=0))
    offered, closed = offers_and_closes(audio, VadSettings(speculate_ms=300))
    assert offered and len(closed) == len(plain)
    assert all(same(a, b) for a, b in zip(closed, plain))


def test_speculate_zero_offers_nothing():
    offered, closed = offers_and_closes(concat(room(0.5), buzz(1.2), room(1.5)), VadSettings(speculate_ms=0))
    assert offered == [] and len(closed) == 1


def test_a_too_short_burst_is_never_offered():
    offered, closed = offers_and_closes(concat(room(0.5), buzz(0.15), room(1.5)), VadSettings(speculate_ms=300))
    assert offered == [] and closed == []


@pytest.mark.parametrize("clip", ["05-en-us-f3-175.flac", "02-en-us-165.flac"])
def test_speech_that_starts_with_the_stream_keeps_its_first_words(clip):
    """The user talks the moment the button goes down: the recording starts mid-word. The room has not been heard
    yet, so the speech itself must not be taken for the noise floor ("Remind me to water ..." lost "Remind me to"
    when the first 0.4 s were cut)."""
    from sttkb.audio.files import read_audio
    from sttkb.cli.bench import BENCH_DATA
    audio = read_audio(BENCH_DATA / clip)
    assert np.abs(audio[:800]).max() > 0.01, "the clip must start with speech for this check to mean anything"
    _, out = run(audio)
    # the first segment's pause_before_s is where its first voiced frame is in the stream
    assert out and out[0].start_s == 0.0 and out[0].pause_before_s <= 0.15, [(s.start_s, s.pause_before_s)
                                                                              for s in out]

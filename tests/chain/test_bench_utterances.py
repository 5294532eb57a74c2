"""`sttkb bench`, per utterance (sttkb.cli.bench_utterances): the median and p90, the typed-text check, the rows it
prints, the jobs it runs; and, with the real model, one hold-to-talk utterance and one per-utterance decode."""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics

import pytest

from sttkb.cli import bench
from sttkb.cli.bench_utterances import (HOLD_HEADER, SEARCHES, TARGET_RELEASE_TO_LAST_KEY_S, engine_jobs,
                                        format_engines, format_hold, format_utterances, hold_row, percentile,
                                        text_mismatch, wer_of)
from sttkb.models.wer import word_error_rate

PIECES = ["And so my fellow Americans,", " ask not what your country can do for you,",
          " ask what you can do for your country."]


# -- median and p90 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4, 9, 10, 11, 20])
def test_percentile_is_the_median_and_the_inclusive_quantile(n):
    rng = random.Random(n)
    values = [rng.uniform(0.05, 3.0) for _ in range(n)]
    assert percentile(values, 50) == pytest.approx(statistics.median(values))
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    assert percentile(values, 90) == pytest.approx(deciles[8])
    assert percentile(values, 10) == pytest.approx(deciles[0])
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)
    shuffled = values[:]
    rng.shuffle(shuffled)
    assert percentile(shuffled, 90) == percentile(values, 90)        # order does not matter
    qs = [percentile(values, q) for q in range(0, 101, 5)]
    assert qs == sorted(qs)                                          # never decreases with q


def test_percentile_of_few_or_missing_values():
    assert percentile([0.7], 50) == 0.7 and percentile([0.7], 90) == 0.7
    with_missing = [0.2, float("nan"), 0.4, None, 0.9]
    assert percentile(with_missing, 50) == percentile([0.2, 0.4, 0.9], 50)   # a NaN (no timing) is left out
    assert math.isnan(percentile([], 50)) and math.isnan(percentile([float("nan")], 90))
    with pytest.raises(ValueError):
        percentile([1.0, 2.0], 101)


# -- the typed text against the chain's --------------------------------------------------------------------
def test_the_same_text_is_no_mismatch():
    text = "".join(PIECES)
    assert text_mismatch(text, text) is None
    assert text_mismatch("", "") is None


def test_a_lost_piece_is_reported_with_what_never_arrived():
    chain = "".join(PIECES)
    typed = "".join(PIECES[:-1])
    why = text_mismatch(chain, typed)
    assert why is not None and "lost" in why
    assert f"{len(PIECES[-1])} character(s)" in why and PIECES[-1][:20] in why


def test_a_doubled_piece_is_reported_as_typed_twice():
    chain = "".join(PIECES)
    why = text_mismatch(chain, chain + PIECES[1])
    assert why is not None and "typed twice" in why and f"{len(PIECES[1])} character(s) too many" in why
    assert "typed twice" not in (text_mismatch(chain, chain + " Thank you.") or "")


def test_a_changed_character_is_reported_where_it_is():
    chain = "".join(PIECES)
    at = chain.index("country")
    typed = chain[:at] + "C" + chain[at + 1:]
    why = text_mismatch(chain, typed)
    assert why is not None and f"from character {at} on" in why and "'Country" in why and "'country" in why


# -- the rows ----------------------------------------------------------------------------------------------
def utterance(name: str, to_text: float, typing: float, typed: str | None = None, chain: str = "Hello there.") -> dict:
    return {"name": name, "audio_s": 5.0, "release_to_text_s": to_text, "typing_s": typing,
            "release_to_last_key_s": to_text + typing, "pieces": 2, "pieces_before_release": 1,
            "chain_text": chain, "typed": chain if typed is None else typed}


def hold_result(times: list[tuple[float, float]], **kw) -> dict:
    return {"model": "tiny.en-q8_0", "tail_s": 0.3, "keyboard": {"layout": "us", "key_delay_ms": 10.0},
            "utterances": [utterance(f"{i:02d}-clip", a, b) for i, (a, b) in enumerate(times)], **kw}


def cells(line: str) -> list[str]:
    return line.split()


def test_a_row_puts_each_value_under_its_header():
    """Right-aligned under the header, whatever the name's length; a NaN time prints "-", None leaves it blank."""
    header_ends = [m.end() for m in re.finditer(r"audio s|release->text|typing|release->last key|chars", HOLD_HEADER)]
    for name in ("01-jfk", "a-very-long-clip-name-that-is-cut-here"):
        row = hold_row(name, 11.04, 0.412, 0.396, 0.808, 110, "2 of 3 piece(s)")
        ends = [row.index(v) + len(v) for v in ("11.04", "0.41", "0.40", "0.81", "110")]
        assert ends == header_ends, (name, row)
    missing = hold_row("x", 4.0, 0.3, float("nan"), float("nan"), 0)
    assert missing[header_ends[2] - 1] == "-" and missing[header_ends[3] - 1] == "-"
    summary = hold_row("median", None, 0.3, 0.2, 0.5)
    assert summary[header_ends[0] - 7:header_ends[0]].strip() == ""


def test_the_hold_report_has_a_row_per_utterance_its_median_p90_and_the_target():
    rng = random.Random(7)
    times = [(rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.9)) for _ in range(9)]
    report = format_hold(hold_result(times))
    lines = report
    print("\n".join(lines))
    for i, (a, b) in enumerate(times):
        row = cells(next(line for line in lines if line.strip().startswith(f"{i:02d}-clip")))
        assert row[2:5] == [f"{a:.2f}", f"{b:.2f}", f"{a + b:.2f}"]
    columns = list(zip(*times))
    columns.append(tuple(a + b for a, b in times))
    median = cells(next(line for line in lines if line.strip().startswith("median")))
    p90 = cells(next(line for line in lines if line.strip().startswith("p90")))
    assert median[1:] == [f"{statistics.median(c):.2f}" for c in columns]
    assert p90[1:] == [f"{statistics.quantiles(c, n=10, method='inclusive')[8]:.2f}" for c in columns]
    total = statistics.median(columns[2])
    verdict = "met" if total <= TARGET_RELEASE_TO_LAST_KEY_S else "not met"
    assert any(f"median {total:.2f} s over 9 utterance(s)" in line and f"; {verdict})" in line for line in lines)
    assert any("key_delay_ms 10.0" in line for line in lines)          # the pace measured is printed
    assert any("nothing lost or doubled" in line for line in lines)
    assert not any("TYPED TEXT WRONG" in line for line in lines)


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_the_target_is_met_only_at_or_below_half_a_second(scale):
    times = [(0.1 * scale, 0.05 * scale), (0.2 * scale, 0.1 * scale), (0.15 * scale, 0.2 * scale)]
    median = statistics.median(a + b for a, b in times)
    target = next(line for line in format_hold(hold_result(times)) if "target <=" in line)
    assert target.endswith(f"{'met' if median <= 0.5 else 'not met'}); medians of its parts: release -> final "
                           f"text {statistics.median(a for a, _ in times):.2f} s, typing "
                           f"{statistics.median(b for _, b in times):.2f} s")


def test_the_hold_report_says_which_utterance_was_typed_wrong():
    hold = hold_result([(0.2, 0.3), (0.25, 0.3), (0.3, 0.3)])
    chain = "".join(PIECES)
    hold["utterances"][1].update(chain_text=chain, typed=chain + PIECES[2])
    lines = format_hold(hold)
    wrong = [line for line in lines if "TYPED TEXT WRONG" in line]
    assert len(wrong) == 1 and "01-clip" in wrong[0] and text_mismatch(chain, chain + PIECES[2]) in wrong[0]
    assert not any("nothing lost or doubled" in line for line in lines)


def test_wer_of_each_utterance_adds_up():
    references = ["ask not what your country can do for you", "thank you very much"]
    texts = ["Ask not what your country can do for you.", "Thank you, very mulch. Yes"]
    result = wer_of(references, texts)
    per = [word_error_rate(r, t) for r, t in zip(references, texts)]
    assert result["scores"] == [[p.errors, p.reference_words] for p in per]
    assert result["wer_errors"] == sum(p.errors for p in per) and result["ref_words"] == sum(
        p.reference_words for p in per)
    assert result["wer"] == pytest.approx(result["wer_errors"] / result["ref_words"])
    assert wer_of([None, "x"], ["a", "x"]) == {}


def test_the_engine_rows_give_median_p90_and_wer_per_configuration():
    rng = random.Random(3)
    references = ["one two three four", "five six seven", "eight nine ten"]
    engines = {}
    for label, texts in (("sttkb (whisper.cpp) tiny.en-q8_0 ctx 768 greedy", ["one two three four", "five six",
                                                                               "eight nine ten"]),
                         ("faster-whisper int8 tiny.en beam 5", ["one two tree four", "five six seven",
                                                                 "eight nine ten"])):
        engines[label] = {"decode_s": [rng.uniform(0.2, 0.8) for _ in texts], "audio_s": [5.0, 6.0, 7.0],
                          "texts": texts, "threads": 2, **wer_of(references, texts)}
    lines = format_engines(engines, "not installed")
    print("\n".join(lines))
    assert "3 utterance(s)" in lines[0] and "2 threads" in lines[0]
    for label, r in engines.items():
        line = next(line for line in lines if line.strip().startswith(label))
        values = line[len(label) + 2:].split()
        assert values[:3] == [f"{statistics.median(r['decode_s']):.2f}",
                              f"{statistics.quantiles(r['decode_s'], n=10, method='inclusive')[8]:.2f}", "6.00"]
        assert " ".join(values[3:]) == f"{r['wer']:.1%} ({r['wer_errors']} of {r['ref_words']})"
    assert lines[-1] == "  faster-whisper: not installed"
    both = format_utterances(hold_result([(0.2, 0.2)]), engines)
    assert both.index("(7) hold-to-talk") < both.index("(8) per utterance")


def test_every_configuration_is_its_own_job():
    clips = [["a", "/tmp/a.wav"]]
    jobs = engine_jobs("tiny.en-q8_0", "/m.bin", 768, "/ct2", clips, threads=2, config=None, audio_ctx=None)
    assert len(jobs) == 2 * len(SEARCHES)
    beams = {(j["kind"], j["beam_size"]) for j in jobs.values()}
    assert beams == {(k, b) for k in ("utterances-sttkb", "utterances-faster-whisper") for _, b in SEARCHES}
    assert {1, 5} <= {b for _, b in SEARCHES}
    assert all(j["clips"] == clips and j["threads"] == 2 for j in jobs.values())
    without_fw = engine_jobs("tiny.en-q8_0", "/m.bin", 768, None, clips, threads=2)
    assert {j["kind"] for j in without_fw.values()} == {"utterances-sttkb"}


def test_the_new_rows_can_be_skipped():
    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers())
    args = parser.parse_args(["bench", "--skip-hold-to-talk", "--skip-per-utterance"])
    assert args.skip_hold_to_talk and args.skip_per_utterance
    assert bench.per_utterance_runs(args, [], None, None, "m", 768, 2, None) == (None, None, None)
    default = parser.parse_args(["bench"])
    assert not default.skip_hold_to_talk and not default.skip_per_utterance


# -- with the real model -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_one_utterance_held_decoded_and_typed(default_model, tmp_path):
    """The JFK recording as one press: the host shows exactly the chain's text, the times add up; and decoded whole
    by sttkb greedy, its words are right."""
    from sttkb.audio.files import read_audio, write_wav
    from sttkb.cli.bench_utterances import child_hold_to_talk, child_utterances_sttkb
    from tests.speech import JFK_TEXT, JFK_WAV

    path = tmp_path / "jfk.wav"
    write_wav(path, bench.cut_after_speech(read_audio(JFK_WAV)))
    clips = [["jfk", str(path)]]
    hold = child_hold_to_talk({"model_path": str(default_model), "threads": 2, "clips": clips})
    print("\n".join(format_hold(hold)))
    (u,) = hold["utterances"]
    assert u["typed"] == u["chain_text"] and word_error_rate(JFK_TEXT, u["typed"]).wer <= 0.1
    assert u["release_to_text_s"] >= 0 and u["typing_s"] >= 0
    assert u["release_to_last_key_s"] == pytest.approx(u["release_to_text_s"] + u["typing_s"], abs=1e-6)
    assert hold["keyboard"]["layout"] == "us"
    decoded = child_utterances_sttkb({"model_path": str(default_model), "threads": 2, "beam_size": 1,
                                      "clips": clips})
    assert len(decoded["decode_s"]) == 1 and decoded["decode_s"][0] > 0
    assert word_error_rate(JFK_TEXT, decoded["texts"][0]).wer <= 0.1

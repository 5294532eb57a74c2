"""`sttkb bench`: the speech it uses, how it scores each clip, the report it prints, and one short real run
(numbers are printed, never asserted: speed depends on the machine)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sttkb.audio.files import read_audio, write_wav
from sttkb.cli.bench import (BENCH_DATA, PAUSE_S, TAIL_AFTER_SPEECH_S, Clip, cut_after_speech, dictation,
                             format_report, formatted_score, load_clips, score_clips, scored, sentence_ends)
from sttkb.models.wer import normalize_words
from tests.speech import JFK_TEXT, JFK_WAV, paragraph, room, speak

SENTENCES = [("The weather will be sunny and warm tomorrow afternoon.", "en-us", 160),
             ("Please remember to bring your notebook to the meeting.", "en-gb", 140)]


def test_built_in_speech_is_real_and_varied():
    clips = load_clips(BENCH_DATA)
    jfk = next(c for c in clips if "jfk" in c.name)
    assert jfk.path.read_bytes() == JFK_WAV.read_bytes() and jfk.text == JFK_TEXT
    voices = {c.name.split("-", 1)[1].rsplit("-", 1)[0] for c in clips if c is not jfk}
    assert len(voices) >= 6, voices
    texts = [c.text for c in clips]
    assert len(set(texts)) == len(texts), "every clip says something else"
    assert sum(len(normalize_words(t)) for t in texts) >= 150  # one error moves the total WER < 0.7 points
    for clip in clips:
        assert 3.0 < len(read_audio(clip.path)) / 16000 < 14.0, clip.name  # one segment each at audio_ctx 768


def test_dictation_says_the_clips_with_pauses_between(tmp_path):
    first, second = speak("Good morning everyone.", "en-us", 160), speak("See you later.", "en-gb", 150)
    write_wav(tmp_path / "a.wav", first)
    write_wav(tmp_path / "b.flac", second)
    for name, text in (("a", "Good morning everyone."), ("b", "See you later.")):
        (tmp_path / f"{name}.txt").write_text(text + "\n")
    (tmp_path / "no-text.wav").write_bytes((tmp_path / "a.wav").read_bytes())  # no .txt: not a clip
    clips = load_clips(tmp_path)
    assert [(c.name, c.text) for c in clips] == [("a", "Good morning everyone."), ("b", "See you later.")]
    audio, spans = dictation(clips)
    a, b = len(first) / 16000, len(second) / 16000
    assert spans == [(0.0, pytest.approx(a, abs=1e-3)), (pytest.approx(a + PAUSE_S, abs=1e-3),
                                                          pytest.approx(a + PAUSE_S + b, abs=1e-3))]
    assert len(audio) / 16000 == pytest.approx(a + PAUSE_S + b, abs=1e-3)


def test_each_piece_counts_for_the_clip_it_is_in():
    clips = [Clip("one", JFK_WAV, "ask not what your country can do"), Clip("two", JFK_WAV, "see you later")]
    spans = [(0.0, 4.0), (5.5, 8.0)]
    pieces = [(0.2, 2.0, "Ask not what your"), (2.1, 3.9, " country can do."), (5.6, 7.9, " See you letter."),
              (8.1, 8.4, " Bye.")]  # after the end: the nearest clip
    one, two = score_clips(clips, spans, pieces)
    assert (one.errors, one.reference_words) == (0, 7)
    assert (two.errors, two.reference_words) == (2, 3)
    assert score_clips([Clip("x", JFK_WAV, None)], [(0.0, 1.0)], pieces) == [None]


def test_the_formatted_score_reads_the_whole_dictation_as_typed():
    """Sentence breaks and capitals count: the chain's pieces carry their own spaces and held marks, other engines'
    segments are joined with a space."""
    clips = [Clip("a", JFK_WAV, "And so my fellow Americans, ask not."), Clip("b", JFK_WAV, "Thank you.")]
    typed = [(0.0, 2.0, "And so my fellow Americans"), (2.5, 4.0, ", ask not"), (2.5, None, ". "),
             (6.0, 7.0, "Thank you"), (6.0, 7.0, ". ")]
    assert formatted_score(clips, typed) == [0, 9]
    choppy = [(0.0, 2.0, " And so my fellow Americans."), (2.5, 4.0, " Ask not!"), (6.0, 7.0, " Thank you.")]
    assert formatted_score(clips, choppy) == [3, 9]     # "Americans." "Ask" "not!"; "Thank you." is right


def test_the_whole_dictation_is_also_scored_in_one_alignment():
    """A piece that runs across two clips (a short phrase decoded with the next one) counts its words where they
    are in the one-alignment WER; the per-clip total counts them against the wrong clip."""
    clips = [Clip("a", JFK_WAV, "We met in Lisbon."), Clip("b", JFK_WAV, "It rained all day.")]
    spans = [(0.0, 2.0), (3.5, 5.0)]
    pieces = [(0.0, 1.0, "We met"), (1.5, 5.0, " in Lisbon. It rained all day"), (1.5, None, ". ")]
    result = scored(clips, spans, pieces)
    assert result["whole_wer"] == [0, 8] and result["formatted"] == [0, 8]
    assert result["wer_errors"] == 4                     # "in lisbon" missing in a, inserted in b
    assert result["sentence_ends"] == 2
    assert sentence_ends('He said "stop." Then? Yes! No, 3.5 ok...') == 4
    assert scored([Clip("x", JFK_WAV, None)], [(0.0, 1.0)], pieces) == {}


def test_recording_ends_shortly_after_the_last_speech():
    audio, spans = paragraph(SENTENCES, [2.0], tail_s=5.0)
    cut = cut_after_speech(audio)
    assert len(cut) / 16000 == pytest.approx(spans[-1][1] + TAIL_AFTER_SPEECH_S, abs=0.1)


def test_report_has_every_measurement():
    speech = {"source": "test set", "audio_s": 30.0, "clips": [["01-jfk", 22], ["02-en-us", 18]], "sentence_ends": 3}

    def scored(errors: tuple[int, int], formatted: int = 0, ends: int = 3, **kw) -> dict:
        return dict(scores=[[errors[0], 22], [errors[1], 18]], wer_errors=sum(errors), ref_words=40,
                    wer=sum(errors) / 40, whole_wer=[sum(errors), 40], formatted=[formatted, 44],
                    sentence_ends=ends, **kw)

    main = scored((0, 2), model="tiny.en-q8_0", audio_s=30.0, segments=4, audio_ctx=768, stream_latency_s=0.6,
                  stream_last_asr_s=0.55, stream_pieces_before_release=3, batch_latency_s=2.4, chain_cpu_s=4.5,
                  raw_cpu_s=4.2, raw_prompted_cpu_s=4.4, vad_cpu_s=0.06, pipeline_cpu_s=0.0012,
                  pipeline_segments=4, peak_rss_mb=150.0, streamed=scored((1, 2), formatted=6, ends=5))
    f16 = dict(main, **scored((0, 1)), peak_rss_mb=190.0)
    whole = scored((1, 2), formatted=4, batch_latency_s=3.0, chain_cpu_s=6.0, audio_s=30.0)
    window = dict(main, **scored((0, 3)), audio_ctx=0, chain_cpu_s=11.25, batch_latency_s=5.0)
    fw = scored((0, 1), batch_latency_s=3.3, chain_cpu_s=9.0, audio_s=30.0, peak_rss_mb=380.0)
    report = format_report(speech, {"tiny.en-q8_0": main, "tiny.en-f16": f16}, "test machine", whole=whole,
                           window=window, fw=fw)
    print(report)
    assert "40 words (one word = 2.5 WER points)" in report and "test machine" in report
    assert "streaming / batch = 0.25" in report and "streaming / faster-whisper = 0.18" in report
    assert "overhead x1.07" in report and "overhead of the chain's own code x1.02" in report
    assert "the VAD 0.0020 CPU s per audio s" in report and "text pipeline 0.30 ms per segment" in report
    def row(start: str) -> list[str]:
        return row_of(report, start)

    # columns: streamed, tiny.en-q8_0, tiny.en-f16, whole file, full window, faster-whisper
    assert row("clip")[2:] == ["streamed", "tiny.en-q8_0", "tiny.en-f16", "whole", "file", "full", "window",
                               "faster-whisper"]
    assert row("01-jfk") == ["01-jfk", "22", "1", "4.5%", "0", "0.0%", "0", "0.0%", "1", "4.5%", "0", "0.0%", "0",
                             "0.0%"]
    assert row("total")[:6] == ["total", "40", "3", "7.5%", "2", "5.0%"]
    assert row("all text, one alignment")[4:8] == ["40", "3", "7.5%", "2"]
    assert row("formatted (case, punct.)")[3:7] == ["44", "6", "13.6%", "0"]
    assert row("sentence ends") == ["sentence", "ends", "(.", "!", "?)", "3", "5", "3", "3", "3", "3", "3"]
    assert ("streamed vs the whole file in one whisper.cpp call: formatted 13.6% vs 9.1%, WER (one alignment) "
            "7.5% vs 7.5% (target: neither worse; not met)") in report
    assert "5.0% (2 of 40)" in report  # the per-model table
    assert "q8_0 - f16 WER = +2.5 points" in report
    assert "CPU s per audio s 0.150 vs 0.375 (2.5x less); WER 5.0% (2 of 40) vs 7.5% (3 of 40)" in report
    assert "faster-whisper int8" in report and "peak RSS" in report
    # faster-whisper with beam 5 (issue #13's bar for words): a column, and the streamed text against it
    fw5 = scored((1, 1), batch_latency_s=4.1, chain_cpu_s=12.0, audio_s=30.0, peak_rss_mb=390.0)
    report = format_report(speech, {"tiny.en-q8_0": main}, "test machine", whole=whole, fw=fw, fw5=fw5)
    assert "faster-whisper int8 + vad_filter batch 3.30; beam 5 4.10" in report
    assert row_of(report, "clip")[2:] == ["streamed", "tiny.en-q8_0", "whole", "file", "faster-whisper", "fw", "beam",
                                          "5"]
    assert row_of(report, "01-jfk")[-2:] == ["1", "4.5%"]
    assert ("streamed vs faster-whisper int8 beam 5 on the whole file: WER (one alignment) 7.5% vs 5.0% "
            "(target: no worse; not met)") in report
    assert "faster-whisper int8 beam 5" in report


def row_of(report: str, start: str) -> list[str]:
    return next(line for line in report.splitlines() if line.strip().startswith(start)).split()


@pytest.mark.slow
def test_bench_runs_end_to_end(default_model, tmp_path):
    """Two espeak sentences and the JFK recording as a --clips folder, the default model, one quant type."""
    clips = tmp_path / "clips"
    clips.mkdir()
    audio, _ = paragraph(SENTENCES, [1.5])
    write_wav(clips / "a-espeak.wav", audio)
    (clips / "a-espeak.txt").write_text(" ".join(t for t, _, _ in SENTENCES))
    write_wav(clips / "b-jfk.wav", read_audio(JFK_WAV))
    (clips / "b-jfk.txt").write_text(JFK_TEXT)
    write_wav(clips / "c-room.wav", room(1.0))  # not a clip: no .txt
    env = dict(os.environ, STTKB_MODEL_STORE=str(default_model.parent))
    run = subprocess.run([sys.executable, "-m", "sttkb", "bench", "--clips", str(clips), "--quants", "q8_0",
                          "--no-faster-whisper", "--skip-whole", "--skip-window", "--repeats", "1", "--threads", "2"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    assert "2 clip(s)" in run.stdout and "streaming (sttkb, replayed at 1x)" in run.stdout
    assert "overhead x" in run.stdout and "the VAD" in run.stdout and "text pipeline" in run.stdout
    wer_line = next(line for line in run.stdout.splitlines() if line.strip().startswith("tiny.en-q8_0 "))
    assert float(wer_line.split()[1].rstrip("%")) <= 20.0

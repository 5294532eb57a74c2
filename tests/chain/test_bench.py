"""`sttkb bench`: the recording it builds, the report it prints, and one short real run (numbers are printed,
never asserted: speed depends on the machine)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sttkb.audio.files import write_wav
from sttkb.cli.bench import TAIL_AFTER_SPEECH_S, cut_after_speech, default_recording, format_report
from tests.speech import concat, paragraph, room

SENTENCES = [("The weather will be sunny and warm tomorrow afternoon.", "en-us", 160),
             ("Please remember to bring your notebook to the meeting.", "en-gb", 140)]


def test_default_recording_is_a_dictation_with_pauses():
    audio, text = default_recording(repeats=3)
    assert 25 < len(audio) / 16000 < 30
    assert text.count("blue folder") == 3


def test_recording_ends_shortly_after_the_last_speech():
    audio, spans = paragraph(SENTENCES, [2.0], tail_s=5.0)
    cut = cut_after_speech(audio)
    assert len(cut) / 16000 == pytest.approx(spans[-1][1] + TAIL_AFTER_SPEECH_S, abs=0.1)


def test_report_has_every_measurement():
    main = {"model": "tiny.en q8_0", "audio_s": 30.0, "segments": 4, "audio_ctx": 768, "stream_latency_s": 0.6,
            "stream_last_asr_s": 0.55, "stream_pieces_before_release": 3, "batch_latency_s": 2.4,
            "whole_latency_s": 3.0, "chain_cpu_s": 4.5, "raw_cpu_s": 4.2, "wer": 0.05, "peak_rss_mb": 150.0}
    f16 = dict(main, wer=0.045, peak_rss_mb=190.0)
    fw = {"batch_latency_s": 3.3, "chain_cpu_s": 9.0, "audio_s": 30.0, "wer": 0.05, "peak_rss_mb": 380.0}
    report = format_report(main, {"f16": f16, "q8_0": main}, fw, "test machine")
    assert "streaming / batch = 0.25" in report
    assert "streaming / faster-whisper = 0.18" in report
    assert "overhead x1.07" in report
    assert "q8_0 - f16 WER = +0.5 points" in report
    assert "faster-whisper int8" in report and "peak RSS" in report and "test machine" in report


@pytest.mark.slow
def test_bench_runs_end_to_end(default_model, tmp_path):
    audio, _ = paragraph(SENTENCES, [1.5])
    wav = tmp_path / "two.wav"
    write_wav(wav, concat(audio, room(0.5)))
    env = dict(os.environ, STTKB_MODEL_STORE=str(default_model.parent))
    run = subprocess.run([sys.executable, "-m", "sttkb", "bench", "--audio", str(wav), "--text",
                          " ".join(t for t, _, _ in SENTENCES), "--quants", "q8_0", "--no-faster-whisper",
                          "--skip-whole", "--repeats", "1", "--threads", "2"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr
    print(run.stdout)
    assert "streaming (sttkb, replayed at 1x)" in run.stdout and "overhead x" in run.stdout
    wer_line = next(line for line in run.stdout.splitlines() if line.strip().startswith("q8_0 "))
    assert float(wer_line.split()[1].rstrip("%")) <= 20.0

"""WhisperEngine's own logic around whisper.cpp: the parameters each call gets, the loop retry/drop, padding,
errors. whisper.cpp is replaced by a scripted stand-in here ONLY because the real tiny.en model cannot be made
to loop on demand; test_engine.py runs the same engine on the real model and real speech."""

from __future__ import annotations

import numpy as np
import pytest

from sttkb.asr.engine import (FULL_AUDIO_CTX, MIN_INPUT_S, RETRY_TEMPERATURE, WhisperEngine, max_segment_seconds,
                               window_seconds)
from sttkb.asr.errors import DecodeAborted, ModelLoadError, ModelSettingsError
from sttkb.audio.segment import Segment
from sttkb.config.asr import AsrSettings


class Seg:
    def __init__(self, text):
        self.text = text


class ScriptedModel:
    """Answers each transcribe() with the next scripted text and records the parameters it was given."""

    def __init__(self, path, script=(), **init):
        self.path, self.init, self.script, self.calls = path, init, list(script), []
        self.ran_out_of_tokens = False

    def transcribe(self, audio, **params):
        self.calls.append((len(audio), params))
        text = self.script.pop(0) if self.script else "fine."
        # "RUNAWAY:" marks a decode that stopped at the token budget instead of an end-of-text token.
        self.ran_out_of_tokens = text.startswith("RUNAWAY:")
        return [Seg(text.removeprefix("RUNAWAY:"))]


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "tiny.en-q8_0.bin"
    path.write_bytes(b"lmgg")
    return path


def make(model_file, script=(), **settings):
    holder = {}

    def factory(path, **init):
        holder["model"] = ScriptedModel(path, script, **init)
        return holder["model"]

    engine = WhisperEngine(model_file, AsrSettings(**settings), model_factory=factory)
    return engine, holder["model"]


def seg(seconds: float) -> Segment:
    return Segment(np.zeros(int(seconds * 16000), np.float32), 0.0, seconds, -20.0, 0.0, seconds)


def test_loop_is_cut_to_its_first_occurrence(model_file):
    engine, model = make(model_file, ["We talked about the budget for the next quarter and then we should go. "
                                      "we should go. we should go."])
    result = engine.transcribe(seg(4.0))
    assert result.text == "We talked about the budget for the next quarter and then we should go."
    assert 0 < result.loop_fraction < 0.5 and not result.retried
    assert len(model.calls) == 1


def test_mostly_loop_is_retried_once_with_temperature(model_file):
    engine, model = make(model_file, ["the the the the the the the the the the the the", "The plan is fine."])
    result = engine.transcribe(seg(3.0))
    assert result.text == "The plan is fine." and result.retried and result.dropped_reason is None
    assert [p["temperature"] for _, p in model.calls] == [0.0, RETRY_TEMPERATURE]
    assert model.calls[1][1]["temperature_inc"] == 0.0


def test_looping_twice_drops_the_segment(model_file):
    loop = "thank you thank you thank you thank you thank you thank you"
    engine, model = make(model_file, [loop, loop])
    result = engine.transcribe(seg(3.0))
    assert result.text == "" and result.dropped_reason == "loop" and result.retried
    assert engine.dropped == 1 and engine.calls == 2


def test_a_dropped_loop_is_logged_without_its_text_above_debug(model_file, caplog):
    """Transcripts go to the log only at DEBUG (docs/daemon.md): the warning about a dropped segment names
    no words."""
    loop = "my secret plan my secret plan my secret plan my secret plan my secret plan"
    engine, _ = make(model_file, [loop, loop])
    with caplog.at_level("DEBUG", logger="sttkb.asr.engine"):
        engine.transcribe(seg(3.0))
    above = [r.getMessage() for r in caplog.records if r.levelno > 10]
    assert any("dropped a 3.0 s segment: whisper.cpp looped twice" in m for m in above), above
    assert not [m for m in above if "secret" in m]
    assert any("secret" in r.getMessage() for r in caplog.records if r.levelno == 10)


def test_every_call_gets_the_full_parameter_set(model_file):
    engine, model = make(model_file, audio_ctx=768, tokens_per_second=6.0, threads=3, no_speech_threshold=0.5,
                         logprob_threshold=-0.8)
    engine.transcribe(seg(10.0), "Ansible.")
    engine.transcribe(seg(2.0))
    (n1, p1), (n2, p2) = model.calls
    assert p1["max_tokens"] == 60 and p2["max_tokens"] == 16   # proportional, with a floor
    assert p1["initial_prompt"] == "Ansible." and p2["initial_prompt"] == ""
    assert p1["audio_ctx"] == 768 and p1["n_threads"] == 3 and p1["language"] == "en"
    assert p1["no_speech_thold"] == 0.5 and p1["logprob_thold"] == -0.8
    assert p1["temperature"] == 0.0 and p1["temperature_inc"] > 0
    assert model.init["params_sampling_strategy"] == 0          # greedy


def test_beam_search_and_no_fallback(model_file):
    engine, model = make(model_file, beam_size=5, temperature_fallback=False)
    engine.transcribe(seg(2.0))
    (_, p), = model.calls
    assert model.init["params_sampling_strategy"] == 1
    assert p["beam_search"]["beam_size"] == 5 and p["temperature_inc"] == 0.0


def test_a_call_can_ask_for_beam_search_and_the_next_greedy_call_is_greedy_again(model_file):
    """[asr] beam_when_idle: a greedy engine decodes one segment with beam search; pywhispercpp keeps parameters
    between calls, so every call sets the strategy and both decoders' settings."""
    import _pywhispercpp as pw
    strategy = pw.whisper_sampling_strategy
    engine, model = make(model_file)
    engine.transcribe(seg(2.0))
    engine.recognize(seg(2.0), beam_size=5)
    engine.transcribe(seg(2.0))
    (_, greedy), (_, beam), (_, again) = model.calls
    assert greedy["strategy"] == again["strategy"] == strategy.WHISPER_SAMPLING_GREEDY
    assert beam["strategy"] == strategy.WHISPER_SAMPLING_BEAM_SEARCH
    assert beam["beam_search"] == {"beam_size": 5, "patience": -1.0} and beam["greedy"] == {"best_of": 2}
    assert greedy == again and greedy["beam_search"]["beam_size"] == -1 and greedy["greedy"] == {"best_of": 2}
    assert {k: v for k, v in beam.items() if k not in ("strategy", "beam_search")} == \
        {k: v for k, v in greedy.items() if k not in ("strategy", "beam_search")}
    assert "abort_callback" not in greedy and "abort_callback" not in beam


class AbortingModel(ScriptedModel):
    """Asks the abort callback it is given, as whisper.cpp does after the encoder and each decoder step."""

    def transcribe(self, audio, **params):
        abort = params.pop("abort_callback", None)
        if abort is not None:
            self.asked = [abort() for _ in range(3)]
        return super().transcribe(audio, **params)


def make_aborting(model_file, script=()):
    holder = {}

    def factory(path, **init):
        holder["model"] = AbortingModel(path, script, **init)
        return holder["model"]

    return WhisperEngine(model_file, AsrSettings(), model_factory=factory), holder["model"]


def test_an_abandoned_decode_raises_and_is_counted(model_file):
    engine, model = make_aborting(model_file, ["Not used.", "Used."])
    answers = iter([False, True, False])
    with pytest.raises(DecodeAborted) as e:
        engine.recognize(seg(2.0), beam_size=5, abort=lambda: next(answers))
    assert model.asked == [False, True, True]       # once it said stop, it stays stopped
    assert e.value.spent_s >= 0 and engine.calls == 1
    result = engine.recognize(seg(2.0), beam_size=5, abort=lambda: False)
    assert result.text == "Used."


def test_an_abandoned_retry_raises_with_both_decodes_time(model_file):
    engine, model = make_aborting(model_file, ["the the the the the the the the the the the the", "Never."])
    calls = []
    with pytest.raises(DecodeAborted):
        engine.recognize(seg(3.0), beam_size=5, abort=lambda: calls.append(1) is None and len(calls) > 3)
    assert engine.calls == 2 and engine.dropped == 0


def test_short_segments_are_padded_to_what_whisper_cpp_accepts(model_file):
    engine, model = make(model_file)
    engine.transcribe(seg(0.6))
    assert model.calls[0][0] == int(MIN_INPUT_S * 16000)
    assert engine.audio_s == pytest.approx(0.6)


def test_warm_up_is_not_counted(model_file):
    engine, model = make(model_file)
    engine.warm_up()
    assert engine.calls == 0 and len(model.calls) == 1 and engine.warmed_up


def test_english_only_model_refuses_another_language(model_file):
    with pytest.raises(ModelSettingsError, match="English-only.*asr.language = \"en\""):
        make(model_file, language="de")


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model file"):
        WhisperEngine(tmp_path / "gone.bin", AsrSettings())


def test_window_sizes():
    assert window_seconds(0) == window_seconds(FULL_AUDIO_CTX) == 30.0
    assert window_seconds(768) == pytest.approx(15.36)
    assert max_segment_seconds(768) == pytest.approx(14.36)


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_model_file_is_refused_before_whisper_cpp_sees_it(tmp_path, default_model, damage):
    """whisper.cpp segfaults on garbage and "loads" a truncated file; the engine checks the file first."""
    from sttkb.errors import SttkbError
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a model at all" if damage == "garbage" else default_model.read_bytes()[:200_000])
    with pytest.raises(SttkbError, match="truncated or damaged|not a whole ggml model|not a ggml"):
        WhisperEngine(bad, AsrSettings())


def test_a_decode_that_runs_out_of_tokens_is_retried(model_file):
    engine, model = make(model_file, ["RUNAWAY:Turn left at the light. Turn left at the light. Turn left",
                                      "Turn left at the light."])
    result = engine.transcribe(seg(3.0))
    assert result.text == "Turn left at the light." and result.retried
    assert len(model.calls) == 2


def test_running_out_of_tokens_twice_drops_the_segment(model_file):
    engine, model = make(model_file, ["RUNAWAY:My sister moved. My sister moved. My sister",
                                      "RUNAWAY:My sister moved to town. My sister moved to town. My"])
    result = engine.transcribe(seg(3.0))
    assert result.text == "" and result.dropped_reason == "runaway" and engine.dropped == 1

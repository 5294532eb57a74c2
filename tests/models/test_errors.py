"""Inputs that must be refused with one clear line (no traceback), leaving the model store exactly as it was."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sttkb.cli import main
from sttkb.models.convert import convert
from sttkb.models.quant import Quant
from sttkb.models.sources import open_source
from tests.models.builders import dir_state, write_ct2_model_bin, write_synthetic_hf


@pytest.fixture
def store(tmp_path) -> Path:
    """A store that already holds a model and a selection, so "unchanged" is a real check."""
    root = tmp_path / "store"
    root.mkdir()
    (root / "old.bin").write_bytes(b"lmgg" + bytes(100))
    (root / "old.json").write_text(json.dumps({"name": "old", "quant": "f16"}))
    (root / "current").write_text("old\n")
    return root


def run_import(src, store: Path, capsys, *extra: str) -> str:
    before = dir_state(store)
    rc = main(["model", "import", str(src), "--store", str(store), *extra])
    err = capsys.readouterr().err
    assert rc == 1, err
    lines = [ln for ln in err.splitlines() if ln.startswith("sttkb: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert dir_state(store) == before, "the store changed"
    return lines[0]


class Boom:
    """Unpickling this would create the marker file: proves the importer never unpickles."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_missing_path(tmp_path, store, capsys):
    msg = run_import(tmp_path / "nope", store, capsys)
    assert "no such file or directory" in msg and "transformers" in msg


def test_audio_file_is_not_a_model(store, capsys):
    from sttkb.models.validate import reference_clip
    msg = run_import(reference_clip()[0], store, capsys)
    assert "audio file, not a model" in msg


def test_empty_directory(tmp_path, store, capsys):
    (tmp_path / "empty").mkdir()
    assert "it is empty" in run_import(tmp_path / "empty", store, capsys)


def test_directory_without_weights(tmp_path, store, capsys):
    d = tmp_path / "cfg-only"
    d.mkdir()
    (d / "config.json").write_text("{}")
    assert "no model.safetensors or model.bin" in run_import(d, store, capsys)


@pytest.mark.parametrize("layout", ["bare-pickle", "torch-zip-pt", "hf-pytorch_model.bin", "ct2-named-model.bin"])
def test_pickled_pytorch_is_refused_without_unpickling(tmp_path, store, capsys, layout):
    marker = tmp_path / "UNPICKLED"
    payload = pickle.dumps({"model": Boom(marker)}, protocol=2)
    d = tmp_path / "ckpt"
    d.mkdir()
    if layout == "bare-pickle":
        src = d / "whisper-small.pt"
        src.write_bytes(payload)
    elif layout == "torch-zip-pt":           # torch.save's zip format: archive/data.pkl + tensor blobs
        src = d / "model.pt"
        with zipfile.ZipFile(src, "w") as z:
            z.writestr("archive/data.pkl", payload)
            z.writestr("archive/version", "3\n")
    elif layout == "hf-pytorch_model.bin":
        (d / "pytorch_model.bin").write_bytes(payload)
        (d / "config.json").write_text(json.dumps({"model_type": "whisper"}))
        src = d
    else:
        (d / "model.bin").write_bytes(payload)
        src = d
    msg = run_import(src, store, capsys)
    assert "pickled PyTorch" in msg
    assert "save_pretrained(DIR, safe_serialization=True)" in msg
    assert not marker.exists()


def test_int8_ctranslate2_is_refused_with_how_to_export_float16(tmp_path, store, capsys, ct2_dir):
    d = tmp_path / "ct2-int8"
    d.mkdir()
    rng = np.random.default_rng(1)
    write_ct2_model_bin(d / "model.bin", {
        "encoder/conv1/weight": rng.standard_normal((64, 80, 3)).astype(np.float16),
        "encoder/layer_0/self_attention/linear_0/weight": rng.integers(-100, 100, (192, 64), dtype=np.int8),
        "encoder/layer_0/self_attention/linear_0/weight_scale": np.ones(192, np.float32),
        "encoder/num_heads": np.array(1, np.int16),
    })
    shutil.copy(ct2_dir / "tokenizer.json", d)
    msg = run_import(d, store, capsys)
    assert "int8" in msg and "--quantization float16" in msg and "ct2-transformers-converter" in msg


def test_truncated_ctranslate2_model(tmp_path, store, capsys, ct2_dir):
    d = tmp_path / "ct2-cut"
    d.mkdir()
    with open(ct2_dir / "model.bin", "rb") as f:
        (d / "model.bin").write_bytes(f.read(20_000_000))
    shutil.copy(ct2_dir / "tokenizer.json", d)
    msg = run_import(d, store, capsys)
    assert "truncated" in msg and "model.bin" in msg


def test_ctranslate2_of_another_model_kind(tmp_path, store, capsys):
    d = tmp_path / "ct2-other"
    d.mkdir()
    import struct
    name = b"TransformerSpec\0"
    (d / "model.bin").write_bytes(struct.pack("<IH", 6, len(name)) + name + struct.pack("<II", 3, 0))
    assert "not Whisper" in run_import(d, store, capsys)


@pytest.fixture
def small_ggml(tmp_path) -> Path:
    write_synthetic_hf(tmp_path / "small", n_mels=80, n_vocab=51864, dtype="F16")
    ckpt = open_source(tmp_path / "small")
    out = tmp_path / "ggml-small.bin"
    with open(out, "wb") as f:
        convert(ckpt, f, Quant.F16, progress=False)
    ckpt.close()
    return out


def test_truncated_ggml(tmp_path, store, capsys, small_ggml):
    cut = tmp_path / "ggml-cut.bin"
    data = small_ggml.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    msg = run_import(cut, store, capsys, "--quant", "q5_1")
    assert "truncated" in msg


def test_ggml_with_a_missing_tensor(tmp_path, store, capsys, small_ggml):
    """A file cut exactly at a tensor boundary parses, but is incomplete: whisper.cpp would crash on it."""
    from sttkb.models.ggml import GgmlFile
    with GgmlFile(small_ggml) as g:
        last = list(g.tensors.values())[-1]
        header_len = 12 + 4 * len(last.shape) + len(last.name)
        end = last.offset - header_len
    cut = tmp_path / "ggml-missing.bin"
    cut.write_bytes(small_ggml.read_bytes()[:end])
    msg = run_import(cut, store, capsys)
    assert "decoder.ln.bias missing" in msg


def test_gguf_file(tmp_path, store, capsys):
    src = tmp_path / "whisper.gguf"
    src.write_bytes(b"GGUF" + bytes(60))
    assert "GGUF" in run_import(src, store, capsys)


def test_corrupt_safetensors_header(tmp_path, store, capsys):
    write_synthetic_hf(tmp_path / "m", n_mels=80, n_vocab=51864, dtype="F16")
    st = tmp_path / "m" / "model.safetensors"
    raw = bytearray(st.read_bytes())
    raw[8:40] = b"\xff" * 32                      # header JSON destroyed
    st.write_bytes(bytes(raw))
    assert "damaged" in run_import(tmp_path / "m", store, capsys)


def test_truncated_safetensors(tmp_path, store, capsys):
    write_synthetic_hf(tmp_path / "m", n_mels=80, n_vocab=51864, dtype="F16")
    st = tmp_path / "m" / "model.safetensors"
    st.write_bytes(st.read_bytes()[:-1000])
    assert "runs past the end of the file" in run_import(tmp_path / "m", store, capsys)


def test_missing_tokenizer(tmp_path, store, capsys):
    write_synthetic_hf(tmp_path / "m", n_mels=80, n_vocab=51864, dtype="F16")
    (tmp_path / "m" / "tokenizer.json").unlink()
    assert "no tokenizer.json" in run_import(tmp_path / "m", store, capsys)


def test_unmerged_lora_adapter_names(tmp_path, store, capsys):
    from safetensors.numpy import load_file, save_file
    write_synthetic_hf(tmp_path / "m", n_mels=80, n_vocab=51864, dtype="F32")
    st = tmp_path / "m" / "model.safetensors"
    tensors = load_file(str(st))
    tensors["model.encoder.layers.0.self_attn.q_proj.lora_A.weight"] = np.zeros((8, 64), np.float32)
    save_file(tensors, str(st))
    assert "merge_and_unload" in run_import(tmp_path / "m", store, capsys)


def test_name_already_taken(tmp_path, store, capsys, small_ggml):
    msg = run_import(small_ggml, store, capsys, "--name", "old")
    assert "already" in msg and "remove old" in msg


def test_bad_name(store, capsys, small_ggml):
    assert "bad model name" in run_import(small_ggml, store, capsys, "--name", "../evil")


def test_check_audio_missing(tmp_path, store, capsys, small_ggml):
    msg = run_import(small_ggml, store, capsys, "--check", str(tmp_path / "nope.wav"), "some words")
    assert "no such audio file" in msg


def test_check_audio_that_is_not_audio(tmp_path, store, capsys, small_ggml):
    """The one audio reader (sttkb.audio.files) and its one AudioFileError, before whisper.cpp loads anything."""
    notes = tmp_path / "notes.wav"
    notes.write_text("these are words, not sound")
    msg = run_import(small_ggml, store, capsys, "--check", str(notes), "some words")
    assert "notes.wav: cannot decode this audio file" in msg and "WAV or FLAC" in msg

"""The pieces of a ggml whisper file, checked without running whisper.cpp: mel filterbank, vocabulary bytes,
tensor layout and types, the transformers and CTranslate2 readers, a large-v3-shaped (128 mel) conversion."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from gguf.constants import GGMLQuantizationType as T

from sttkb.models.ct2 import read_ct2
from sttkb.models.convert import convert
from sttkb.models.ggml import GgmlFile, check_against_whisper_layout
from sttkb.models.hparams import HParams, expected_tensors
from sttkb.models.mel import hz_to_mel, mel_filters, mel_to_hz
from sttkb.models.quant import Quant, check_tensor_types
from sttkb.models.sources import open_source
from sttkb.models.vocab import byte_decoder, token_bytes
from tests.models.builders import to_bf16_bits, write_synthetic_hf


# -- mel filterbank -------------------------------------------------------------------------------------------

def test_slaney_mel_scale_is_linear_below_1khz_and_logarithmic_above():
    assert hz_to_mel(1000.0) == pytest.approx(15.0)
    assert hz_to_mel(500.0) == pytest.approx(7.5)
    # above 1 kHz each doubling of frequency adds the same number of mels
    assert hz_to_mel(4000.0) - hz_to_mel(2000.0) == pytest.approx(hz_to_mel(2000.0) - hz_to_mel(1000.0))
    hz = np.array([0.0, 123.0, 999.0, 1000.0, 3456.0, 8000.0])
    assert mel_to_hz(hz_to_mel(hz)) == pytest.approx(hz)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_are_unit_area_triangles_over_the_whisper_fft_bins(n_mels):
    f = mel_filters(n_mels)
    assert f.shape == (n_mels, 201) and f.dtype == np.float32
    assert (f >= 0).all()
    fft_hz = np.linspace(0, 8000, 201)
    centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(8000.0), n_mels + 2))[1:-1]
    # each filter peaks at the FFT bin nearest its centre frequency (within one bin) ...
    assert np.abs(fft_hz[f.argmax(axis=1)] - centres).max() <= 40.0
    # ... and is area-normalized (Slaney): integral over hertz == 1 for filters wider than a few bins
    wide = np.count_nonzero(f, axis=1) >= 6
    assert wide.sum() >= 20
    assert np.trapezoid(f[wide], fft_hz, axis=1) == pytest.approx(1.0, rel=0.02)
    # neighbouring filters overlap: every bin from 40 Hz to 7.9 kHz is covered
    assert (f[:, 1:-2].sum(axis=0) > 0).all()


# -- vocabulary -----------------------------------------------------------------------------------------------

def test_byte_level_table_covers_every_byte_once():
    table = byte_decoder()
    assert sorted(table.values()) == list(range(256))
    assert token_bytes("Ġthe") == b" the"
    assert token_bytes("Ċ") == b"\n"
    assert token_bytes("Ã©") == "é".encode()


def test_tiny_en_vocabulary_is_the_50256_gpt2_tokens(ct2_dir):
    ckpt = read_ct2(ct2_dir)
    try:
        assert len(ckpt.vocab) == 50256          # ids 0 … eot-1; whisper.cpp adds the special tokens
        assert ckpt.vocab[0] == b"!"
        assert b" hello" in ckpt.vocab and b" world" in ckpt.vocab
        assert ckpt.hparams == HParams(51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80)
        assert ckpt.hparams.english_only
    finally:
        ckpt.close()


# -- ggml layout ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_ggml(ct2_dir, tmp_path_factory):
    """tiny.en converted from CTranslate2 to f16 and q8_0 (files only; whisper.cpp runs in test_import)."""
    out = {}
    for quant in (Quant.F16, Quant.Q8_0):
        path = tmp_path_factory.mktemp("ggml") / f"tiny.en-{quant.label}.bin"
        ckpt = read_ct2(ct2_dir)
        with open(path, "wb") as f:
            convert(ckpt, f, quant, progress=False)
        ckpt.close()
        out[quant] = path
    return out


def test_f16_file_has_whisper_cpp_header_mel_vocab_and_every_tensor(tiny_ggml, ct2_dir):
    with GgmlFile(tiny_ggml[Quant.F16]) as f:
        assert f.ftype == 1
        assert f.hparams.as_tuple() == (51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80)
        assert np.array_equal(f.mel_filters, mel_filters(80))
        assert len(f.vocab) == 50256
        check_against_whisper_layout(f)
        check_tensor_types(f)
        types = {n: t.ggml_type for n, t in f.tensors.items()}
        assert types["encoder.conv1.weight"] == T.F16 and f.tensors["encoder.conv1.weight"].shape == (384, 80, 3)
        assert types["encoder.conv1.bias"] == T.F32 and f.tensors["encoder.conv1.bias"].shape == (384, 1)
        assert types["encoder.positional_embedding"] == T.F32
        assert types["decoder.token_embedding.weight"] == T.F16
        assert types["decoder.blocks.0.cross_attn.key.weight"] == T.F16
        assert "decoder.blocks.0.cross_attn.key.bias" not in types
        # the f16 weights are exactly CTranslate2's (un-fused): query rows are the first third of linear_0
        from sttkb.models.ct2 import Ct2ModelBin
        mb = Ct2ModelBin(ct2_dir / "model.bin")
        fused = np.array(mb.tensor("encoder/layer_1/self_attention/linear_0/weight"))
        mb.close()
        assert np.array_equal(f.array("encoder.blocks.1.attn.query.weight"), fused[:384])
        assert np.array_equal(f.array("encoder.blocks.1.attn.value.weight"), fused[768:])


def test_q8_0_quantizes_only_2d_weights_and_stays_close_to_f16(tiny_ggml):
    with GgmlFile(tiny_ggml[Quant.F16]) as f16, GgmlFile(tiny_ggml[Quant.Q8_0]) as q8:
        assert q8.ftype == 2007 and q8.quant_label == "q8_0"
        check_tensor_types(q8)
        types = {n: t.ggml_type for n, t in q8.tensors.items()}
        assert types["encoder.conv2.weight"] == T.F16          # conv weights never quantized
        assert types["decoder.positional_embedding"] == T.F32
        assert types["decoder.blocks.3.mlp.0.weight"] == T.Q8_0
        assert types["decoder.blocks.3.mlp.0.bias"] == T.F32
        a = f16.array("decoder.blocks.3.mlp.0.weight").astype(np.float32)
        b = q8.array("decoder.blocks.3.mlp.0.weight")
        assert np.abs(a - b).max() <= np.abs(a).max() / 127 + 1e-6
        assert q8.path.stat().st_size < 0.6 * f16.path.stat().st_size


def test_transformers_checkpoint_converts_to_the_same_bytes_as_the_ctranslate2_model(hf_from_ct2, tiny_ggml):
    """The same weights in transformers layout (model.safetensors written by the safetensors package) must give a
    byte-identical ggml file: names mapped, q/k/v un-fused the same way, tied proj_out dropped."""
    ckpt = open_source(hf_from_ct2)
    assert ckpt.kind == "transformers" and ckpt.source_dtype == "f16"
    for quant in (Quant.F16, Quant.Q8_0):
        buf = io.BytesIO()
        convert(ckpt, buf, quant, progress=False)
        assert buf.getvalue() == tiny_ggml[quant].read_bytes(), quant
    ckpt.close()


def test_ggml_source_requantizes_f16_to_q5_1(tiny_ggml, tmp_path):
    ckpt = open_source(tiny_ggml[Quant.F16])
    assert ckpt.kind == "ggml" and ckpt.source_dtype == "f16" and not ckpt.warnings
    out = tmp_path / "q5_1.bin"
    with open(out, "wb") as f:
        convert(ckpt, f, Quant.Q5_1, progress=False)
    ckpt.close()
    with GgmlFile(out) as q, GgmlFile(tiny_ggml[Quant.F16]) as f16:
        assert q.ftype == 2009 and q.hparams == f16.hparams and q.vocab == f16.vocab
        check_tensor_types(q)
        assert q.tensors["encoder.blocks.0.mlp.2.weight"].ggml_type == T.Q5_1
        a = f16.array("encoder.blocks.0.mlp.2.weight").astype(np.float32)
        assert np.abs(a - q.array("encoder.blocks.0.mlp.2.weight")).max() <= np.abs(a).max() / 15
    assert 0.35 < out.stat().st_size / tiny_ggml[Quant.F16].stat().st_size < 0.45


def test_requantizing_a_quantized_file_warns(tiny_ggml):
    ckpt = open_source(tiny_ggml[Quant.Q8_0])
    assert ckpt.warnings and "already quantized" in ckpt.warnings[0]
    ckpt.close()


# -- large-v3 shape: 128 mel bins, 51866 tokens, bf16, sharded ------------------------------------------------

@pytest.mark.parametrize("shards", [1, 3])
def test_128_mel_bf16_checkpoint_converts_with_the_right_header_and_tensors(tmp_path, shards):
    weights = write_synthetic_hf(tmp_path / "v3", n_mels=128, d=64, heads=2, layers=2, n_vocab=51866,
                                 dtype="BF16", shards=shards)
    ckpt = open_source(tmp_path / "v3")
    assert ckpt.source_dtype == "bf16"
    out = tmp_path / "v3-q5_0.bin"
    with open(out, "wb") as f:
        convert(ckpt, f, Quant.Q5_0, progress=False)
    ckpt.close()
    with GgmlFile(out) as g:
        assert g.hparams == HParams(n_vocab=51866, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
                                    n_audio_layer=2, n_text_ctx=448, n_text_state=64, n_text_head=2,
                                    n_text_layer=2, n_mels=128)
        assert not g.hparams.english_only
        assert g.ftype == 2008
        assert g.mel_filters.shape == (128, 201) and np.array_equal(g.mel_filters, mel_filters(128))
        assert len(g.vocab) == 300 and g.vocab[65] == b"A" and g.vocab[32] == b" "
        assert set(g.tensors) == set(expected_tensors(g.hparams))
        check_tensor_types(g)
        assert g.tensors["encoder.conv1.weight"].shape == (64, 128, 3)

        def bf16(name):
            return (to_bf16_bits(weights[name]).astype(np.uint32) << 16).view(np.float32)
        # f32 tensors carry the bf16 values exactly; conv weights are their f16 rounding
        assert np.array_equal(g.array("decoder.blocks.1.cross_attn_ln.weight"),
                              bf16("model.decoder.layers.1.encoder_attn_layer_norm.weight"))
        assert np.array_equal(g.array("encoder.conv1.bias"), bf16("model.encoder.conv1.bias"))
        assert np.array_equal(g.array("encoder.conv1.weight"),
                              bf16("model.encoder.conv1.weight").astype(np.float16))
        w = bf16("model.encoder.layers.1.self_attn.k_proj.weight")
        assert np.abs(g.array("encoder.blocks.1.attn.key.weight") - w).max() <= np.abs(w).max() / 15


def test_128_mel_model_loads_in_whisper_cpp(tmp_path):
    """whisper.cpp itself accepts the converted 128-mel layout (random weights: only loading is checked)."""
    from sttkb.models.validate import load_model
    write_synthetic_hf(tmp_path / "v3", n_mels=128, n_vocab=51866, dtype="F32")
    ckpt = open_source(tmp_path / "v3")
    out = tmp_path / "v3.bin"
    with open(out, "wb") as f:
        convert(ckpt, f, Quant.Q8_0, progress=False)
    ckpt.close()
    model = load_model(out)
    import _pywhispercpp as pw
    assert pw.whisper_model_n_mels(model._ctx) == 128
    assert pw.whisper_model_n_vocab(model._ctx) == 51866


def test_config_that_contradicts_the_weights_is_refused(tmp_path):
    from sttkb.models.errors import CorruptModelError
    write_synthetic_hf(tmp_path / "m", n_mels=80, n_vocab=51864, dtype="F16")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["num_mel_bins"] = 128
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptModelError, match="num_mel_bins = 128 but the weights have 80"):
        open_source(tmp_path / "m")


def test_every_tokenizer_file_kind_gives_the_same_vocabulary(ct2_dir, tmp_path):
    """tokenizer.json (fast tokenizer), vocab.json + added_tokens.json (slow tokenizer files) and CTranslate2's
    vocabulary.txt all describe the same tokens."""
    from sttkb.models.vocab import load_vocab
    reference = load_vocab(ct2_dir)                              # tokenizer.json
    tok = json.loads((ct2_dir / "tokenizer.json").read_text())
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "vocab.json").write_text(json.dumps(tok["model"]["vocab"]))
    (slow / "added_tokens.json").write_text(json.dumps({a["content"]: a["id"] for a in tok["added_tokens"]}))
    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "vocabulary.txt").write_bytes((ct2_dir / "vocabulary.txt").read_bytes())
    assert load_vocab(slow) == reference
    assert load_vocab(txt) == reference


def test_float32_ctranslate2_model_converts_to_the_same_f16_file(ct2_dir, tmp_path, tiny_ggml):
    """CTranslate2 models exported with --quantization float32 (f16 → f32 is exact, so the f16 output matches)."""
    import shutil
    from sttkb.models.ct2 import Ct2ModelBin
    from tests.models.builders import write_ct2_model_bin
    mb = Ct2ModelBin(ct2_dir / "model.bin")
    variables = {}
    for name, (dtype, shape, _off, _n) in mb.variables.items():
        _dt, _shape, raw = mb.raw(name)
        if dtype == "f16":
            variables[name] = raw.view("<f2").reshape(shape).astype(np.float32)
        else:
            variables[name] = raw.view({"int8": "<i1", "int16": "<i2", "int32": "<i4"}[dtype]).reshape(shape).copy()
    aliases = dict(mb.aliases)
    mb.close()
    d = tmp_path / "ct2-f32"
    d.mkdir()
    write_ct2_model_bin(d / "model.bin", variables, aliases)
    shutil.copy(ct2_dir / "vocabulary.txt", d)
    ckpt = open_source(d)
    assert ckpt.kind == "ctranslate2" and ckpt.source_dtype == "f32"
    buf = io.BytesIO()
    convert(ckpt, buf, Quant.F16, progress=False)
    ckpt.close()
    assert buf.getvalue() == tiny_ggml[Quant.F16].read_bytes()

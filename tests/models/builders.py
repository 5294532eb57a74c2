"""Builders for model files made inside the tests: safetensors (incl. bf16), transformers checkpoints from the
real CTranslate2 weights, synthetic large-v3-shaped models, CTranslate2 model.bin files (int8 / damaged)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np

from sttkb.models.ct2 import Ct2ModelBin
from sttkb.models.vocab import byte_decoder


def dir_state(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` (hidden ones too) with size and mtime: compare before/after to prove
    "store unchanged"."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.rglob("*"))}


# -- safetensors (bf16 needs our own writer: numpy has no bfloat16) -------------------------------------------

def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns (round to nearest even), as uint16."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype(np.uint16)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], dtype: str) -> None:
    """Minimal safetensors writer for F32/F16/BF16 (BF16 given as float32 and rounded here)."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        data = {"F32": lambda x: x.astype("<f4"), "F16": lambda x: x.astype("<f2"),
                "BF16": to_bf16_bits}[dtype](a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for b in blobs:
            f.write(b)


# -- transformers checkpoint from the CTranslate2 weights ------------------------------------------------------

def hf_tensors_from_ct2(ct2: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Un-fuse CTranslate2's variables into transformers' WhisperForConditionalGeneration names."""
    mb = Ct2ModelBin(ct2 / "model.bin")
    v = {name: np.array(mb.tensor(name)) for name in mb.variables
         if mb.variables[name][1] != () and not name.endswith("alignment_heads")}
    mb.close()
    out: dict[str, np.ndarray] = {}

    def lin(src, dst):
        out[f"{dst}.weight"] = v[f"{src}/weight"]
        out[f"{dst}.bias"] = v[f"{src}/bias"]

    def ln(src, dst):
        out[f"{dst}.weight"] = v[f"{src}/gamma"]
        out[f"{dst}.bias"] = v[f"{src}/beta"]

    def self_attn(src, dst):
        w, b = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
        d = w.shape[1]
        out[f"{dst}.q_proj.weight"], out[f"{dst}.k_proj.weight"], out[f"{dst}.v_proj.weight"] = w[:d], w[d:2 * d], w[2 * d:]
        out[f"{dst}.q_proj.bias"], out[f"{dst}.v_proj.bias"] = b[:d], b[2 * d:]
        lin(f"{src}/linear_1", f"{dst}.out_proj")

    n_layers = {side: sum(1 for k in v if k.startswith(f"{side}/layer_") and k.endswith("ffn/linear_0/weight"))
                for side in ("encoder", "decoder")}
    for side in ("encoder", "decoder"):
        for i in range(n_layers[side]):
            s, h = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            self_attn(f"{s}/self_attention", f"{h}.self_attn")
            ln(f"{s}/self_attention/layer_norm", f"{h}.self_attn_layer_norm")
            lin(f"{s}/ffn/linear_0", f"{h}.fc1")
            lin(f"{s}/ffn/linear_1", f"{h}.fc2")
            ln(f"{s}/ffn/layer_norm", f"{h}.final_layer_norm")
            if side == "decoder":
                lin(f"{s}/attention/linear_0", f"{h}.encoder_attn.q_proj")
                w, b = v[f"{s}/attention/linear_1/weight"], v[f"{s}/attention/linear_1/bias"]
                d = w.shape[1]
                out[f"{h}.encoder_attn.k_proj.weight"], out[f"{h}.encoder_attn.v_proj.weight"] = w[:d], w[d:]
                out[f"{h}.encoder_attn.v_proj.bias"] = b[d:]
                lin(f"{s}/attention/linear_2", f"{h}.encoder_attn.out_proj")
                ln(f"{s}/attention/layer_norm", f"{h}.encoder_attn_layer_norm")
    for k in ("conv1", "conv2"):
        lin(f"encoder/{k}", f"model.encoder.{k}")
    out["model.encoder.embed_positions.weight"] = v["encoder/position_encodings/encodings"]
    out["model.decoder.embed_positions.weight"] = v["decoder/position_encodings/encodings"]
    out["model.decoder.embed_tokens.weight"] = v["decoder/embeddings/weight"]
    out["proj_out.weight"] = v["decoder/embeddings/weight"]
    ln("encoder/layer_norm", "model.encoder.layer_norm")
    ln("decoder/layer_norm", "model.decoder.layer_norm")
    d = out["model.encoder.conv1.weight"].shape[0]
    config = {"model_type": "whisper", "architectures": ["WhisperForConditionalGeneration"],
              "d_model": d, "encoder_layers": n_layers["encoder"], "decoder_layers": n_layers["decoder"],
              "encoder_attention_heads": d // 64, "decoder_attention_heads": d // 64,
              "num_mel_bins": out["model.encoder.conv1.weight"].shape[1],
              "vocab_size": out["model.decoder.embed_tokens.weight"].shape[0],
              "max_source_positions": 1500, "max_target_positions": 448}
    return out, config


# -- synthetic models -----------------------------------------------------------------------------------------

def synthetic_tokenizer(n_tokens: int = 300) -> dict:
    """A byte-level tokenizer.json: the 256 single bytes, some merges, then <|endoftext|> at id n_tokens."""
    chars = sorted(byte_decoder(), key=lambda c: byte_decoder()[c])
    vocab = {c: i for i, c in enumerate(chars)}
    for i in range(256, n_tokens):
        vocab[chars[i % 94] + chars[(i * 7) % 94] + str(i)] = i
    return {"version": "1.0", "model": {"type": "BPE", "vocab": vocab, "merges": []},
            "added_tokens": [{"id": n_tokens, "content": "<|endoftext|>", "special": True},
                             {"id": n_tokens + 1, "content": "<|startoftranscript|>", "special": True}]}


def write_synthetic_hf(out: Path, *, n_mels: int = 128, d: int = 64, heads: int = 2, layers: int = 2,
                       n_vocab: int = 51866, dtype: str = "BF16", shards: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """A random-weight transformers Whisper checkpoint shaped like large-v3 (128 mel bins, 51866 tokens) but tiny.
    Returns the float32 weights by transformers name (before BF16/F16 rounding)."""
    rng = np.random.default_rng(seed)
    t: dict[str, np.ndarray] = {}

    def r(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    t["model.encoder.conv1.weight"], t["model.encoder.conv1.bias"] = r(d, n_mels, 3), r(d)
    t["model.encoder.conv2.weight"], t["model.encoder.conv2.bias"] = r(d, d, 3), r(d)
    t["model.encoder.embed_positions.weight"] = r(1500, d)
    t["model.decoder.embed_positions.weight"] = r(448, d)
    t["model.decoder.embed_tokens.weight"] = r(n_vocab, d)
    for side in ("encoder", "decoder"):
        for i in range(layers):
            p = f"model.{side}.layers.{i}"
            attns = ["self_attn"] + (["encoder_attn"] if side == "decoder" else [])
            for a in attns:
                for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                    t[f"{p}.{a}.{proj}.weight"] = r(d, d)
                    if proj != "k_proj":
                        t[f"{p}.{a}.{proj}.bias"] = r(d)
                t[f"{p}.{a}_layer_norm.weight"], t[f"{p}.{a}_layer_norm.bias"] = r(d) + 1, r(d)
            t[f"{p}.fc1.weight"], t[f"{p}.fc1.bias"] = r(4 * d, d), r(4 * d)
            t[f"{p}.fc2.weight"], t[f"{p}.fc2.bias"] = r(d, 4 * d), r(d)
            t[f"{p}.final_layer_norm.weight"], t[f"{p}.final_layer_norm.bias"] = r(d) + 1, r(d)
    for side in ("encoder", "decoder"):
        t[f"model.{side}.layer_norm.weight"], t[f"model.{side}.layer_norm.bias"] = r(d) + 1, r(d)
    out.mkdir(parents=True, exist_ok=True)
    names = list(t)
    if shards == 1:
        write_safetensors(out / "model.safetensors", t, dtype)
    else:
        weight_map = {}
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: t[n] for n in names[s::shards]}
            write_safetensors(out / fname, part, dtype)
            weight_map.update({n: fname for n in part})
        (out / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (out / "config.json").write_text(json.dumps({
        "model_type": "whisper", "d_model": d, "encoder_layers": layers, "decoder_layers": layers,
        "encoder_attention_heads": heads, "decoder_attention_heads": heads, "num_mel_bins": n_mels,
        "vocab_size": n_vocab, "max_source_positions": 1500, "max_target_positions": 448}))
    (out / "tokenizer.json").write_text(json.dumps(synthetic_tokenizer()))
    return t


# -- CTranslate2 writer (for int8 / damaged CT2 inputs) --------------------------------------------------------

def _ct2_string(s: str) -> bytes:
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def write_ct2_model_bin(path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str] | None = None) -> None:
    """CTranslate2 model.bin (version 6, WhisperSpec) holding ``variables`` (numpy dtypes f32/f16/int8/int16/int32)."""
    codes = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("int32"): 3,
             np.dtype("float16"): 4}
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 6) + _ct2_string("WhisperSpec") + struct.pack("<I", 3))
        f.write(struct.pack("<I", len(variables)))
        for name, a in variables.items():
            a = np.asarray(a)
            f.write(_ct2_string(name) + struct.pack("<B", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape))
            data = a.astype(a.dtype.newbyteorder("<")).tobytes()
            f.write(struct.pack("<BI", codes[a.dtype], len(data)) + data)
        aliases = aliases or {}
        f.write(struct.pack("<I", len(aliases)))
        for k, target in aliases.items():
            f.write(_ct2_string(k) + _ct2_string(target))


def espeak_wav(path: Path, text: str, voice: str = "en-us", speed: int = 150) -> Path:
    """Synthesize ``text`` with espeak-ng and convert to 16 kHz mono 16-bit WAV with sox."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True)
    raw.unlink()
    return path

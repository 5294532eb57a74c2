"""Reader for Hugging Face transformers Whisper checkpoints: model.safetensors (or shards listed in
model.safetensors.index.json) + config.json + tokenizer files. Never touches pickled weights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sttkb.models.checkpoint import Checkpoint, check_complete, check_shape
from sttkb.models.errors import CorruptModelError, UnsupportedSourceError
from sttkb.models.hparams import HParams, expected_tensors
from sttkb.models.safetensors import SafetensorsFile
from sttkb.models.vocab import load_vocab

_PART_NAMES = [  # applied in order to the name with its "model." prefix removed
    ("encoder.embed_positions.weight", "encoder.positional_embedding"),
    ("decoder.embed_positions.weight", "decoder.positional_embedding"),
    ("decoder.embed_tokens.weight", "decoder.token_embedding.weight"),
    ("encoder.layer_norm.", "encoder.ln_post."),
    ("decoder.layer_norm.", "decoder.ln."),
    (".layers.", ".blocks."),
    (".self_attn_layer_norm.", ".attn_ln."),
    (".encoder_attn_layer_norm.", ".cross_attn_ln."),
    (".final_layer_norm.", ".mlp_ln."),
    (".self_attn.", ".attn."),
    (".encoder_attn.", ".cross_attn."),
    (".q_proj.", ".query."),
    (".k_proj.", ".key."),
    (".v_proj.", ".value."),
    (".out_proj.", ".out."),
    (".fc1.", ".mlp.0."),
    (".fc2.", ".mlp.2."),
]
TIED_OUTPUT = "proj_out.weight"


def ggml_name(hf_name: str) -> str | None:
    """transformers tensor name → whisper.cpp name; None for tensors whisper.cpp does not store."""
    name = hf_name.removeprefix("model.")
    if name == TIED_OUTPUT:
        return None
    for old, new in _PART_NAMES:
        name = name.replace(old, new)
    if name.endswith(("attn.key.bias",)):
        return None       # Whisper keys have no bias; one added by a converter cannot change attention weights
    return name


def _load_config(directory: Path) -> dict:
    path = directory / "config.json"
    if not path.is_file():
        raise UnsupportedSourceError(f"{directory}: config.json missing; copy it from the checkpoint "
                                     f"(model.save_pretrained(dir) writes it)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptModelError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise CorruptModelError(f"{path}: expected a JSON object")
    if config.get("model_type", "whisper") != "whisper":
        raise UnsupportedSourceError(f"{directory}: a {config.get('model_type')} model, not Whisper")
    return config


def _shards(directory: Path) -> list[Path]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            files = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CorruptModelError(f"{index}: not a safetensors index (no weight_map)") from e
        missing = [f for f in files if not (directory / f).is_file()]
        if missing:
            raise CorruptModelError(f"{directory}: shard {missing[0]} listed in {index.name} is missing; "
                                    f"copy all model-*.safetensors files")
        return [directory / f for f in files]
    return [directory / "model.safetensors"]


def read_transformers(directory: Path) -> Checkpoint:
    """Open a transformers Whisper directory. Weights stay memory-mapped until ``checkpoint.close()``."""
    config = _load_config(directory)
    files: list[SafetensorsFile] = []

    def close() -> None:
        for f in files:
            f.close()

    try:
        where: dict[str, tuple[SafetensorsFile, str]] = {}
        for shard in _shards(directory):
            f = SafetensorsFile(shard)
            files.append(f)
            for hf_name in f.names():
                where[hf_name] = (f, hf_name)
        mapped: dict[str, tuple[SafetensorsFile, str]] = {}
        for hf_name, loc in where.items():
            name = ggml_name(hf_name)
            if name is not None:
                mapped[name] = loc
        src = str(directory)

        def shape(name: str) -> tuple[int, ...]:
            if name not in mapped:
                raise CorruptModelError(f"{src}: tensor for {name} missing: not a complete Whisper checkpoint")
            f, hf_name = mapped[name]
            return f.shape(hf_name)

        conv1, emb = shape("encoder.conv1.weight"), shape("decoder.token_embedding.weight")
        enc_pos, dec_pos = shape("encoder.positional_embedding"), shape("decoder.positional_embedding")
        n_enc = sum(1 for n in mapped if n.startswith("encoder.blocks.") and n.endswith(".mlp.0.weight"))
        n_dec = sum(1 for n in mapped if n.startswith("decoder.blocks.") and n.endswith(".mlp.0.weight"))
        hp = HParams(
            n_vocab=emb[0], n_audio_ctx=enc_pos[0], n_audio_state=conv1[0],
            n_audio_head=int(config.get("encoder_attention_heads", conv1[0] // 64)), n_audio_layer=n_enc,
            n_text_ctx=dec_pos[0], n_text_state=emb[1],
            n_text_head=int(config.get("decoder_attention_heads", emb[1] // 64)), n_text_layer=n_dec,
            n_mels=conv1[1])
        for key, got in (("num_mel_bins", hp.n_mels), ("d_model", hp.n_text_state),
                         ("encoder_layers", n_enc), ("decoder_layers", n_dec)):
            if key in config and int(config[key]) != got:
                raise CorruptModelError(f"{src}: config.json says {key} = {config[key]} but the weights have {got}: "
                                        f"config and weights are from different models")
        for name in mapped:
            try:
                check_shape(name, shape(name), hp, src)
            except CorruptModelError as e:
                if "unexpected tensor" in str(e):
                    raise CorruptModelError(f"{src}: unexpected tensor {mapped[name][1]}: not a standard Whisper "
                                            f"model. If it has adapters (LoRA), merge them first "
                                            f"(model = model.merge_and_unload()) and save again") from None
                raise
        check_complete(set(mapped), hp, src)
        dtypes = sorted({f.dtype(n) for f, n in mapped.values()})
        warnings = []
        tied = where.get(TIED_OUTPUT) or where.get("model." + TIED_OUTPUT)
        if tied is not None:
            out_w = tied[0].array(tied[1])
            f, n = mapped["decoder.token_embedding.weight"]
            if not np.array_equal(out_w, f.array(n)):
                warnings.append(f"{src}: proj_out.weight differs from the token embedding; whisper.cpp ties them, "
                                f"so the token embedding is used for both")
        vocab = load_vocab(directory)

        def tensors() -> Iterator[tuple[str, np.ndarray]]:
            for name in expected_tensors(hp):       # canonical order: same bytes as from any other source
                f, hf_name = mapped[name]
                yield name, f.array(hf_name)

        return Checkpoint(hparams=hp, vocab=vocab, tensors=tensors, kind="transformers",
                          source_dtype="+".join(d.lower() for d in dtypes), warnings=warnings, close=close)
    except BaseException:
        close()
        raise

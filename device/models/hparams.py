"""Whisper model dimensions and the exact tensor set whisper.cpp expects for them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MULTILINGUAL_MIN_VOCAB = 51865
"""whisper.cpp treats a model as multilingual when n_vocab is at least this (English-only models have 51864)."""


@dataclass(frozen=True)
class HParams:
    """The 10 dimensions in a ggml header, in file order (all counts; ctx in positions, state in channels)."""

    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_mels: int

    @property
    def english_only(self) -> bool:
        return self.n_vocab < MULTILINGUAL_MIN_VOCAB

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(asdict(self).values())


_LINEAR = ("weight", "bias")


def _block(prefix: str, d: int, cross: bool) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    attns = [("attn", "attn_ln")] + ([("cross_attn", "cross_attn_ln")] if cross else [])
    for attn, ln in attns:
        shapes[f"{prefix}.{ln}.weight"] = (d,)
        shapes[f"{prefix}.{ln}.bias"] = (d,)
        for proj in ("query", "key", "value", "out"):
            shapes[f"{prefix}.{attn}.{proj}.weight"] = (d, d)
            if proj != "key":          # Whisper's key projections have no bias
                shapes[f"{prefix}.{attn}.{proj}.bias"] = (d,)
    shapes[f"{prefix}.mlp_ln.weight"] = (d,)
    shapes[f"{prefix}.mlp_ln.bias"] = (d,)
    shapes[f"{prefix}.mlp.0.weight"] = (4 * d, d)
    shapes[f"{prefix}.mlp.0.bias"] = (4 * d,)
    shapes[f"{prefix}.mlp.2.weight"] = (d, 4 * d)
    shapes[f"{prefix}.mlp.2.bias"] = (d,)
    return shapes


def expected_tensors(hp: HParams) -> dict[str, tuple[int, ...]]:
    """Every tensor whisper.cpp loads, by its name, with its PyTorch (row-major) shape, in a canonical order."""
    da, dt = hp.n_audio_state, hp.n_text_state
    shapes: dict[str, tuple[int, ...]] = {
        "encoder.conv1.weight": (da, hp.n_mels, 3),
        "encoder.conv1.bias": (da,),
        "encoder.conv2.weight": (da, da, 3),
        "encoder.conv2.bias": (da,),
        "encoder.positional_embedding": (hp.n_audio_ctx, da),
    }
    for i in range(hp.n_audio_layer):
        shapes.update(_block(f"encoder.blocks.{i}", da, cross=False))
    shapes["encoder.ln_post.weight"] = (da,)
    shapes["encoder.ln_post.bias"] = (da,)
    shapes["decoder.positional_embedding"] = (hp.n_text_ctx, dt)
    shapes["decoder.token_embedding.weight"] = (hp.n_vocab, dt)
    for i in range(hp.n_text_layer):
        shapes.update(_block(f"decoder.blocks.{i}", dt, cross=True))
    shapes["decoder.ln.weight"] = (dt,)
    shapes["decoder.ln.bias"] = (dt,)
    return shapes

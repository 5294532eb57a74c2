"""An existing whisper.cpp ggml file as a conversion source (to re-quantize it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sttkb.models.checkpoint import Checkpoint
from sttkb.models.ggml import GgmlFile, check_against_whisper_layout
from sttkb.models.hparams import expected_tensors


def read_ggml_checkpoint(path: Path) -> Checkpoint:
    f = GgmlFile(path)
    try:
        check_against_whisper_layout(f)
    except BaseException:
        f.close()
        raise

    def tensors() -> Iterator[tuple[str, np.ndarray]]:
        for name in expected_tensors(f.hparams):
            yield name, f.array(name)

    warnings = []
    if f.quant_label not in ("f16", "f32"):
        warnings.append(f"{path} is already quantized ({f.quant_label}); re-quantizing loses precision twice. "
                        f"Start from the f16/f32 original if you have it")
    return Checkpoint(hparams=f.hparams, vocab=f.vocab, tensors=tensors, kind="ggml", source_dtype=f.quant_label,
                      mel_filters=np.array(f.mel_filters), warnings=warnings, close=f.close)

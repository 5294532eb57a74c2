"""Checkpoint → ggml file, with a progress bar on stderr."""

from __future__ import annotations

import logging
from typing import BinaryIO

from gguf.constants import GGMLQuantizationType
from tqdm import tqdm

from sttkb.models.checkpoint import Checkpoint
from sttkb.models.ggml import write_ggml
from sttkb.models.hparams import expected_tensors
from sttkb.models.quant import Quant

log = logging.getLogger(__name__)


def convert(ckpt: Checkpoint, out: BinaryIO, quant: Quant, progress: bool = True) -> dict[str, GGMLQuantizationType]:
    """Write ``ckpt`` to ``out`` as a whisper.cpp model of type ``quant``; returns each tensor's type."""
    total = len(expected_tensors(ckpt.hparams))
    with tqdm(total=total, desc=f"converting to {quant.label}", unit="tensor", disable=None if progress else True,
              leave=False) as bar:
        return write_ggml(out, ckpt.hparams, quant, ckpt.vocab, ckpt.tensors(), mel=ckpt.mel_filters,
                          on_tensor=lambda _name: bar.update(1))

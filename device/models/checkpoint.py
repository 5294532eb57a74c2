"""What every reader produces: dimensions, vocabulary and the tensors under whisper.cpp's names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from sttkb.models.errors import CorruptModelError
from sttkb.models.hparams import HParams, expected_tensors

TensorStream = Callable[[], Iterator[tuple[str, np.ndarray]]]
"""Yields (whisper.cpp name, array in PyTorch shape, any float dtype) once per call; arrays may be memory-mapped."""


@dataclass
class Checkpoint:
    """A Whisper model read from some source, ready to be written as ggml."""

    hparams: HParams
    vocab: list[bytes]
    """Raw bytes of tokens 0 … eot-1."""
    tensors: TensorStream
    kind: str
    """Source format: "ctranslate2", "transformers" or "ggml"."""
    source_dtype: str
    """Weight type in the source ("f16", "f32", "bf16", "q8_0"…)."""
    mel_filters: np.ndarray | None = None
    """Filterbank to carry over (ggml sources); None = compute the standard Slaney one."""
    warnings: list[str] = field(default_factory=list)
    close: Callable[[], None] = lambda: None


def check_shape(name: str, shape: tuple[int, ...], hp: HParams, source: str) -> None:
    """Raise CorruptModelError unless ``name`` is a tensor whisper.cpp expects with exactly this shape."""
    want = expected_tensors(hp).get(name)
    if want is None:
        raise CorruptModelError(f"{source}: unexpected tensor {name}: not a standard Whisper model")
    if tuple(shape) != want:
        raise CorruptModelError(f"{source}: tensor {name} has shape {tuple(shape)}, expected {want} "
                                f"for these model dimensions: the file is damaged or not a Whisper model")


def check_complete(names: set[str], hp: HParams, source: str) -> None:
    """Raise CorruptModelError if any tensor whisper.cpp needs is missing."""
    missing = [n for n in expected_tensors(hp) if n not in names]
    if missing:
        raise CorruptModelError(f"{source}: {len(missing)} tensors missing (first: {missing[0]}): "
                                f"the model is incomplete or not a Whisper model")

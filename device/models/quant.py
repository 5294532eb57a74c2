"""Output types of an import and the per-tensor type rules whisper.cpp expects (same as its own quantize tool)."""

from __future__ import annotations

import enum

import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize, quantize

from sttkb.models.errors import UnsupportedSourceError

QNT_VERSION_FACTOR = 1000
QNT_VERSION = 2
"""whisper.cpp stores quantized files' ftype as QNT_VERSION * 1000 + base ftype."""


class Quant(enum.Enum):
    """What ``--quant`` accepts: the type of the large 2-D weights. value = (name, ggml type, base ftype)."""

    F16 = ("f16", GGMLQuantizationType.F16, 1)
    Q8_0 = ("q8_0", GGMLQuantizationType.Q8_0, 7)
    Q5_1 = ("q5_1", GGMLQuantizationType.Q5_1, 9)
    Q5_0 = ("q5_0", GGMLQuantizationType.Q5_0, 8)
    Q4_0 = ("q4_0", GGMLQuantizationType.Q4_0, 2)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def ggml_type(self) -> GGMLQuantizationType:
        return self.value[1]

    @property
    def file_ftype(self) -> int:
        """The ftype field written in the ggml header."""
        base = self.value[2]
        return base if self is Quant.F16 else QNT_VERSION * QNT_VERSION_FACTOR + base

    @classmethod
    def parse(cls, text: str) -> "Quant":
        for q in cls:
            if q.label == text.lower():
                return q
        raise UnsupportedSourceError(f"unknown quant type {text!r}; choose one of {', '.join(q.label for q in cls)}")


F32_FTYPE = 0
_BASE_FTYPE_NAMES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 7: "q8_0", 8: "q5_0", 9: "q5_1"}


def ftype_label(ftype: int) -> str:
    """Header ftype → a short name ("f16", "q8_0"…); unknown values give "ftype N"."""
    return _BASE_FTYPE_NAMES.get(ftype % QNT_VERSION_FACTOR, f"ftype {ftype}")


ALWAYS_F32 = frozenset({"encoder.conv1.bias", "encoder.conv2.bias",
                        "encoder.positional_embedding", "decoder.positional_embedding"})


def tensor_type(name: str, shape: tuple[int, ...], quant: Quant) -> GGMLQuantizationType:
    """The ggml type whisper.cpp expects for this tensor in a file of type ``quant``.

    1-D tensors, conv biases and positional embeddings are f32; conv weights (3-D) stay f16; every other
    2-D weight gets ``quant``.
    """
    if len(shape) < 2 or name in ALWAYS_F32:
        return GGMLQuantizationType.F32
    if len(shape) != 2 or quant is Quant.F16:
        return GGMLQuantizationType.F16
    block = GGML_QUANT_SIZES[quant.ggml_type][0]
    if shape[-1] % block:
        raise UnsupportedSourceError(
            f"cannot quantize {name} (rows of {shape[-1]} values) to {quant.label}: rows must be a multiple of "
            f"{block}. Import with --quant f16")
    return quant.ggml_type


def tensor_nbytes(shape: tuple[int, ...], ggml_type: GGMLQuantizationType) -> int:
    """Bytes of a tensor of this shape and type (quantized types pack blocks along the last axis)."""
    block, size = GGML_QUANT_SIZES[ggml_type]
    n = int(np.prod(shape, dtype=np.int64))
    if n % block:
        raise ValueError(f"{n} values do not fill whole {ggml_type.name} blocks of {block}")
    return n // block * size


_FLOAT_DTYPES = {GGMLQuantizationType.F32: np.float32, GGMLQuantizationType.F16: np.float16}

ROWS_PER_CHUNK = 2048
"""Rows converted at a time, so a large-v3 token embedding never needs a full float32 copy in memory."""


def encode_chunks(data: np.ndarray, ggml_type: GGMLQuantizationType):
    """Yield the file bytes of ``data`` (PyTorch shape) as ``ggml_type``, a few thousand rows at a time."""
    if data.ndim <= 1:
        yield np.ascontiguousarray(data, dtype=_FLOAT_DTYPES[ggml_type]).tobytes()
        return
    if ggml_type in _FLOAT_DTYPES:
        rows = data.reshape(data.shape[0], -1)
        for start in range(0, rows.shape[0], ROWS_PER_CHUNK):
            yield np.ascontiguousarray(rows[start:start + ROWS_PER_CHUNK], dtype=_FLOAT_DTYPES[ggml_type]).tobytes()
        return
    for start in range(0, data.shape[0], ROWS_PER_CHUNK):
        rows = np.asarray(data[start:start + ROWS_PER_CHUNK], dtype=np.float32)
        yield quantize(rows, ggml_type).tobytes()


def decode(raw: np.ndarray, shape: tuple[int, ...], ggml_type: GGMLQuantizationType) -> np.ndarray:
    """File bytes (uint8) of one tensor → float32 array of ``shape``."""
    if ggml_type == GGMLQuantizationType.F32:
        return raw.view(np.float32).reshape(shape)
    if ggml_type == GGMLQuantizationType.F16:
        return raw.view(np.float16).reshape(shape)
    rows = raw.reshape(-1, tensor_nbytes((shape[-1],), ggml_type))
    return dequantize(rows, ggml_type).reshape(shape)


def check_tensor_types(f) -> None:
    """Raise CorruptModelError unless every tensor of the GgmlFile ``f`` has the type whisper.cpp expects for the
    file's ftype (it refuses, or misreads, anything else)."""
    from sttkb.models.errors import CorruptModelError
    base = f.ftype % QNT_VERSION_FACTOR
    by_base = {q.value[2]: q for q in Quant}
    for name, t in f.tensors.items():
        shape = t.shape[:1] if name in ("encoder.conv1.bias", "encoder.conv2.bias") else t.shape
        if base == F32_FTYPE:
            want = GGMLQuantizationType.F32
        elif base in by_base:
            want = tensor_type(name, shape, by_base[base])
        else:
            raise CorruptModelError(f"{f.path}: model type {ftype_label(f.ftype)} is not supported; "
                                    f"use f16, q8_0, q5_1, q5_0 or q4_0")
        if t.ggml_type != want:
            raise CorruptModelError(f"{f.path}: tensor {name} is {t.ggml_type.name}, but a {ftype_label(f.ftype)} "
                                    f"model needs {want.name} there: the file is damaged")

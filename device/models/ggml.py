"""whisper.cpp's ggml model file: writer and reader.

Layout (little-endian): u32 magic, 11 i32 (10 dimensions + ftype), mel filterbank (i32 n_mels, i32 n_fft_bins,
f32 data), vocabulary (i32 count, then i32 length + bytes per token), then tensors until EOF (i32 n_dims,
i32 name length, i32 ggml type, dims fastest-first, name, raw data).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from gguf.constants import GGMLQuantizationType

from sttkb.models.errors import CorruptModelError, UnsupportedSourceError
from sttkb.models.hparams import HParams, expected_tensors
from sttkb.models.mel import mel_filters as standard_mel_filters
from sttkb.models.quant import Quant, decode, encode_chunks, ftype_label, tensor_nbytes, tensor_type

MAGIC = 0x67676D6C
MAGIC_BYTES = struct.pack("<I", MAGIC)
GGUF_MAGIC = b"GGUF"
_SUPPORTED_TYPES = {t.value: t for t in (GGMLQuantizationType.F32, GGMLQuantizationType.F16,
                                          GGMLQuantizationType.Q4_0, GGMLQuantizationType.Q4_1,
                                          GGMLQuantizationType.Q5_0, GGMLQuantizationType.Q5_1,
                                          GGMLQuantizationType.Q8_0)}


def _i32(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


def write_header(out: BinaryIO, hp: HParams, ftype: int, vocab: list[bytes], mel: np.ndarray | None = None) -> None:
    """Magic, dimensions, ftype, mel filterbank and vocabulary."""
    if mel is None:
        mel = standard_mel_filters(hp.n_mels)
    if mel.shape[0] != hp.n_mels:
        raise ValueError(f"mel filterbank has {mel.shape[0]} bins, the model needs {hp.n_mels}")
    out.write(MAGIC_BYTES)
    out.write(_i32(*hp.as_tuple(), ftype))
    out.write(_i32(*mel.shape))
    out.write(np.ascontiguousarray(mel, dtype="<f4").tobytes())
    out.write(_i32(len(vocab)))
    for token in vocab:
        out.write(_i32(len(token)))
        out.write(token)


def write_tensor(out: BinaryIO, name: str, data: np.ndarray, ggml_type: GGMLQuantizationType) -> None:
    """One tensor record. ``data`` is in PyTorch shape; dims are written fastest-first as ggml wants."""
    shape = tuple(data.shape)
    if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
        shape = (shape[0], 1)           # whisper.cpp loads conv biases as [1, n] tensors
        data = data.reshape(shape)
    encoded = name.encode()
    out.write(_i32(len(shape), len(encoded), int(ggml_type)))
    out.write(_i32(*reversed(shape)))
    out.write(encoded)
    for chunk in encode_chunks(data, ggml_type):
        out.write(chunk)


def write_ggml(out: BinaryIO, hp: HParams, quant: Quant, vocab: list[bytes],
               tensors: Iterable[tuple[str, np.ndarray]], mel: np.ndarray | None = None,
               on_tensor: Callable[[str], None] | None = None) -> dict[str, GGMLQuantizationType]:
    """Write a complete whisper.cpp model of type ``quant``; returns the type chosen for each tensor.

    ``tensors`` must hold exactly the tensors of :func:`expected_tensors` (any order).
    """
    expected = expected_tensors(hp)
    write_header(out, hp, quant.file_ftype, vocab, mel)
    types: dict[str, GGMLQuantizationType] = {}
    for name, data in tensors:
        if name not in expected:
            raise CorruptModelError(f"unexpected tensor {name}: not a standard Whisper model")
        if name in types:
            raise CorruptModelError(f"tensor {name} appears twice in the source")
        if tuple(data.shape) != expected[name]:
            raise CorruptModelError(f"tensor {name} has shape {tuple(data.shape)}, expected {expected[name]}")
        types[name] = tensor_type(name, expected[name], quant)
        write_tensor(out, name, data, types[name])
        if on_tensor is not None:
            on_tensor(name)
    missing = [n for n in expected if n not in types]
    if missing:
        raise CorruptModelError(f"{len(missing)} tensors missing (first: {missing[0]}): the model is incomplete")
    return types


@dataclass(frozen=True)
class TensorInfo:
    name: str
    ggml_type: GGMLQuantizationType
    shape: tuple[int, ...]
    """PyTorch order (slowest first); conv biases as stored, (n, 1)."""
    offset: int
    nbytes: int


class GgmlFile:
    """A memory-mapped ggml model file: header fields, vocabulary, mel filters and a tensor index."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise CorruptModelError(f"{self.path}: cannot open: {e.strerror}") from e
        try:
            size = self.path.stat().st_size
            if size < 48:
                raise CorruptModelError(f"{self.path}: only {size} bytes: not a whole ggml model")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self._parse()
        except BaseException:
            self.close()
            raise

    def _fail(self, what: str) -> CorruptModelError:
        return CorruptModelError(f"{self.path}: {what}: the file is truncated or damaged; copy or convert it again")

    def _parse(self) -> None:
        m = self._map
        if m[:4] == GGUF_MAGIC:
            raise UnsupportedSourceError(f"{self.path}: this is a GGUF file; whisper.cpp loads ggml .bin models, "
                                         f"not GGUF. Import the original model directory instead")
        if m[:4] != MAGIC_BYTES:
            raise UnsupportedSourceError(f"{self.path}: not a ggml whisper model (bad magic)")
        pos = 4
        fields = struct.unpack_from("<11i", m, pos)
        pos += 44
        self.hparams = HParams(*fields[:10])
        self.ftype = fields[10]
        if min(fields[:10]) <= 0 or self.hparams.n_mels > 512 or self.hparams.n_vocab > 1_000_000:
            raise self._fail(f"implausible header {fields}")
        try:
            n_mel, n_fft = struct.unpack_from("<2i", m, pos)
            pos += 8
            if n_mel != self.hparams.n_mels or not 0 < n_fft <= 4096:
                raise self._fail(f"mel filterbank header ({n_mel}×{n_fft}) does not match n_mels {self.hparams.n_mels}")
            self.mel_filters = np.frombuffer(m, dtype="<f4", count=n_mel * n_fft, offset=pos).reshape(n_mel, n_fft)
            pos += 4 * n_mel * n_fft
            (count,) = struct.unpack_from("<i", m, pos)
            pos += 4
            if not 0 <= count <= self.hparams.n_vocab:
                raise self._fail(f"vocabulary count {count}")
            vocab = []
            for _ in range(count):
                (length,) = struct.unpack_from("<i", m, pos)
                if not 0 <= length <= 1024 or pos + 4 + length > len(m):
                    raise self._fail("bad vocabulary entry")
                vocab.append(bytes(m[pos + 4:pos + 4 + length]))
                pos += 4 + length
            self.vocab = vocab
            self.tensors: dict[str, TensorInfo] = {}
            while pos < len(m):
                n_dims, name_len, type_id = struct.unpack_from("<3i", m, pos)
                pos += 12
                if not 1 <= n_dims <= 4 or not 0 < name_len < 256 or type_id not in _SUPPORTED_TYPES:
                    raise self._fail(f"bad tensor record at byte {pos - 12}")
                dims = struct.unpack_from(f"<{n_dims}i", m, pos)
                pos += 4 * n_dims
                name = bytes(m[pos:pos + name_len]).decode("utf-8", "replace")
                pos += name_len
                ggml_type = _SUPPORTED_TYPES[type_id]
                shape = tuple(reversed(dims))
                nbytes = tensor_nbytes(shape, ggml_type)
                if pos + nbytes > len(m):
                    raise self._fail(f"tensor {name} ends past the end of the file")
                self.tensors[name] = TensorInfo(name, ggml_type, shape, pos, nbytes)
                pos += nbytes
        except struct.error as e:
            raise self._fail("ends in the middle of a record") from e
        except ValueError as e:
            if isinstance(e, CorruptModelError):
                raise
            raise self._fail(str(e)) from e

    @property
    def quant_label(self) -> str:
        return ftype_label(self.ftype)

    def raw(self, name: str) -> np.ndarray:
        """The tensor's bytes as stored (uint8, memory-mapped)."""
        t = self.tensors[name]
        return np.frombuffer(self._map, dtype=np.uint8, count=t.nbytes, offset=t.offset)

    def array(self, name: str) -> np.ndarray:
        """The tensor as floats in PyTorch shape (conv biases flattened back to 1-D; quantized types decoded)."""
        t = self.tensors[name]
        data = decode(self.raw(name), t.shape, t.ggml_type)
        if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
            data = data.reshape(-1)
        return data

    def close(self) -> None:
        m = getattr(self, "_map", None)
        if m is not None:
            try:
                m.close()
            except BufferError:       # arrays still point into the map; the GC unmaps it later
                pass
        if hasattr(self, "_file"):
            self._file.close()

    def __enter__(self) -> "GgmlFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_against_whisper_layout(f: GgmlFile) -> None:
    """Raise CorruptModelError unless ``f`` holds exactly the tensors whisper.cpp needs, with the right shapes."""
    expected = expected_tensors(f.hparams)
    for name, want in expected.items():
        t = f.tensors.get(name)
        if t is None:
            raise CorruptModelError(f"{f.path}: tensor {name} missing: the file is truncated or incomplete")
        got = t.shape if name not in ("encoder.conv1.bias", "encoder.conv2.bias") else t.shape[:1]
        if got != want:
            raise CorruptModelError(f"{f.path}: tensor {name} has shape {got}, expected {want}")
    extra = set(f.tensors) - set(expected)
    if extra:
        raise CorruptModelError(f"{f.path}: unexpected tensor {sorted(extra)[0]}: not a whisper.cpp model")

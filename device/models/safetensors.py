"""A small read-only safetensors parser (numpy, memory-mapped; F32, F16 and BF16 — no torch needed).

File: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]},
"__metadata__": {...}}, then the data; offsets are relative to the end of the header.
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path

import numpy as np

from sttkb.models.errors import CorruptModelError, UnsupportedSourceError

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F64": np.dtype("<f8")}
MAX_HEADER = 100 << 20


class SafetensorsFile:
    """Tensor index of one .safetensors file; :meth:`array` returns float arrays (BF16 widened to float32)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file = open(path, "rb")
        except OSError as e:
            raise CorruptModelError(f"{path}: cannot open: {e.strerror}") from e
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""
            self._parse()
        except BaseException:
            self.close()
            raise

    def _bad(self, what: str) -> CorruptModelError:
        return CorruptModelError(f"{self.path}: {what}: the safetensors file is truncated or damaged; copy it again")

    def _parse(self) -> None:
        m = self._map
        if len(m) < 8:
            raise self._bad("shorter than a header")
        (n,) = struct.unpack_from("<Q", m, 0)
        if n > MAX_HEADER or 8 + n > len(m):
            raise self._bad(f"header length {n}")
        try:
            header = json.loads(bytes(m[8:8 + n]).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._bad("header is not JSON") from e
        if not isinstance(header, dict):
            raise self._bad("header is not a JSON object")
        self.metadata = header.pop("__metadata__", None) or {}
        self.entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
        data_start = 8 + n
        for name, info in header.items():
            try:
                dtype, shape = info["dtype"], tuple(int(d) for d in info["shape"])
                begin, end = (int(x) for x in info["data_offsets"])
            except (KeyError, TypeError, ValueError) as e:
                raise self._bad(f"bad header entry for {name}") from e
            if dtype not in _DTYPES:
                raise UnsupportedSourceError(f"{self.path}: tensor {name} is {dtype}; only F32, F16 and BF16 "
                                             f"checkpoints can be imported (save the model unquantized)")
            if end - begin != int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype].itemsize or begin < 0:
                raise self._bad(f"tensor {name}: size does not match its shape")
            if data_start + end > len(m):
                raise self._bad(f"tensor {name} runs past the end of the file")
            self.entries[name] = (dtype, shape, data_start + begin, end - begin)

    def names(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name][1]

    def dtype(self, name: str) -> str:
        return self.entries[name][0]

    def array(self, name: str) -> np.ndarray:
        dtype, shape, offset, nbytes = self.entries[name]
        raw = np.frombuffer(self._map, dtype=_DTYPES[dtype], count=nbytes // _DTYPES[dtype].itemsize, offset=offset)
        if dtype == "BF16":
            return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
        return raw.reshape(shape)

    def close(self) -> None:
        m = getattr(self, "_map", None)
        if isinstance(m, mmap.mmap):
            try:
                m.close()
            except BufferError:
                pass
        if hasattr(self, "_file"):
            self._file.close()

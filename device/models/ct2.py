"""Reader for CTranslate2 / faster-whisper Whisper directories (model.bin + tokenizer files), f16/f32/bf16.

model.bin: u32 version, string spec name, u32 revision, u32 variable count, then per variable: string name,
u8 rank, rank × u32 dims, u8 dtype, u32 byte count, data; then u32 alias count and (alias, target) string pairs.
Strings are u16 length (including a trailing NUL) + bytes. Fused weights are split back into whisper's
query/key/value; the key bias CTranslate2 stores (all zeros) is dropped, as Whisper has none.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sttkb.models.checkpoint import Checkpoint, check_complete, check_shape
from sttkb.models.errors import CorruptModelError, UnsupportedSourceError
from sttkb.models.hparams import HParams
from sttkb.models.vocab import load_vocab

SPEC_NAME = "WhisperSpec"
_DTYPES = {0: "f32", 1: "int8", 2: "int16", 3: "int32", 4: "f16", 5: "bf16"}
INT8_MESSAGE = ("{path}: this CTranslate2 model is quantized to int8, which cannot be converted back to whisper.cpp. "
                "Export it again as float16 (ct2-transformers-converter --model <checkpoint> --output_dir <dir> "
                "--quantization float16) or import the original transformers checkpoint")


def _to_float(raw: np.ndarray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "f32":
        return raw.view("<f4").reshape(shape)
    if dtype == "f16":
        return raw.view("<f2").reshape(shape)
    if dtype == "bf16":
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    raise AssertionError(dtype)


class Ct2ModelBin:
    """Index of the variables in a CTranslate2 model.bin (memory-mapped; data is read lazily)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self._parse()
        except (struct.error, UnicodeDecodeError, ValueError) as e:
            self.close()
            if isinstance(e, (CorruptModelError, UnsupportedSourceError)):
                raise
            raise CorruptModelError(f"{path}: the CTranslate2 model.bin is truncated or damaged ({e}); "
                                    f"copy it again") from e
        except BaseException:
            self.close()
            raise

    def _string(self) -> str:
        (n,) = struct.unpack_from("<H", self._map, self._pos)
        raw = self._map[self._pos + 2:self._pos + 2 + n]
        if len(raw) != n:
            raise struct.error("string runs past the end of the file")
        self._pos += 2 + n
        return raw.rstrip(b"\0").decode("utf-8")

    def _u32(self) -> int:
        (v,) = struct.unpack_from("<I", self._map, self._pos)
        self._pos += 4
        return v

    def _parse(self) -> None:
        self._pos = 0
        version = self._u32()
        if not 3 <= version <= 10:
            raise UnsupportedSourceError(f"{self.path}: not a CTranslate2 model.bin (version field {version})")
        spec = self._string() if version >= 2 else ""
        if spec != SPEC_NAME:
            raise UnsupportedSourceError(f"{self.path}: a CTranslate2 {spec or 'unknown'} model, not Whisper")
        self.revision = self._u32()
        count = self._u32()
        self.variables: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
        for _ in range(count):
            name = self._string()
            rank = self._map[self._pos]
            self._pos += 1
            dims = struct.unpack_from(f"<{rank}I", self._map, self._pos)
            self._pos += 4 * rank
            dtype_id = self._map[self._pos]
            self._pos += 1
            nbytes = self._u32()
            if self._pos + nbytes > len(self._map):
                raise CorruptModelError(f"{self.path}: variable {name} runs past the end of the file: the model.bin "
                                        f"is truncated; copy it again")
            dtype = _DTYPES.get(dtype_id)
            if dtype is None:
                raise CorruptModelError(f"{self.path}: variable {name} has unknown data type {dtype_id}")
            self.variables[name] = (dtype, tuple(dims), self._pos, nbytes)
            self._pos += nbytes
        self.aliases: dict[str, str] = {}
        if self._pos < len(self._map):
            for _ in range(self._u32()):
                alias = self._string()
                self.aliases[alias] = self._string()

    def raw(self, name: str) -> tuple[str, tuple[int, ...], np.ndarray]:
        dtype, shape, offset, nbytes = self.variables[self.aliases.get(name, name)]
        return dtype, shape, np.frombuffer(self._map, dtype=np.uint8, count=nbytes, offset=offset)

    def scalar(self, name: str) -> int | None:
        if name not in self.variables:
            return None
        dtype, shape, raw = self.raw(name)
        fmt = {"int8": "<b", "int16": "<h", "int32": "<i"}.get(dtype)
        return int(struct.unpack(fmt, raw.tobytes())[0]) if fmt and shape == () else None

    def tensor(self, name: str) -> np.ndarray:
        if name not in self.variables and name not in self.aliases:
            raise CorruptModelError(f"{self.path}: variable {name} missing: not a complete Whisper model")
        dtype, shape, raw = self.raw(name)
        if dtype == "int8" or dtype == "int16":
            raise UnsupportedSourceError(INT8_MESSAGE.format(path=self.path))
        if dtype not in ("f32", "f16", "bf16"):
            raise CorruptModelError(f"{self.path}: variable {name} has type {dtype}, expected floats")
        return _to_float(raw, dtype, shape)

    def close(self) -> None:
        m = getattr(self, "_map", None)
        if m is not None:
            try:
                m.close()
            except BufferError:
                pass
        self._file.close()


def _layer_count(mb: Ct2ModelBin, side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in mb.variables:
        n += 1
    return n


def _split(a: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(a, parts, axis=0)


def _linear(prefix: str, dst: str, mb: Ct2ModelBin) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{dst}.weight", mb.tensor(f"{prefix}/weight")
    yield f"{dst}.bias", mb.tensor(f"{prefix}/bias")


def _norm(prefix: str, dst: str, mb: Ct2ModelBin) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{dst}.weight", mb.tensor(f"{prefix}/gamma")
    yield f"{dst}.bias", mb.tensor(f"{prefix}/beta")


def _self_attention(src: str, dst: str, mb: Ct2ModelBin) -> Iterator[tuple[str, np.ndarray]]:
    yield from _norm(f"{src}/layer_norm", f"{dst}.attn_ln", mb)
    wq, wk, wv = _split(mb.tensor(f"{src}/linear_0/weight"), 3)
    bq, _bk, bv = _split(mb.tensor(f"{src}/linear_0/bias"), 3)
    yield f"{dst}.attn.query.weight", wq
    yield f"{dst}.attn.query.bias", bq
    yield f"{dst}.attn.key.weight", wk
    yield f"{dst}.attn.value.weight", wv
    yield f"{dst}.attn.value.bias", bv
    yield from _linear(f"{src}/linear_1", f"{dst}.attn.out", mb)


def _cross_attention(src: str, dst: str, mb: Ct2ModelBin) -> Iterator[tuple[str, np.ndarray]]:
    yield from _norm(f"{src}/layer_norm", f"{dst}.cross_attn_ln", mb)
    yield from _linear(f"{src}/linear_0", f"{dst}.cross_attn.query", mb)
    wk, wv = _split(mb.tensor(f"{src}/linear_1/weight"), 2)
    _bk, bv = _split(mb.tensor(f"{src}/linear_1/bias"), 2)
    yield f"{dst}.cross_attn.key.weight", wk
    yield f"{dst}.cross_attn.value.weight", wv
    yield f"{dst}.cross_attn.value.bias", bv
    yield from _linear(f"{src}/linear_2", f"{dst}.cross_attn.out", mb)


def _ffn(src: str, dst: str, mb: Ct2ModelBin) -> Iterator[tuple[str, np.ndarray]]:
    yield from _norm(f"{src}/layer_norm", f"{dst}.mlp_ln", mb)
    yield from _linear(f"{src}/linear_0", f"{dst}.mlp.0", mb)
    yield from _linear(f"{src}/linear_1", f"{dst}.mlp.2", mb)


def _tensors(mb: Ct2ModelBin, hp: HParams) -> Iterator[tuple[str, np.ndarray]]:
    yield from _linear("encoder/conv1", "encoder.conv1", mb)
    yield from _linear("encoder/conv2", "encoder.conv2", mb)
    yield "encoder.positional_embedding", mb.tensor("encoder/position_encodings/encodings")
    for i in range(hp.n_audio_layer):
        yield from _self_attention(f"encoder/layer_{i}/self_attention", f"encoder.blocks.{i}", mb)
        yield from _ffn(f"encoder/layer_{i}/ffn", f"encoder.blocks.{i}", mb)
    yield from _norm("encoder/layer_norm", "encoder.ln_post", mb)
    yield "decoder.positional_embedding", mb.tensor("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", mb.tensor("decoder/embeddings/weight")
    for i in range(hp.n_text_layer):
        yield from _self_attention(f"decoder/layer_{i}/self_attention", f"decoder.blocks.{i}", mb)
        yield from _cross_attention(f"decoder/layer_{i}/attention", f"decoder.blocks.{i}", mb)
        yield from _ffn(f"decoder/layer_{i}/ffn", f"decoder.blocks.{i}", mb)
    yield from _norm("decoder/layer_norm", "decoder.ln", mb)


def _shape(mb: Ct2ModelBin, name: str) -> tuple[int, ...]:
    if name not in mb.variables:
        raise CorruptModelError(f"{mb.path}: variable {name} missing: not a complete Whisper model")
    return mb.variables[name][1]


def read_ct2(directory: Path) -> Checkpoint:
    """Open a CTranslate2 Whisper directory. Weights stay memory-mapped until ``checkpoint.close()``."""
    mb = Ct2ModelBin(directory / "model.bin")
    try:
        dtypes = {v[0] for n, v in mb.variables.items() if n.endswith("/weight")}
        if any(n.endswith("weight_scale") for n in mb.variables) or "int8" in dtypes or "int16" in dtypes:
            raise UnsupportedSourceError(INT8_MESSAGE.format(path=mb.path))
        conv1 = _shape(mb, "encoder/conv1/weight")
        emb = _shape(mb, "decoder/embeddings/weight")
        enc_pos = _shape(mb, "encoder/position_encodings/encodings")
        dec_pos = _shape(mb, "decoder/position_encodings/encodings")
        if len(conv1) != 3 or len(emb) != 2 or len(enc_pos) != 2 or len(dec_pos) != 2:
            raise CorruptModelError(f"{mb.path}: unexpected tensor ranks: not a Whisper model")
        n_audio_state, n_text_state = conv1[0], emb[1]
        hp = HParams(
            n_vocab=emb[0], n_audio_ctx=enc_pos[0], n_audio_state=n_audio_state,
            n_audio_head=mb.scalar("encoder/num_heads") or n_audio_state // 64,
            n_audio_layer=_layer_count(mb, "encoder"), n_text_ctx=dec_pos[0], n_text_state=n_text_state,
            n_text_head=mb.scalar("decoder/num_heads") or n_text_state // 64,
            n_text_layer=_layer_count(mb, "decoder"), n_mels=conv1[1])
        if hp.n_audio_layer == 0 or hp.n_text_layer == 0:
            raise CorruptModelError(f"{mb.path}: no encoder or decoder layers found: not a Whisper model")
        vocab = load_vocab(directory)
        source_dtype = sorted(dtypes)[0] if len(dtypes) == 1 else "+".join(sorted(dtypes))
        names = set()
        for name, array in _tensors(mb, hp):      # views into the map: cheap, checks every shape up front
            check_shape(name, array.shape, hp, str(mb.path))
            names.add(name)
        check_complete(names, hp, str(mb.path))
        return Checkpoint(hparams=hp, vocab=vocab, tensors=lambda: _tensors(mb, hp), kind="ctranslate2",
                          source_dtype=source_dtype, close=mb.close)
    except BaseException:
        mb.close()
        raise


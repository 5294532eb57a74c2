"""Work out what kind of model a path is, refuse what we must not or cannot read, and open the rest."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from sttkb.models.checkpoint import Checkpoint
from sttkb.models.errors import SourceNotFoundError, UnsupportedSourceError
from sttkb.models.ggml import GGUF_MAGIC, MAGIC_BYTES

log = logging.getLogger(__name__)

PICKLE_MESSAGE = (
    "{path}: this is a pickled PyTorch file; loading it could run arbitrary code, so sttkb never opens it. "
    "Export the model as safetensors instead: in Python, `model.save_pretrained(DIR, safe_serialization=True)` "
    "and `processor.save_pretrained(DIR)` (transformers), then `sttkb model import DIR`")
PICKLED_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "training_args.bin")


def _magic(path: Path, n: int = 16) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as e:
        raise SourceNotFoundError(f"{path}: cannot read: {e.strerror}") from e


def _is_pickle(path: Path, head: bytes) -> bool:
    # torch.save writes a zip (PK..) holding data.pkl, or (old format) a bare pickle starting with PROTO 0x80.
    return head[:2] == b"\x80\x02" or head[:1] == b"\x80" or (head[:4] == b"PK\x03\x04" and zipfile.is_zipfile(path))


def _describe_unknown(path: Path, head: bytes) -> str:
    if head[:4] == b"RIFF" or head[:4] in (b"fLaC", b"OggS", b"ID3\x03") or head[4:8] == b"ftyp":
        return f"{path}: this is an audio file, not a model"
    if head[:1] in (b"{", b"["):
        return f"{path}: this is a JSON file; pass the model DIRECTORY that contains it"
    return f"{path}: not a Whisper model sttkb can import"


SUPPORTED = ("a Hugging Face transformers directory (model.safetensors + config.json + tokenizer.json), "
             "a CTranslate2/faster-whisper directory (model.bin + tokenizer.json or vocabulary.txt), "
             "or a whisper.cpp ggml .bin file")


def open_source(src: str | Path) -> Checkpoint:
    """Open a model directory or file for conversion. Raises a models Error with one clear line otherwise."""
    path = Path(src).expanduser()
    if not path.exists():
        raise SourceNotFoundError(f"{path}: no such file or directory. Give {SUPPORTED}")
    if path.is_file():
        head = _magic(path)
        if head[:4] == MAGIC_BYTES:
            from sttkb.models.ggml_source import read_ggml_checkpoint
            return read_ggml_checkpoint(path)
        if head[:4] == GGUF_MAGIC:
            raise UnsupportedSourceError(f"{path}: this is a GGUF file; whisper.cpp loads ggml .bin models, not "
                                         f"GGUF. Import the original model directory instead")
        if _is_pickle(path, head):
            raise UnsupportedSourceError(PICKLE_MESSAGE.format(path=path))
        if path.name == "model.bin" or path.suffix == ".safetensors" or path.name.endswith(".index.json"):
            return open_source(path.parent)     # a file inside a model directory: open the directory
        if path.stat().st_size == 0:
            raise UnsupportedSourceError(f"{path}: the file is empty")
        raise UnsupportedSourceError(f"{_describe_unknown(path, head)}. Give {SUPPORTED}")
    if not path.is_dir():
        raise UnsupportedSourceError(f"{path}: neither a file nor a directory")
    if (path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file():
        from sttkb.models.transformers import read_transformers
        return read_transformers(path)
    if (path / "model.bin").is_file():
        head = _magic(path / "model.bin")
        if _is_pickle(path / "model.bin", head):
            raise UnsupportedSourceError(PICKLE_MESSAGE.format(path=path / "model.bin"))
        if head[:4] == MAGIC_BYTES:
            from sttkb.models.ggml_source import read_ggml_checkpoint
            return read_ggml_checkpoint(path / "model.bin")
        from sttkb.models.ct2 import read_ct2
        return read_ct2(path)
    pickled = [n for n in PICKLED_NAMES if (path / n).is_file()] + sorted(p.name for p in path.glob("*.pt"))
    if pickled:
        raise UnsupportedSourceError(PICKLE_MESSAGE.format(path=path / pickled[0]))
    ggml = sorted(path.glob("ggml*.bin"))
    if len(ggml) == 1:
        return open_source(ggml[0])
    what = "it is empty" if not any(path.iterdir()) else "it holds no model.safetensors or model.bin"
    raise UnsupportedSourceError(f"{path}: {what}. Give {SUPPORTED}")

"""``sttkb model import``: open a source, convert to ggml in a temp file in the store, validate with
whisper.cpp, then rename into place with a manifest. Any failure or Ctrl-C leaves the store unchanged."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from sttkb import __version__
from sttkb.models.convert import convert
from sttkb.models.errors import ModelExistsError
from sttkb.models.quant import Quant
from sttkb.models.sources import open_source
from sttkb.models.store import ModelStore, check_name, sha256_file
from sttkb.models.validate import validate_model

log = logging.getLogger(__name__)


def default_name(src: Path, quant: Quant) -> str:
    """A store name from the source: ``ggml-base.en.bin`` + q8_0 → ``base.en-q8_0``; dir ``my-ft`` → ``my-ft-q8_0``."""
    src = src.expanduser().resolve()
    stem = src.parent.name if src.name in ("model.bin", "model.safetensors") else src.name
    stem = re.sub(r"\.(bin|safetensors)$", "", stem)
    stem = re.sub(r"^ggml-", "", stem)
    stem = re.sub(r"-(f16|f32|q\d_\d|q\d_k)$", "", stem)
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).strip(".-") or "model"
    return f"{stem}-{quant.label}"


def import_model(src: str | Path, store: ModelStore, quant: Quant = Quant.Q8_0, name: str | None = None,
                 check: tuple[Path, str] | None = None, overwrite: bool = False, validate: bool = True,
                 progress: bool = True) -> dict[str, Any]:
    """Import ``src`` into ``store`` as ``name`` and return the manifest written next to it."""
    src = Path(src).expanduser()
    name = check_name(name or default_name(src, quant))
    if not overwrite and (store.model_path(name).exists() or store.manifest_path(name).exists()):
        raise ModelExistsError(f"a model named {name!r} is already in {store.root}: choose another --name, "
                               f"or `sttkb model remove {name}` first")
    ckpt = open_source(src)
    try:
        hp = ckpt.hparams
        log.info("%s: %s Whisper model (%s, %d+%d layers, width %d, %d mel bins, %s); writing %s as %s",
                 src, ckpt.kind, ckpt.source_dtype, hp.n_audio_layer, hp.n_text_layer, hp.n_audio_state, hp.n_mels,
                 "English-only" if hp.english_only else "multilingual", name, quant.label)
        for warning in ckpt.warnings:
            log.warning("%s", warning)
        with store.temp_file() as tmp:
            with open(tmp, "wb") as out:
                types = convert(ckpt, out, quant, progress=progress)
            ckpt.close()
            if validate:
                log.info("checking the converted model with whisper.cpp on the reference clip")
            validation = validate_model(tmp, ckpt.hparams.english_only, check).as_dict() if validate else None
            manifest = {
                "name": name,
                "file": f"{name}.bin",
                "source": str(src.resolve()),
                "source_kind": ckpt.kind,
                "source_dtype": ckpt.source_dtype,
                "quant": quant.label,
                "sha256": sha256_file(tmp),
                "size_bytes": tmp.stat().st_size,
                "n_vocab": hp.n_vocab,
                "english_only": hp.english_only,
                "n_mels": hp.n_mels,
                "hparams": {k: getattr(hp, k) for k in hp.__dataclass_fields__},
                "tensor_types": dict(sorted({t.name.lower(): sum(1 for v in types.values() if v == t)
                                             for t in set(types.values())}.items())),
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "validation": validation,
                "sttkb_version": __version__,
            }
            store.install(name, tmp, manifest, overwrite=overwrite)
        return manifest
    finally:
        ckpt.close()

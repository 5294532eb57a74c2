"""``sttkb model import|list|use|remove|info``: the user's own Whisper models and the embedded default."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from sttkb.errors import SttkbError

log = logging.getLogger(__name__)

QUANTS = ("f16", "q8_0", "q5_1", "q5_0", "q4_0")


def _store(args):
    from sttkb.models.store import ModelStore
    if getattr(args, "store", None):
        return ModelStore(args.store)
    from sttkb.config import load_config
    return ModelStore(load_config(args.config).models.store or None)


def _check_text(text: str) -> str:
    """``--check AUDIO TEXT``: TEXT is the words themselves, or a path to a UTF-8 file holding them."""
    path = Path(text)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise SttkbError(f"{path}: cannot read the reference text: {e}") from e
    return text


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def cmd_import(args) -> int:
    from sttkb.models.importer import import_model
    from sttkb.models.quant import Quant
    store = _store(args)
    check = None
    if args.check:
        audio = Path(args.check[0])
        if not audio.is_file():
            raise SttkbError(f"{audio}: no such audio file for --check")
        check = (audio, _check_text(args.check[1]))
    manifest = import_model(args.source, store, quant=Quant.parse(args.quant), name=args.name, check=check,
                            overwrite=args.force)
    v = manifest["validation"]
    print(f"imported {manifest['name']} ({manifest['quant']}, {_size(manifest['size_bytes'])}, "
          f"{'English-only' if manifest['english_only'] else 'multilingual'}, {manifest['n_mels']} mel bins) "
          f"into {store.root}")
    print(f"reference clip: \"{v['text']}\" (WER {v['reference_wer']:.1%})")
    if v.get("check"):
        c = v["check"]
        print(f"check {c['audio']}: WER {c['wer']:.1%} ({c['errors']} errors in {c['reference_words']} words)")
    if store.current() != manifest["name"]:
        print(f"use it with: sttkb model use {manifest['name']}")
    return 0


def cmd_list(args) -> int:
    store = _store(args)
    models = store.list()
    if not models:
        print(f"no models in {store.root} yet; the embedded default (tiny.en-q8_0) is imported on first use")
        return 0
    using_default = store.current() is None
    width = max(len(m.name) for m in models)
    for m in models:
        mark = "*" if m.in_use or (using_default and m.name == _default_name()) else " "
        lang = "English-only" if m.manifest.get("english_only") else "multilingual"
        print(f"{mark} {m.name:<{width}}  {m.manifest.get('quant', '?'):<5}  {_size(m.size_bytes):>9}  {lang}")
    print(f"(* = in use; store: {store.root})")
    return 0


def _default_name() -> str:
    from sttkb.models.default import DEFAULT_NAME
    return DEFAULT_NAME


def cmd_use(args) -> int:
    store = _store(args)
    store.use(args.name)
    print(f"now using {args.name} ({store.model_path(args.name)})")
    from sttkb.cli.daemon import notify_daemon_model
    print(notify_daemon_model(args.name, config_path=args.config))
    return 0


def cmd_remove(args) -> int:
    store = _store(args)
    store.remove(args.name, force=args.force)
    print(f"removed {args.name}")
    return 0


def cmd_info(args) -> int:
    store = _store(args)
    manifest = store.manifest(args.name)
    manifest["path"] = str(store.model_path(args.name))
    manifest["in_use"] = store.current() == args.name
    print(json.dumps(manifest, indent=2, sort_keys=True))
    return 0


def register(sub) -> None:
    """Add ``sttkb model ...`` to the `sttkb` subparsers."""
    model = sub.add_parser("model", help="import, list and select Whisper models",
                           description="Whisper models for whisper.cpp: import your own (transformers safetensors, "
                                       "CTranslate2/faster-whisper f16/f32, or ggml .bin), list, select, remove.")
    msub = model.add_subparsers(dest="model_command", metavar="ACTION")
    msub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="DIR", help="model store directory (default: [models] store in the "
                        "config, $STTKB_MODEL_STORE, /var/lib/sttkb/models as root, else ~/.local/share/sttkb/models)")

    p = msub.add_parser("import", parents=[common], help="convert a model into the store (whisper.cpp ggml)")
    p.add_argument("source", metavar="SRC", help="transformers checkpoint dir, CTranslate2 dir, or ggml .bin")
    p.add_argument("--quant", choices=QUANTS, default="q8_0",
                   help="weight type (default q8_0: same accuracy as f16 at 56%% of the size, fastest on x86)")
    p.add_argument("--name", help="name in the store (default: from SRC, e.g. my-model-q8_0)")
    p.add_argument("--check", nargs=2, metavar=("AUDIO", "TEXT"),
                   help="also transcribe AUDIO and report word error rate against TEXT (words, or a text file)")
    p.add_argument("--force", action="store_true", help="replace a model of the same name")
    p.set_defaults(func=cmd_import)

    p = msub.add_parser("list", parents=[common], help="list the models in the store")
    p.set_defaults(func=cmd_list)
    p = msub.add_parser("use", parents=[common], help="select the model the daemon and transcribe use")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_use)
    p = msub.add_parser("remove", parents=[common], help="delete a model from the store")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--force", action="store_true", help="also remove the model in use (the default is used after)")
    p.set_defaults(func=cmd_remove)
    p = msub.add_parser("info", parents=[common], help="show a model's manifest")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=cmd_info)

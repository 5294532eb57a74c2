"""Whisper vocabulary: byte-level BPE strings (tokenizer.json / vocab.json) → the raw bytes ggml files carry."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from sttkb.models.errors import CorruptModelError, UnsupportedSourceError

EOT = "<|endoftext|>"


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's table from the printable stand-in characters back to the byte each one encodes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def token_bytes(token: str) -> bytes:
    """One byte-level token string → its raw bytes."""
    table = byte_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError as e:
        raise CorruptModelError(f"token {token!r} is not a byte-level BPE string: is this a Whisper tokenizer?") from e


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptModelError(f"{path}: cannot read it as JSON ({e}); copy the file again from the model") from e


def _ids_to_tokens(directory: Path) -> dict[int, str]:
    """All tokens the directory's tokenizer files define, by id."""
    tokens: dict[int, str] = {}
    tok_json = directory / "tokenizer.json"
    vocab_json = directory / "vocab.json"
    vocab_txt = directory / "vocabulary.txt"
    if tok_json.is_file():
        data = _read_json(tok_json)
        try:
            vocab = data["model"]["vocab"]
            tokens.update({int(i): t for t, i in vocab.items()})
            tokens.update({int(a["id"]): a["content"] for a in data.get("added_tokens", [])})
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise CorruptModelError(f"{tok_json}: not a BPE tokenizer.json (no model.vocab)") from e
    elif vocab_json.is_file():
        data = _read_json(vocab_json)
        if not isinstance(data, dict):
            raise CorruptModelError(f"{vocab_json}: expected a JSON object of token → id")
        tokens.update({int(i): t for t, i in data.items()})
        added = directory / "added_tokens.json"
        if added.is_file():
            extra = _read_json(added)
            if isinstance(extra, dict):
                tokens.update({int(i): t for t, i in extra.items()})
    elif vocab_txt.is_file():
        lines = vocab_txt.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        tokens.update(dict(enumerate(lines)))
    else:
        raise UnsupportedSourceError(
            f"{directory}: no tokenizer.json, vocab.json or vocabulary.txt. Copy the tokenizer files that came with "
            f"the model into this directory (processor.save_pretrained(dir) writes them)")
    return tokens


def load_vocab(directory: Path) -> list[bytes]:
    """Raw bytes of tokens 0 … eot-1 (the part a ggml file stores; whisper.cpp adds the special tokens)."""
    tokens = _ids_to_tokens(directory)
    eot = next((i for i, t in tokens.items() if t == EOT), None)
    if eot is None:
        raise CorruptModelError(f"{directory}: the tokenizer has no {EOT} token: not a Whisper tokenizer")
    missing = [i for i in range(eot) if i not in tokens]
    if missing:
        raise CorruptModelError(f"{directory}: the tokenizer lacks {len(missing)} token ids below {eot} "
                                f"(first {missing[0]}): copy the complete tokenizer files")
    return [token_bytes(tokens[i]) for i in range(eot)]

"""What ``--model`` means, one rule for every command (sttkb.speech.choose_model), and the real model it loads."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sttkb.config import Config
from sttkb.errors import SttkbError
from sttkb.models.store import ModelStore
from sttkb.speech import choose_model, load_transcriber, looks_like_path

STTKB = Path(sys.executable).with_name("sttkb")
REPO = Path(__file__).resolve().parents[2]


def config_with_store(store: Path, name: str = "") -> Config:
    c = Config()
    return dataclasses.replace(c, models=dataclasses.replace(c.models, store=str(store), name=name))


@pytest.fixture
def store(tmp_path, default_model) -> Path:
    """A store holding one model, 'mine' (the embedded default's file under another name)."""
    root = tmp_path / "models"
    shutil.copytree(default_model.parent, root, ignore=shutil.ignore_patterns(".*"))
    default_name = default_model.stem
    (root / f"{default_name}.bin").rename(root / "mine.bin")
    (root / f"{default_name}.json").rename(root / "mine.json")
    (root / "current").unlink(missing_ok=True)
    return root


@pytest.mark.parametrize("text, is_path", [("mine", False), ("tiny.en-q5_1", False), ("./mine", True),
                                           ("~/m.bin", True), ("m.bin", True), ("/abs/model", True)])
def test_what_looks_like_a_path(text, is_path):
    assert looks_like_path(text) is is_path


def test_a_path_is_the_file_itself(store):
    choice = choose_model(config_with_store(store), str(store / "mine.bin"))
    assert choice.path == store / "mine.bin" and choice.name == "mine"


def test_a_missing_file_says_what_to_give(store, tmp_path):
    with pytest.raises(SttkbError, match="no such model file .*give a ggml .bin, or a name from `sttkb model list`"):
        choose_model(config_with_store(store), str(tmp_path / "nothing.bin"))


def test_a_name_comes_from_the_store(store):
    assert choose_model(config_with_store(store), "mine").path == store / "mine.bin"
    assert choose_model(config_with_store(store, name="mine")).name == "mine"


def test_an_unknown_name_lists_the_store(store):
    with pytest.raises(SttkbError, match=r"no model named 'nope'.*models: mine"):
        choose_model(config_with_store(store), "nope")


def test_nothing_chosen_is_the_embedded_default(model_store_dir, default_model):
    choice = choose_model(config_with_store(model_store_dir))
    assert choice.path == default_model


@pytest.mark.slow
def test_the_chosen_model_transcribes(store):
    """The loaded transcriber is the real whisper.cpp with the chosen weights (the JFK recording)."""
    from sttkb.audio.sources import FileSource
    t = load_transcriber(config_with_store(store), choose_model(config_with_store(store), "mine"), warm_up=False)
    try:
        text = "".join(p.text for p in t.batch(FileSource(REPO / "tests/data/jfk.wav"))).lower()
    finally:
        t.close()
    words = re.sub(r"[^\w\s]", "", text).split()
    assert "ask not what your country can do for you" in " ".join(words)


def test_every_command_reads_model_the_same_way(tmp_path):
    """`transcribe`, `dictate` and `run` give the same answer to the same bad --model."""
    missing = tmp_path / "gone.bin"
    wav = REPO / "tests/data/jfk.wav"
    commands = (["transcribe", str(wav)], ["dictate", "--file", str(wav)], ["run", "--simulate", "--audio", str(wav)])
    errors = set()
    for argv in commands:
        r = subprocess.run([str(STTKB), *argv, "--model", str(missing)], capture_output=True, text=True, timeout=120,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        errors.add(r.stderr.strip())
    assert errors == {f"sttkb: error: {missing}: no such model file (give a ggml .bin, or a name from "
                      f"`sttkb model list`)"}

"""The model store: where it is, list/use/remove, atomic imports (an exception or Ctrl-C leaves nothing)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sttkb.models.ggml as ggml_module
import sttkb.models.store as store_module
from sttkb.cli import main
from sttkb.models.convert import convert
from sttkb.models.default import DEFAULT_NAME
from sttkb.models.errors import DefaultModelNotInstalledError, ModelInUseError, ModelNotFoundError
from sttkb.models.importer import default_name, import_model
from sttkb.models.quant import Quant
from sttkb.models.sources import open_source
from sttkb.models.store import ModelStore, default_store_dir
from tests.models.builders import dir_state, write_synthetic_hf

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_src(tmp_path_factory) -> Path:
    """A small synthetic f16 ggml model: store operations don't need real weights (import without validation)."""
    d = tmp_path_factory.mktemp("small")
    write_synthetic_hf(d / "hf", n_mels=80, n_vocab=51864, dtype="F16")
    ckpt = open_source(d / "hf")
    with open(d / "ggml-small.bin", "wb") as f:
        convert(ckpt, f, Quant.F16, progress=False)
    ckpt.close()
    return d / "ggml-small.bin"


def test_store_location_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("STTKB_MODEL_STORE", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert default_store_dir() == tmp_path / "xdg" / "sttkb" / "models"
    # the service runs as user sttkb: systemd's StateDirectory=sttkb, where the SD image put the default model
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/sttkb")
    assert default_store_dir() == Path("/var/lib/sttkb/models")
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_store_dir() == Path("/var/lib/sttkb/models")
    monkeypatch.setenv("STTKB_MODEL_STORE", str(tmp_path / "env"))
    assert default_store_dir() == tmp_path / "env"
    assert default_store_dir(str(tmp_path / "configured")) == tmp_path / "configured"


def test_default_names():
    assert default_name(Path("/x/ggml-base.en.bin"), Quant.Q5_1) == "base.en-q5_1"
    assert default_name(Path("/x/ggml-small-f16.bin"), Quant.Q8_0) == "small-q8_0"
    assert default_name(Path("/ft/whisper-tiny-nl/"), Quant.F16) == "whisper-tiny-nl-f16"
    assert default_name(Path("/ft/my model/model.bin"), Quant.Q4_0) == "my-model-q4_0"


def test_list_use_remove(tmp_path, small_src, capsys):
    store = ModelStore(tmp_path / "s")
    for quant in (Quant.F16, Quant.Q8_0):
        m = import_model(small_src, store, quant=quant, validate=False, progress=False)
        assert m["name"] == f"small-{quant.label}"
    assert store.names() == ["small-f16", "small-q8_0"]
    assert store.current() is None
    store.use("small-q8_0")
    assert store.current() == "small-q8_0"
    assert store.resolve() == tmp_path / "s" / "small-q8_0.bin"
    assert store.resolve("small-f16") == tmp_path / "s" / "small-f16.bin"

    assert main(["model", "list", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("  small-f16") and "f16" in out[0] and "English-only" in out[0]
    assert out[1].startswith("* small-q8_0") and "q8_0" in out[1]
    sizes = [float(line.split()[-3]) for line in out[:2]]
    assert sizes[1] < sizes[0]

    with pytest.raises(ModelInUseError):
        store.remove("small-q8_0")
    store.remove("small-f16")
    assert not (tmp_path / "s" / "small-f16.bin").exists() and store.names() == ["small-q8_0"]
    assert main(["model", "remove", "small-q8_0", "--store", str(store.root)]) == 1
    assert "in use" in capsys.readouterr().err
    assert main(["model", "remove", "small-q8_0", "--force", "--store", str(store.root)]) == 0
    assert store.names() == [] and store.current() is None
    assert {p.name for p in store.root.iterdir()} <= {".lock"}

    with pytest.raises(ModelNotFoundError, match="no model named 'nope'"):
        store.use("nope")


def test_manifest_of_an_unvalidated_import(tmp_path, small_src, capsys):
    store = ModelStore(tmp_path / "s")
    import_model(small_src, store, quant=Quant.Q5_0, name="mine", validate=False, progress=False)
    assert main(["model", "info", "mine", "--store", str(store.root)]) == 0
    import json
    info = json.loads(capsys.readouterr().out)
    from sttkb.models.store import sha256_file
    assert info["sha256"] == sha256_file(tmp_path / "s" / "mine.bin")
    assert info["quant"] == "q5_0" and info["n_mels"] == 80 and info["n_vocab"] == 51864
    assert info["english_only"] is True and info["source_kind"] == "ggml" and info["source_dtype"] == "f16"
    assert info["source"] == str(small_src.resolve()) and info["validation"] is None
    assert info["created"].endswith("+00:00") and info["in_use"] is False


def test_resolve_without_a_selection_gives_the_embedded_default(tmp_path, default_model):
    root = tmp_path / "s"
    root.mkdir()
    for suffix in (".bin", ".json"):
        os.link(default_model.with_suffix(suffix), root / f"{DEFAULT_NAME}{suffix}")
    assert ModelStore(root).resolve() == root / f"{DEFAULT_NAME}.bin"


def test_the_store_never_installs_the_default_itself(tmp_path, small_src, monkeypatch, capsys, caplog):
    """Looking up converts nothing; ensure_default_model is the explicit step, and says what it does through the
    caller's callback (else the log), never print()."""
    import sttkb.models.default as default
    imports = []

    def small_import(_src, store, **kw):          # the real import of tiny.en is tested in test_import.py
        imports.append(kw)
        return import_model(small_src, store, quant=Quant.F16, name=kw["name"], validate=False, progress=False)
    monkeypatch.setattr(default, "import_model", small_import)
    store = ModelStore(tmp_path / "s")
    with pytest.raises(DefaultModelNotInstalledError, match="not installed"):
        store.resolve()
    assert imports == [] and not store.root.exists()

    said: list[str] = []
    path = default.ensure_default_model(store, on_progress=said.append)
    assert path == store.resolve() == store.root / f"{DEFAULT_NAME}.bin"
    assert [kw["name"] for kw in imports] == [DEFAULT_NAME] and imports[0]["quant"] == default.DEFAULT_QUANT
    assert "first use" in said[0] and str(store.root) in said[0]
    assert default.ensure_default_model(store, on_progress=said.append) == path and len(imports) == 1
    assert capsys.readouterr().err == ""

    with caplog.at_level(logging.INFO, logger="sttkb.models.default"):
        default.ensure_default_model(tmp_path / "t")
    assert "first use" in caplog.text


def _fail_after(n: int, exc: type[BaseException]):
    real = ggml_module.write_tensor
    calls = []

    def write_tensor(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise exc()
        return real(*args, **kwargs)
    return write_tensor


@pytest.mark.parametrize("exc", [KeyboardInterrupt, MemoryError])
def test_interrupted_conversion_leaves_the_store_unchanged(tmp_path, small_src, monkeypatch, exc):
    store = ModelStore(tmp_path / "s")
    import_model(small_src, store, quant=Quant.F16, name="keep", validate=False, progress=False)
    store.use("keep")
    before = dir_state(store.root)
    monkeypatch.setattr(ggml_module, "write_tensor", _fail_after(20, exc))
    with pytest.raises(exc):
        import_model(small_src, store, quant=Quant.Q8_0, name="new", validate=False, progress=False)
    assert dir_state(store.root) == before          # no new model, no manifest, no temp file
    # replacing an existing model (--force) that fails keeps the old one intact
    monkeypatch.setattr(ggml_module, "write_tensor", _fail_after(20, exc))
    with pytest.raises(exc):
        import_model(small_src, store, quant=Quant.Q8_0, name="keep", overwrite=True, validate=False, progress=False)
    assert dir_state(store.root) == before


def test_failed_validation_leaves_the_store_unchanged(tmp_path, small_src, monkeypatch):
    import sttkb.models.importer as importer
    from sttkb.models.errors import ValidationFailedError
    store = ModelStore(tmp_path / "s")
    store.ensure_dir()
    before = dir_state(store.root)

    def refuse(*_a, **_k):
        raise ValidationFailedError("loops")
    monkeypatch.setattr(importer, "validate_model", refuse)
    with pytest.raises(ValidationFailedError):
        import_model(small_src, store, quant=Quant.F16, progress=False)
    assert dir_state(store.root) == before


@pytest.mark.parametrize("stage", ["converting", "validating", "committing"])
def test_ctrl_c_during_a_real_import_leaves_nothing(tmp_path, ct2_dir, stage):
    """A real SIGINT to `sttkb model import` of tiny.en at each stage (the child stops there until the signal, so
    the import has provably not committed): exit 130, "interrupted", the store as before."""
    root = tmp_path / "s"
    root.mkdir()
    (root / "current").write_text("x\n")
    before = dir_state(root)
    proc = subprocess.Popen([sys.executable, "-m", "tests.models.interrupt_child", stage, "--", "model", "import",
                             str(ct2_dir), "--store", str(root), "--quant", "q5_0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()            # the child is at the stage, waiting
        assert line == f"stage {stage}\n", (line, proc.communicate(timeout=60))
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "sttkb: interrupted" in err and "Traceback" not in err, err
    assert {k: v for k, v in dir_state(root).items() if k != ".lock"} == before


def _signal_on_entering(n: int, real):
    """signals_deferred that receives SIGINT right after its n-th entry, while signals are held off."""
    entries = []

    @contextlib.contextmanager
    def deferred():
        with real() as caught:
            entries.append(1)
            if len(entries) == n:
                os.kill(os.getpid(), signal.SIGINT)
                deadline = time.monotonic() + 5
                while not caught and time.monotonic() < deadline:
                    pass                        # until the held-off handler has run: delivery is now pending
            yield caught
    return deferred


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as in a terminal. A test runner started in the background of a
    non-interactive shell has SIGINT ignored, and then a Ctrl-C test would prove nothing (and fail)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize(("n", "what"), [(1, "the model's temp file"), (2, "the manifest's temp file"),
                                         (3, "the renames, after the last check")])
@pytest.mark.parametrize("overwrite", [False, True])
def test_ctrl_c_held_off_at_any_commit_step_still_leaves_nothing(tmp_path, small_src, monkeypatch, n, what,
                                                                  overwrite, ctrl_c_raises):
    """Ctrl-C that comes in while signals are held off — creating a temp file, or between the last check and the
    first rename — is delivered there and aborts: no rename, no temp file left, the old model intact."""
    store = ModelStore(tmp_path / "s")
    import_model(small_src, store, quant=Quant.F16, name="keep", validate=False, progress=False)
    store.use("keep")
    before = dir_state(store.root)
    monkeypatch.setattr(store_module, "signals_deferred", _signal_on_entering(n, store_module.signals_deferred))
    with pytest.raises(KeyboardInterrupt):
        import_model(small_src, store, quant=Quant.Q8_0, name="keep" if overwrite else "new", overwrite=overwrite,
                     validate=False, progress=False)
    assert dir_state(store.root) == before, what


def test_a_signal_whose_handler_returns_does_not_stop_the_commit(tmp_path, small_src, monkeypatch):
    """A held-off SIGINT whose handler only notes it (not Ctrl-C's KeyboardInterrupt) is delivered, then the
    renames go ahead: nothing is lost either way."""
    store = ModelStore(tmp_path / "s")
    noted = []
    previous = signal.signal(signal.SIGINT, lambda n, _f: noted.append(n))
    try:
        monkeypatch.setattr(store_module, "signals_deferred", _signal_on_entering(3, store_module.signals_deferred))
        import_model(small_src, store, quant=Quant.Q8_0, name="new", validate=False, progress=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert noted == [signal.SIGINT] and store.names() == ["new"]
    assert not [p for p in store.root.iterdir() if p.name.startswith(".importing-")]

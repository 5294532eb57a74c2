"""The model store: ``NAME.bin`` (ggml) + ``NAME.json`` (manifest) per model, and ``current`` naming the one in use.

Where it is (first that applies): an explicit directory (``--store`` / ``[models] store`` in the config), the
environment variable ``STTKB_MODEL_STORE``, ``$STATE_DIRECTORY/models`` in the service (systemd sets it from
``StateDirectory=sttkb``: ``/var/lib/sttkb/models``, where the SD image puts the default model),
``/var/lib/sttkb/models`` when running as root (an admin's ``sttkb model ...``), else
``$XDG_DATA_HOME/sttkb/models`` (default ``~/.local/share/sttkb/models``).

Every change is atomic: files are written under a temporary name in the store and renamed into place, so a
failed or interrupted import leaves the store as it was. Ctrl-C (or SIGTERM) that comes in before the renames
aborts with nothing renamed; one that comes in during them is held until they are done.

The store only stores (install, look up, list, select, remove). It never converts anything: importing is
:mod:`sttkb.models.importer`, and installing the embedded default is :mod:`sttkb.models.default`, a step the caller
takes explicitly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sttkb.models.errors import (
    DefaultModelNotInstalledError,
    ModelExistsError,
    ModelInUseError,
    ModelNotFoundError,
    StoreError,
)

log = logging.getLogger(__name__)

ENV_STORE = "STTKB_MODEL_STORE"
SYSTEM_STORE = Path("/var/lib/sttkb/models")
CURRENT_FILE = "current"
TEMP_PREFIX = ".importing-"
DEFAULT_NAME = "tiny.en-q8_0"
"""The name the embedded default model is installed under (by :func:`sttkb.models.default.ensure_default_model`)."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,79}$")


def default_store_dir(configured: str | os.PathLike | None = None) -> Path:
    """The store directory by the rule in this module's docstring (not created here)."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get(ENV_STORE)
    if env:
        return Path(env).expanduser()
    state_dir = os.environ.get("STATE_DIRECTORY")      # the service (user sttkb); may list several, ':'-separated
    if state_dir:
        return Path(state_dir.split(":")[0]) / "models"
    if os.geteuid() == 0:
        return SYSTEM_STORE
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "sttkb" / "models"


def check_name(name: str) -> str:
    """Model names: letters, digits, ``. _ + -``; up to 80 characters, not starting with a dot or dash."""
    if not _NAME_RE.match(name) or name == CURRENT_FILE or name.endswith((".bin", ".json")):
        raise StoreError(f"bad model name {name!r}: use letters, digits and . _ + - (e.g. my-whisper-q8_0)")
    return name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Hold off Ctrl-C / SIGTERM for a few steps that must happen together (main thread only). Yields the list of
    signals caught so far, to check right before committing; they are delivered again on leaving."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {s: signal.signal(s, lambda n, _f: caught.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            os.kill(os.getpid(), caught[0])


@contextlib.contextmanager
def _temp_file_in(directory: Path, suffix: str) -> Iterator[Path]:
    """A new empty file ``.importing-*`` in ``directory``, removed on leaving unless it was renamed away. It is
    created with signals held off, so a Ctrl-C cannot leave it behind before its name is known."""
    tmp = None
    try:
        with signals_deferred():
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=suffix)
            os.close(fd)
        yield Path(tmp)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _replace_together(pairs: list[tuple[Path, Path]]) -> None:
    """``os.replace`` each (temp, final) pair with Ctrl-C / SIGTERM held off, so all or none happen. A signal that
    came in after the caller's last check is delivered before the first rename: Ctrl-C (KeyboardInterrupt) then
    leaves everything as it was. When its handler returns instead (a handler that only notes the signal), the
    renames go ahead."""
    done = False
    while not done:
        with signals_deferred() as caught:
            if not caught:
                for tmp, final in pairs:
                    os.replace(tmp, final)
                done = True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_atomic(path: Path, text: str) -> None:
    with _temp_file_in(path.parent, ".tmp") as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        _replace_together([(tmp, path)])


@dataclass(frozen=True)
class StoredModel:
    name: str
    path: Path
    manifest: dict[str, Any]
    size_bytes: int
    in_use: bool


class ModelStore:
    """A directory of imported models. Reading needs no lock; changes take an advisory lock on ``.lock``."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = default_store_dir(root)

    # -- paths ---------------------------------------------------------------------------------------------
    def model_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.bin"

    def manifest_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def ensure_dir(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the model store {self.root}: {e.strerror}. Pass --store DIR or set "
                             f"{ENV_STORE} to a directory you can write") from e
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"cannot write the model store {self.root}: run as its owner, or pass --store DIR")

    @contextlib.contextmanager
    def lock(self, name: str = ".lock") -> Iterator[None]:
        """Exclusive advisory lock on a file in the store (across processes)."""
        self.ensure_dir()
        with open(self.root / name, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- reading -------------------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return self.model_path(name).is_file() and self.manifest_path(name).is_file()

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.bin")
                      if not p.name.startswith(".") and (self.root / f"{p.stem}.json").is_file())

    def manifest(self, name: str) -> dict[str, Any]:
        self._require(name)
        try:
            return json.loads(self.manifest_path(name).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"cannot read the manifest of {name} ({e}); remove the model and import it again") from e

    def current(self) -> str | None:
        """The model selected with ``use``, or None (then the embedded default is used)."""
        try:
            name = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot read {self.root / CURRENT_FILE}: {e.strerror}") from e
        if not name:
            return None
        try:
            return name if self.has(name) else None
        except StoreError:
            return None

    def list(self) -> list[StoredModel]:
        current = self.current()
        out = []
        for name in self.names():
            path = self.model_path(name)
            try:
                manifest = json.loads(self.manifest_path(name).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                manifest = {}
            out.append(StoredModel(name, path, manifest, path.stat().st_size, name == current))
        return out

    def _require(self, name: str) -> None:
        if not self.has(name):
            have = ", ".join(self.names()) or "none yet"
            raise ModelNotFoundError(f"no model named {name!r} in {self.root} (models: {have}). "
                                     f"See `sttkb model list`, or import one with `sttkb model import`")

    def resolve(self, name: str | None = None) -> Path:
        """Path of model ``name``; None = the one selected with ``use``, else the embedded default. Only looks:
        raises :class:`DefaultModelNotInstalledError` when the default is needed but not installed (the caller
        installs it with :func:`sttkb.models.default.ensure_default_model`)."""
        if name:
            self._require(name)
            return self.model_path(name)
        current = self.current()
        if current:
            return self.model_path(current)
        if not self.has(DEFAULT_NAME):
            raise DefaultModelNotInstalledError(
                f"no model selected in {self.root} and the embedded default {DEFAULT_NAME} is not installed there "
                f"yet: `sttkb transcribe`, `dictate` and `run` install it on first use, or import a model with "
                f"`sttkb model import` and select it with `sttkb model use`")
        return self.model_path(DEFAULT_NAME)

    # -- changing ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def temp_file(self) -> Iterator[Path]:
        """A new empty file in the store; removed again unless it was installed (renamed away)."""
        self.ensure_dir()
        with _temp_file_in(self.root, ".bin.tmp") as tmp:
            yield tmp

    def install(self, name: str, tmp_model: Path, manifest: dict[str, Any], overwrite: bool = False) -> Path:
        """Move ``tmp_model`` (a file in the store) into place as ``name`` with its manifest, atomically."""
        path, mpath = self.model_path(name), self.manifest_path(name)
        if tmp_model.parent.resolve() != self.root.resolve():
            raise ValueError("install() needs a temp file made by temp_file()")
        with self.lock():
            if not overwrite and (path.exists() or mpath.exists()):
                raise ModelExistsError(f"a model named {name!r} is already in {self.root}: choose another --name, "
                                       f"or `sttkb model remove {name}` first")
            with _temp_file_in(self.root, ".json.tmp") as tmp_manifest:
                with open(tmp_manifest, "w", encoding="utf-8") as f:
                    json.dump(manifest, f, indent=2, sort_keys=True)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                with open(tmp_model, "rb") as f:
                    os.fsync(f.fileno())
                mode = 0o666 & ~_umask()
                os.chmod(tmp_model, mode)         # mkstemp makes 0600; models are readable like any data file
                os.chmod(tmp_manifest, mode)
                _replace_together([(tmp_model, path), (tmp_manifest, mpath)])
        log.info("installed model %s at %s", name, path)
        return path

    def use(self, name: str) -> None:
        """Select ``name`` as the model in use."""
        self._require(name)
        with self.lock():
            _write_atomic(self.root / CURRENT_FILE, name + "\n")

    def remove(self, name: str, force: bool = False) -> None:
        """Delete a model. The one in use is only removed with ``force`` (the default model is used after)."""
        self._require(name)
        with self.lock():
            current = self.current()
            if current == name and not force:
                raise ModelInUseError(f"{name} is the model in use: `sttkb model use OTHER` first, or add --force "
                                      f"(the embedded default is used after)")
            with signals_deferred():
                self.manifest_path(name).unlink()
                self.model_path(name).unlink(missing_ok=True)
                if current == name:
                    (self.root / CURRENT_FILE).unlink(missing_ok=True)

"""The shape of the code, read from its own import statements (docs/ARCHITECTURE.md draws it).

- No import circle anywhere in ``sttkb`` or ``sttkb_image`` (imports inside functions count: a lazy import is still a
  dependency; only ``if TYPE_CHECKING:`` blocks are left out).
- The arrows go one way: the core (errors, config, the keyboard protocol) imports nothing else of sttkb; the speech
  side (audio, VAD, ASR, models, text) and the keyboard side (``sttkb.gadget``) import only the core and themselves;
  the daemon only the core; only the composition root (``sttkb.cli``) sees all of them.
- Nothing on the speech side imports a HID or Bluetooth library; nothing on the keyboard side an audio or ASR library.
- pyproject's package list is exactly the folders that hold Python code, so the wheel the image installs has them all.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Module-name prefixes of each layer; the longest matching prefix decides.
LAYERS = {
    "core": ("sttkb", "sttkb.errors", "sttkb.config", "sttkb.keyboard"),
    "speech": ("sttkb.audio", "sttkb.asr", "sttkb.models", "sttkb.text", "sttkb.chain", "sttkb.speech",
               "sttkb.passkey_listener"),
    "keyboard": ("sttkb.gadget",),
    "daemon": ("sttkb.daemon",),
    "root": ("sttkb.cli", "sttkb.__main__"),
    "image": ("sttkb_image",),
}
#: Which layers each layer may import.
ALLOWED = {
    "core": {"core"},
    "speech": {"core", "speech"},
    "keyboard": {"core", "keyboard"},
    "daemon": {"core", "daemon"},
    "root": {"core", "speech", "keyboard", "daemon", "root"},
    "image": {"image"},
}
#: Third-party libraries a layer must never import (top-level names).
FORBIDDEN_LIBRARIES = {
    "speech": {"xkbcommon", "dbus_fast", "bleak", "dbus"},
    "keyboard": {"pyaudio", "pywhispercpp", "webrtcvad", "soundfile", "soxr", "numpy"},
    "core": {"pyaudio", "pywhispercpp", "webrtcvad", "xkbcommon", "dbus_fast", "bleak", "numpy"},
}


# -- reading the code ------------------------------------------------------------------------------------------
def package_dirs() -> dict[str, Path]:
    """Package name → folder, from pyproject.toml (sttkb) and image-build/pyproject.toml (sttkb_image)."""
    out: dict[str, Path] = {}
    for pyproject in (REPO / "pyproject.toml", REPO / "image-build" / "pyproject.toml"):
        table = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
        mapping = table.get("package-dir", {})
        for pkg in table["packages"]:
            parent, _, leaf = pkg.rpartition(".")
            if pkg in mapping:
                out[pkg] = pyproject.parent / mapping[pkg]
            elif parent:
                out[pkg] = out[parent] / leaf
            else:
                out[pkg] = pyproject.parent / pkg
    return out


def modules() -> dict[str, Path]:
    """Every module of the shipped packages: dotted name → file."""
    out = {}
    for pkg, folder in package_dirs().items():
        for file in folder.glob("*.py"):
            out[pkg if file.stem == "__init__" else f"{pkg}.{file.stem}"] = file
    return out


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(name: str, file: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """(modules of ours that ``name`` imports, top-level names of the outside libraries it imports)."""
    is_package = file.name == "__init__.py"
    tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    ours: set[str] = set()
    outside: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            targets = [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            targets = [(base, [alias.name for alias in node.names])]
        else:
            targets = []
        for base, names in targets:
            top = base.split(".")[0]
            if top not in ("sttkb", "sttkb_image"):
                outside.add(top)
                continue
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in known]
            ours.update(subs)
            if len(subs) < len(names) or not names:
                while base and base not in known:
                    base = base.rpartition(".")[0]
                if base:
                    ours.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    ours.discard(name)
    return ours, outside


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    mods = modules()
    known = set(mods)
    graph, libraries = {}, {}
    for name, file in mods.items():
        graph[name], libraries[name] = imports_of(name, file, known)
    return graph, libraries


# -- the rules, as functions (checked on made-up graphs below, so they can fail) --------------------------------
def layer_of(module: str) -> str:
    best, layer = "", ""
    for candidate, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, layer = prefix, candidate
    if not layer:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in tests/test_shape.py and to the "
                             f"picture in docs/ARCHITECTURE.md")
    return layer


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def strong(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def wrong_way_arrows(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = layer_of(module), layer_of(target)
            if b not in ALLOWED[a]:
                out.append(f"{module} ({a}) imports {target} ({b})")
    return out


def forbidden_libraries(libraries: dict[str, set[str]]) -> list[str]:
    out = []
    for module, libs in sorted(libraries.items()):
        bad = libs & FORBIDDEN_LIBRARIES.get(layer_of(module), set())
        out.extend(f"{module} ({layer_of(module)}) imports {lib}" for lib in sorted(bad))
    return out


# -- the code as it is -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_packages_are_read(graph):
    edges, _ = graph
    assert len(edges) > 100
    assert "sttkb.chain" in edges["sttkb.cli.transcribe"] or "sttkb.speech" in edges["sttkb.cli.transcribe"]
    assert "sttkb.gadget.factory" in edges["sttkb.cli.daemon"]


def test_no_import_circles(graph):
    edges, _ = graph
    assert circles(edges) == []


def test_arrows_go_one_way(graph):
    edges, _ = graph
    assert wrong_way_arrows(edges) == []


def test_speech_knows_no_hid_and_keyboard_no_audio(graph):
    _, libraries = graph
    assert forbidden_libraries(libraries) == []


def test_every_code_folder_is_a_listed_package():
    listed = {folder.resolve() for folder in package_dirs().values()}
    for root in (REPO / "device", REPO / "gadget", REPO / "image-build" / "sttkb_image"):
        for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            if "__pycache__" in folder.parts or not any(folder.glob("*.py")):
                continue
            assert (folder / "__init__.py").is_file(), f"{folder} holds Python code but has no __init__.py"
            assert folder.resolve() in listed, f"{folder} is not in pyproject's packages: the wheel would lack it"


def test_every_data_file_ships_in_the_wheel():
    """Data the code reads at run time (the example config, the reference clip, the benchmark's speech) must match
    a package-data pattern, or the box gets a package without it."""
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = table.get("package-data", {})
    for pkg, folder in package_dirs().items():
        if pkg.startswith("sttkb_image"):
            continue
        top = pkg.split(".")[0] if pkg.split(".")[0] in patterns else pkg
        root = package_dirs()[top]
        for file in folder.iterdir():
            if file.is_dir() or file.suffix in (".py", ".pyc"):
                continue
            rel = file.relative_to(root).as_posix()
            assert any(Path(rel).match(pattern) for pattern in patterns.get(top, ())), \
                f"{file} is not in [tool.setuptools.package-data] {top}: the wheel would lack it"
        for sub in folder.iterdir():
            if sub.is_dir() and sub.name != "__pycache__" and not (sub / "__init__.py").exists():
                for file in sub.rglob("*"):
                    if file.is_file() and file.suffix not in (".pyc",):
                        rel = file.relative_to(root).as_posix()
                        assert any(Path(rel).match(p) for p in patterns.get(top, ())), \
                            f"{file} is not in [tool.setuptools.package-data] {top}: the wheel would lack it"


def test_no_generic_top_level_names_are_installed():
    tops = {pkg.split(".")[0] for pkg in package_dirs()}
    assert tops == {"sttkb", "sttkb_image"}


# -- the rules can fail ----------------------------------------------------------------------------------------
def test_a_circle_is_found():
    made_up = {"sttkb.models.store": {"sttkb.models.default"}, "sttkb.models.default": {"sttkb.models.importer"},
               "sttkb.models.importer": {"sttkb.models.store"}, "sttkb.chain": {"sttkb.models.store"}}
    assert circles(made_up) == [["sttkb.models.default", "sttkb.models.importer", "sttkb.models.store"]]


def test_speech_importing_the_keyboard_is_a_wrong_way_arrow():
    made_up = {"sttkb.chain": {"sttkb.gadget.typist"}, "sttkb.gadget.errors": {"sttkb.errors"},
               "sttkb.cli.daemon": {"sttkb.gadget.factory", "sttkb.speech"}, "sttkb.daemon.service": {"sttkb.chain"},
               "sttkb.config.schema": {"sttkb.daemon.state"}}
    assert wrong_way_arrows(made_up) == [
        "sttkb.chain (speech) imports sttkb.gadget.typist (keyboard)",
        "sttkb.config.schema (core) imports sttkb.daemon.state (daemon)",
        "sttkb.daemon.service (daemon) imports sttkb.chain (speech)",
    ]


def test_an_audio_library_in_the_keyboard_is_found():
    assert forbidden_libraries({"sttkb.gadget.typist": {"numpy", "logging"}, "sttkb.audio.mic": {"pyaudio"}}) == [
        "sttkb.gadget.typist (keyboard) imports numpy"]


def test_relative_and_from_imports_resolve(tmp_path):
    file = tmp_path / "x.py"
    file.write_text("from . import defs\nfrom .hosts import Host\nimport sttkb.errors\nimport numpy as np\n"
                    "def f():\n    from sttkb.gadget import typist\n"
                    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sttkb.chain import Transcriber\n")
    known = {"sttkb.gadget.ble.defs", "sttkb.gadget.ble.hosts", "sttkb.errors", "sttkb.gadget.typist", "sttkb.gadget",
             "sttkb.chain"}
    ours, outside = imports_of("sttkb.gadget.ble.x", file, known)
    assert ours == {"sttkb.gadget.ble.defs", "sttkb.gadget.ble.hosts", "sttkb.errors", "sttkb.gadget.typist"}
    assert outside == {"numpy", "typing"}

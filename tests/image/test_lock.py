"""The lock (requirements.lock, requirements-test.lock): one set of exact versions for the dev/CI venv and the
image's wheelhouse, so the versions CI tests are the versions the image installs. Fast, no network."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.conftest import REPO

from sttkb_image import build as image_build
from sttkb_image import box_python, lock, wheelhouse
from sttkb_image.errors import Error
from sttkb_image.target import Target

PYPROJECT = REPO / "pyproject.toml"
RUNTIME = lock.read(REPO / lock.RUNTIME)
TEST = lock.read(REPO / lock.TEST)
SETUP_HINT = "run scripts/setup --test (it installs exactly the lock); after changing the ranges, scripts/lock"


def _within(requirements: list[str], pins: dict[str, str], where: str) -> None:
    for spec in requirements:
        req = Requirement(spec)
        name = lock.canonical(req.name)
        assert name in pins, f"{req.name} ({where}) is not pinned in the lock; regenerate it with scripts/lock"
        assert SpecifierSet(str(req.specifier)).contains(pins[name], prereleases=True), (
            f"the lock pins {name}=={pins[name]}, outside pyproject's {spec!r}; regenerate it with scripts/lock")


def test_every_runtime_dependency_is_pinned_within_pyprojects_range():
    _within(lock.project_requirements(PYPROJECT), RUNTIME, "[project].dependencies")


def test_every_test_tool_is_pinned_within_pyprojects_range():
    _within(lock.project_requirements(PYPROJECT, "test"), {**RUNTIME, **TEST}, "the test extras")


def test_pyproject_does_not_admit_a_pywhispercpp_that_dies_on_a_pi():
    """pywhispercpp 1.3.1's aarch64 wheel is killed by SIGILL on a Cortex-A53/A72 (ARMv8.4 stlur, FP16 vector
    arithmetic): no range may let a resolver pick it or anything before 1.5.1."""
    spec = next(Requirement(r).specifier for r in lock.project_requirements(PYPROJECT)
                if lock.canonical(Requirement(r).name) == "pywhispercpp")
    for bad in ("1.3.0", "1.3.1", "1.4.0", "1.4.1", "1.5.0"):
        assert not spec.contains(bad), f"pyproject admits pywhispercpp {bad}"
    assert spec.contains(RUNTIME["pywhispercpp"])


def test_the_runtime_lock_is_exactly_the_closure_of_pyproject_in_this_venv():
    """Nothing missing, nothing extra: the runtime dependencies, everything they require (markers for this
    Linux CPython) and the image's venv bootstrap wheels."""
    runtime, test = lock.generate(REPO)
    assert sorted(RUNTIME) == sorted(runtime), SETUP_HINT
    assert sorted(TEST) == sorted(test), SETUP_HINT
    assert not set(RUNTIME) & set(TEST)


@pytest.mark.parametrize("name", sorted({**RUNTIME, **TEST}))
def test_the_venv_has_the_locked_version(name):
    """The versions CI tests are the versions the image installs."""
    pinned = RUNTIME.get(name) or TEST[name]
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name}=={pinned} is locked but not installed in this venv; {SETUP_HINT}")
    assert installed == pinned, f"this venv has {name} {installed}, the lock {pinned}; {SETUP_HINT}"


def test_lock_files_are_what_scripts_lock_writes():
    """Headers and order as the generator writes them (a hand edit shows up as a difference)."""
    runtime, test = lock.generate(REPO)
    assert (REPO / lock.RUNTIME).read_text() == lock.render(lock.RUNTIME_HEADER, runtime)
    assert (REPO / lock.TEST).read_text() == lock.render(lock.TEST_HEADER, test)


def test_lock_pins_the_images_bootstrap_and_keeps_the_apt_and_on_device_rules():
    for name in wheelhouse.EXTRA_WHEELS:
        assert name in RUNTIME
    for name in [*box_python.APT_PROVIDED, *box_python.CROSS_BUILT]:
        assert name in RUNTIME, f"{name} is a runtime dependency; the dev venv installs it from the lock"


@pytest.mark.parametrize("line", ["numpy>=2", "numpy", "numpy==2.*; python_version>'3'", "numpy == 2.4.6 x"])
def test_a_lock_line_that_is_not_an_exact_pin_is_refused(line):
    with pytest.raises(ValueError, match="not an exact"):
        lock.parse(f"# header\n{line}\n")


def test_a_package_pinned_twice_is_refused():
    with pytest.raises(ValueError, match="pinned twice"):
        lock.parse("Foo_Bar==1\nfoo-bar==2\n")


# ------------------------------------------------------------------------------------- the image build's side

class _Stop(Exception):
    pass


class _FakeRoot:
    """Just enough of a Raspberry Pi OS root filesystem for the build to reach its wheelhouse step."""

    FILES = {"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n", "/etc/group": "root:x:0:\naudio:x:29:\n",
             "/etc/shadow": "root:*:19000:0:99999:7:::\n", "/etc/gshadow": "root:*::\naudio:*::\n"}

    def read(self, path: str) -> bytes | None:
        text = self.FILES.get(path)
        return None if text is None else text.encode()


def _wheelhouse_requirements(repo: Path, tmp_path: Path, monkeypatch) -> list[str]:
    """What the image build passes to download_wheelhouse for the checkout ``repo``."""
    seen = {}

    def fake_download(requirements, glibc, python, cache, pip_python):
        seen["requirements"] = requirements
        raise _Stop

    monkeypatch.setattr(wheelhouse, "download_wheelhouse", fake_download)
    opts = image_build.Options(base=tmp_path / "base.img", sha256="0" * 64, output=tmp_path / "out.img",
                               repo=repo, cache=tmp_path / "cache", epoch=0)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(_Stop):
        image_build._assemble(opts, _FakeRoot(), Target("bookworm", "bookworm", (2, 36), (3, 11), b""), work)
    return seen["requirements"]


def test_the_image_build_downloads_exactly_the_lock(tmp_path, monkeypatch):
    assert _wheelhouse_requirements(REPO, tmp_path, monkeypatch) == [f"{n}=={v}" for n, v in RUNTIME.items()]


def test_the_image_build_follows_the_lock_not_pyproject(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(PYPROJECT.read_text())
    (repo / lock.RUNTIME).write_text((REPO / lock.RUNTIME).read_text().replace(
        f"pywhispercpp=={RUNTIME['pywhispercpp']}", "pywhispercpp==9.9.9"))
    reqs = _wheelhouse_requirements(repo, tmp_path, monkeypatch)
    assert "pywhispercpp==9.9.9" in reqs


def test_the_image_build_without_a_lock_stops_with_what_to_do(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text(PYPROJECT.read_text())
    with pytest.raises(Error, match="requirements.lock is missing.*scripts/lock"):
        _wheelhouse_requirements(repo, tmp_path, monkeypatch)


# --------------------------------------------------------------------- download_wheelhouse, with pip faked

def _fake_pip(files_for):
    """A stand-in for wheelhouse._pip that writes empty files named like pip's downloads."""
    calls = []

    def fake(python, args, what):
        calls.append(args)
        dest = Path(args[args.index("-d") + 1])
        for name in files_for(args):
            (dest / name).write_bytes(b"")
    return fake, calls


def _filename(requirement: str, sdist: bool) -> str:
    name, version = requirement.split("==")
    return f"{name}-{version}.tar.gz" if sdist else f"{name.replace('-', '_')}-{version}-py3-none-any.whl"


def _files(extra: tuple[str, ...] = ()):
    def files_for(args):
        sdist = "--no-binary=:all:" in args
        reqs = [a for a in args if "==" in a]
        return [_filename(r, sdist) for r in reqs] + ([] if sdist else list(extra))
    return files_for


def test_download_wheelhouse_fetches_exactly_the_pins_and_caches_by_the_locks_content(tmp_path, monkeypatch):
    pins = lock.requirements(REPO / lock.RUNTIME)
    fake, calls = _fake_pip(_files())
    monkeypatch.setattr(wheelhouse, "_pip", fake)
    dest = wheelhouse.download_wheelhouse(pins, (2, 36), (3, 11), tmp_path)
    got = sorted(wheelhouse.dist_of(p.name) for p in dest.iterdir() if wheelhouse.dist_of(p.name))
    assert got == sorted((n, v) for n, v in RUNTIME.items() if n not in box_python.APT_PROVIDED)
    assert "pyaudio==0.2.14" not in calls[0]
    assert wheelhouse.download_wheelhouse(pins, (2, 36), (3, 11), tmp_path) == dest     # cached: no new call
    assert len(calls) == 2
    changed = [p.replace(f"numpy=={RUNTIME['numpy']}", "numpy==2.0.0") for p in pins]
    assert wheelhouse.download_wheelhouse(changed, (2, 36), (3, 11), tmp_path) != dest


def test_download_wheelhouse_refuses_a_dependency_the_lock_forgot(tmp_path, monkeypatch):
    fake, _ = _fake_pip(_files(extra=("surprise-1.0-py3-none-any.whl",)))
    monkeypatch.setattr(wheelhouse, "_pip", fake)
    with pytest.raises(Error, match="unlocked surprise==1.0.*scripts/lock"):
        wheelhouse.download_wheelhouse(lock.requirements(REPO / lock.RUNTIME), (2, 36), (3, 11), tmp_path)
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".partial")]


def test_download_wheelhouse_needs_the_bootstrap_wheels_pinned(tmp_path, monkeypatch):
    monkeypatch.setattr(wheelhouse, "_pip", _fake_pip(_files())[0])
    pins = [p for p in lock.requirements(REPO / lock.RUNTIME) if not p.startswith("pip==")]
    with pytest.raises(Error, match="pins no pip"):
        wheelhouse.download_wheelhouse(pins, (2, 36), (3, 11), tmp_path)

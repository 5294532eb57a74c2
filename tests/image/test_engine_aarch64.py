"""The speech engine the image ships, on an emulated Raspberry Pi CPU.

The aarch64 wheelhouse is taken OUT OF A BUILT IMAGE (debugfs rdump of /opt/sttkb/wheelhouse), installed for
aarch64 with this machine's pip, and the transcribe command runs on the real JFK recording with the image's own
model and config (one segment for the whole recording: see ``arm64_box``), under Debian's arm64 CPython (the
base image's Python version) in qemu-user with ``-cpu cortex-a53``: the Pi Zero 2 W's core, ARMv8.0. A wheel built for a newer CPU (pywhispercpp 1.3.1's aarch64
wheel uses ARMv8.4 ``stlur`` and FP16 vector arithmetic) dies there with SIGILL, as it does on a Pi, so a lock or
resolver change that would ship a box that cannot transcribe fails here.

The image's xkbcommon wheel (compiled by the image build for aarch64: sttkb_image.cross_wheel) runs here too,
against Debian's arm64 libxkbcommon and layouts, and must give the same keystrokes as this machine's.
What is not run: PyAudio (a Debian .deb on the box; a file source needs no microphone). The transcribe command is
run through a parser holding only its own command group (sttkb.cli.transcribe.register) - the same command
function ``sttkb transcribe`` dispatches to.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sttkb.models.wer import normalize, wer
from tests.image.aarch64 import PI_CPU, arm64_sysroot, install_wheels, python_command, require_qemu_user
from tests.speech import JFK_TEXT, JFK_WAV

from sttkb_image.errors import DownloadError
from sttkb_image.target import read_target

pytestmark = [pytest.mark.vm, pytest.mark.box, pytest.mark.slow]

MAX_WER = 0.15
KEY_WORDS = "ask not what your country can do for you"
# `sttkb transcribe FILE --model PATH`, with the command function the console entry dispatches to.
DRIVER = """\
import argparse, sys
from sttkb.cli import setup_logging, transcribe
parser = argparse.ArgumentParser(prog="sttkb")
parser.add_argument("--config")
transcribe.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args()
setup_logging(1, False)
sys.exit(args.func(args))
"""


@dataclass(frozen=True)
class Arm64Box:
    sysroot: Path
    python: tuple[int, int]
    env: dict[str, str]
    site: Path             # the installed wheelhouse
    wheelhouse: list[str]  # file names in the image's wheelhouse
    model: Path
    config: Path
    work: Path

    def on(self, cpu: str = PI_CPU) -> list[str]:
        """The command prefix that runs the sysroot's Python on an emulated ``cpu``."""
        return python_command(self.sysroot, self.python, cpu)


@pytest.fixture(scope="module")
def arm64_box(request, tmp_path_factory) -> Arm64Box:
    """The built image's wheelhouse, model and config, installed for aarch64 beside an arm64 sysroot."""
    require_qemu_user()
    built = request.getfixturevalue("built")
    work = tmp_path_factory.mktemp("arm64")
    target = read_target(built.root)
    wheelhouse = built.root.extract_tree("/opt/sttkb/wheelhouse", work / "image")
    models = built.root.extract_tree("/var/lib/sttkb/models", work / "image")
    ggml_cpu = built.root.extract_tree("/opt/sttkb/ggml-cpu", work / "image")
    config = work / "config.toml"
    text = (built.root.read("/etc/sttkb/config.toml") or b"").decode()
    # One change for the emulated CPU: a 2 s end-of-speech pause makes the recording one segment, so whisper.cpp's
    # encoder (most of a decode, and a fixed cost per segment) runs once instead of three times under qemu-user.
    assert text.count("end_silence_ms = 700") == 1, "the image's config no longer says end_silence_ms = 700"
    config.write_text(text.replace("end_silence_ms = 700", "end_silence_ms = 2000"))
    names = sorted(p.name for p in wheelhouse.iterdir())
    assert not [n for n in names if not n.endswith(".whl")], f"the box installs wheels only: {names}"
    wheels = sorted(p for p in wheelhouse.iterdir() if p.suffix == ".whl")
    assert any(p.name.startswith("sttkb-") for p in wheels), f"no sttkb wheel in the image's wheelhouse: {names}"
    site = work / "site"
    install_wheels(wheels, site, target.glibc, target.python, sys.executable)
    try:
        sysroot = arm64_sysroot(target.suite, target.python)
    except DownloadError as e:
        if os.environ.get("STTKB_REQUIRE_VM") == "1":
            pytest.fail(f"STTKB_REQUIRE_VM=1 but the Debian arm64 packages cannot be downloaded: {e}")
        pytest.skip(f"cannot download Debian arm64 packages for the sysroot (archive unreachable?): {e}")
    bins = sorted(models.glob("*.bin"))
    assert bins, f"no model in the image's {models}"
    home = work / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONPATH": str(site),
           "LC_ALL": "C.UTF-8", "PYTHONFAULTHANDLER": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "STTKB_GGML_CPU_DIR": str(ggml_cpu)}      # the image's /opt/sttkb/ggml-cpu
    return Arm64Box(sysroot, target.python, env, site, names, bins[0], config, work)


def _no_core_dump() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))     # qemu-user writes a guest core file on a crash


def _describe(rc: int, cpu: str = PI_CPU) -> str:
    if rc in (-4, 132):
        return (f"SIGILL: the aarch64 engine executes an instruction a {cpu} does not have, so that Pi could not "
                "transcribe. Pin a wheel that runs there (requirements.lock), or fix the choice of ggml's CPU build "
                "(sttkb.asr.cpu_variant)")
    if rc < 0:
        return f"killed by signal {-rc}"
    if rc > 128:
        return f"killed by signal {rc - 128}"
    return f"exit status {rc}"


# The keystrokes for German text on a German host: z and y sit on each other's keys, ü and ß have their own.
KEYMAP_CHECK = """\
import json, sys
from sttkb.gadget.keymap import get_keymap
from sttkb.gadget.keystrokes import text_to_reports
print(json.dumps([r.hex() for r in text_to_reports(sys.argv[1], get_keymap("de"))]))
"""
GERMAN = "Zürich: y z ß"


@pytest.mark.timeout(600)
def test_the_images_xkbcommon_types_a_german_layout_on_a_pi_cpu(arm64_box):
    """The xkbcommon module the build compiled for aarch64 loads on a Cortex-A53 with Debian's arm64 libxkbcommon
    and xkb-data (the .debs the box installs), and the keymap built from it types what this machine's does."""
    assert any(n.startswith("xkbcommon-") and n.endswith("-abi3-linux_aarch64.whl") for n in arm64_box.wheelhouse)
    proc = subprocess.run([*arm64_box.on(PI_CPU), "-c", KEYMAP_CHECK, GERMAN], capture_output=True, text=True,
                          env=dict(arm64_box.env, XKB_CONFIG_ROOT=str(arm64_box.sysroot / "usr/share/X11/xkb")),
                          cwd=arm64_box.work, preexec_fn=_no_core_dump)
    assert proc.returncode == 0, f"{_describe(proc.returncode)}: {proc.stderr[-2000:]}"
    on_pi = [bytes.fromhex(r) for r in json.loads(proc.stdout)]
    from sttkb.gadget.keymap import get_keymap
    from sttkb.gadget.keystrokes import text_to_reports
    assert on_pi == text_to_reports(GERMAN, get_keymap("de"))
    usages = [r[2] for r in on_pi if any(r)]
    assert 0x1C in usages and 0x1D in usages     # the keys labelled Y and Z on a US board type z and y on a German


# The Pi Zero 2 W / Pi 3 core (ARMv8.0: the wheel's own build must be chosen) and the Pi 5's (ARMv8.2 with
# dot-product and FP16: the image's Pi 5 build must be chosen, and transcribe as well).
PI_CPUS = {"cortex-a53": "pywhispercpp's own build", "cortex-a76": "armv8.2-dotprod-fp16 build"}
SYSTEM_INFO = """\
from sttkb.asr import cpu_variant
name = cpu_variant.activate()
import _pywhispercpp as pw
print(name)
print(pw.whisper_print_system_info())
"""


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("cpu", sorted(PI_CPUS))
def test_image_engine_transcribes_jfk_on_an_emulated_pi_cpu(arm64_box, cpu):
    cmd = [*arm64_box.on(cpu), "-c", DRIVER, "--config", str(arm64_box.config), "transcribe",
           str(JFK_WAV), "--model", str(arm64_box.model)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=arm64_box.env, cwd=arm64_box.work,
                          preexec_fn=_no_core_dump)
    seconds = time.monotonic() - start
    tail = "\n".join((proc.stderr.strip().splitlines() or ["(no output)"])[-25:])
    timing = f"qemu-user -cpu {cpu}: {seconds:.0f} s for the 11 s JFK recording"
    print(f"\n{timing}\n{tail}\ntext: {proc.stdout.strip()!r}")
    assert proc.returncode == 0, f"{_describe(proc.returncode, cpu)} ({timing}); last lines:\n{tail}"
    assert f"whisper.cpp runs {PI_CPUS[cpu]}" in proc.stderr.replace("ggml's ", ""), (
        f"on a {cpu} the engine should run {PI_CPUS[cpu]}; log:\n{tail}")
    text = proc.stdout.strip()
    error_rate = wer(JFK_TEXT, text)
    assert KEY_WORDS in normalize(text) and error_rate <= MAX_WER, (
        f"wrong words on aarch64 ({timing}): WER {error_rate:.2f} (max {MAX_WER}) against {JFK_TEXT!r}; "
        f"got {text!r}")


@pytest.mark.timeout(600)
def test_the_pi5_build_is_what_whisper_cpp_runs_on_a_pi5_cpu(arm64_box):
    """ggml itself reports the dot-product and FP16 vector paths compiled in and present only when the Pi 5
    build was loaded in place of the wheel's (on a Cortex-A53 the same check reports neither)."""
    seen = {}
    for cpu in sorted(PI_CPUS):
        proc = subprocess.run([*arm64_box.on(cpu), "-c", SYSTEM_INFO], capture_output=True,
                              text=True, env=arm64_box.env, cwd=arm64_box.work, preexec_fn=_no_core_dump)
        assert proc.returncode == 0, f"{cpu}: {_describe(proc.returncode, cpu)}: {proc.stderr[-1500:]}"
        seen[cpu] = proc.stdout
    print(seen)
    assert seen["cortex-a76"].startswith("armv8.2-dotprod-fp16\n"), seen
    assert "DOTPROD = 1" in seen["cortex-a76"] and "FP16_VA = 1" in seen["cortex-a76"], seen
    assert seen["cortex-a53"].startswith("wheel\n"), seen
    assert "DOTPROD = 1" not in seen["cortex-a53"] and "FP16_VA = 1" not in seen["cortex-a53"], seen


@pytest.mark.timeout(900)
def test_the_pi5_build_forced_onto_a_cortex_a53_dies_there(arm64_box):
    """Why the choice matters: the Pi 5 build really uses instructions an ARMv8.0 core lacks. Forced onto a
    Cortex-A53 (STTKB_GGML_CPU), whisper.cpp dies with SIGILL at its first decode, as it would on a Pi 3."""
    env = dict(arm64_box.env, STTKB_GGML_CPU="armv8.2-dotprod-fp16")
    # No faulthandler here: its traceback dump runs inside the SIGILL handler, on whatever state the emulated
    # ggml worker thread left, and under qemu-user it can fault again (CI saw "Fatal Python error: Illegal
    # instruction" followed by SIGSEGV). Without it the default action ends the process with SIGILL itself.
    env.pop("PYTHONFAULTHANDLER", None)
    cmd = [*arm64_box.on("cortex-a53"), "-c", DRIVER, "--config", str(arm64_box.config),
           "transcribe", str(JFK_WAV), "--model", str(arm64_box.model)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=arm64_box.work,
                          preexec_fn=_no_core_dump)
    assert proc.returncode in (-4, 132), (
        f"expected SIGILL, got {_describe(proc.returncode)}; the Pi 5 build may not use dot-product/FP16 at all: "
        f"{proc.stderr[-1500:]}")

"""Choosing ggml's CPU build by the CPU's features (sttkb.asr.cpu_variant). The builds themselves, and the choice
made on emulated Pi CPUs with the image's real files: tests/image/test_build.py, tests/image/test_engine_aarch64.py.
Here: the rule on the AT_HWCAP words Linux reports for the Pis' cores, and a machine without builds."""

from __future__ import annotations

import pytest

from sttkb.asr import cpu_variant as cv

# AT_HWCAP as Linux reports it (arch/arm64/include/uapi/asm/hwcap.h bit numbers):
# Cortex-A53/A72 (Pi Zero 2 W, 3, 4): fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
A53 = sum(1 << b for b in (0, 1, 2, 3, 4, 5, 6, 7, 11))
# Cortex-A76 (Pi 5): the above + atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp
A76 = A53 | sum(1 << b for b in (8, 9, 10, 12, 15, 16, 20))
PI5 = "armv8.2-dotprod-fp16"


def test_a_pi5_gets_its_build_and_older_pis_keep_the_wheels():
    assert cv.choose(A76, {PI5}).name == PI5
    assert cv.choose(A53, {PI5}) is None


def test_a_cpu_with_dot_product_but_no_fp16_keeps_the_wheels():
    assert cv.choose(A53 | cv.HWCAP_ASIMDDP, {PI5}) is None


def test_no_build_installed_means_the_wheels_own():
    assert cv.choose(A76, set()) is None


def test_forcing_a_choice_and_a_wrong_name():
    assert cv.choose(A53, {PI5}, forced=PI5).name == PI5
    assert cv.choose(A76, {PI5}, forced="wheel") is None
    with pytest.raises(ValueError, match="armv9.*installed: armv8.2-dotprod-fp16"):
        cv.choose(A76, {PI5}, forced="armv9")


def test_this_machine_without_builds_runs_the_wheels_own(tmp_path, monkeypatch):
    monkeypatch.setattr(cv, "_active", None)
    monkeypatch.delenv("STTKB_GGML_CPU", raising=False)
    assert cv.activate(tmp_path) == "wheel"
    assert cv.describe().startswith("pywhispercpp's own build")

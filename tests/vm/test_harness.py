"""The VM harness itself: one boot proves the kernel, the shared root, module loading and the result share."""

from __future__ import annotations

import pytest

from tests.vm.harness import Cpio, extract_vmlinux, run_in_vm, VmUnavailable


def test_cpio_writer_pads_to_four_bytes():
    archive = Cpio()
    archive.add_file("init", b"abc", 0o755)
    data = archive.finish()
    assert data.startswith(b"070701")
    assert len(data) % 4 == 0
    assert b"TRAILER!!!" in data


def test_extract_vmlinux_rejects_a_file_without_xz_kernel():
    with pytest.raises(VmUnavailable):
        extract_vmlinux(b"MZ" + b"\0" * 100)


@pytest.mark.vm
def test_guest_runs_host_python_loads_modules_and_writes_results(vm_kernel):
    script = r"""
    set -e
    .venv/bin/python -c 'import sttkb.gadget.reports, sys; print(sys.version_info[:2])' > "$STTKB_VM_OUT/py"
    grep -q '^dummy_hcd ' /proc/modules && ls /sys/class/udc > "$STTKB_VM_OUT/udc"
    touch /usr/should-not-reach-host-$$
    mountpoint -q /sys/kernel/config && echo ok > "$STTKB_VM_OUT/configfs"
    exit 7
    """
    res = run_in_vm(script, modules=["dummy_hcd"], timeout=120)
    assert res.returncode == 7, res.console
    assert (res.outdir / "py").read_text().startswith("(3, ")
    assert (res.outdir / "udc").read_text().split() == ["dummy_udc.0"]
    assert (res.outdir / "configfs").read_text() == "ok\n"

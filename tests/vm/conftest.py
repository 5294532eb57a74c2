"""Fixtures for tests that boot a real Debian kernel in qemu (marker ``vm``). See tests/vm/README.md."""

from __future__ import annotations

import pytest

from tests.vm.harness import KernelFiles, prepare_kernel, require_vm


@pytest.fixture(scope="session")
def vm_kernel() -> KernelFiles:
    """The cached kernel + initramfs; skips the test with a clear reason if qemu or the kernel is missing."""
    require_vm()
    return prepare_kernel()

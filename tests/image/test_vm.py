"""The built image checked by a real Linux kernel (qemu, stock Debian kernel): the image is attached as a virtio
disk, both partitions are mounted with the kernel's own vfat and ext4 drivers, and the first-boot growth step runs
against the real block device."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.conftest import REPO
from tests.vm.harness import require_vm, run_in_vm

from sttkb_image import units, wheelhouse

EXTRA_MIB = 64   # free space after the root partition, as on an SD card larger than the image

GUEST = f"""
set -e
mkdir -p /mnt/boot /mnt/root
mount -t vfat -o ro /dev/vda1 /mnt/boot
mount -t ext4 /dev/vda2 /mnt/root
.venv/bin/python tests/image/guest_check.py /mnt/boot /mnt/root $STTKB_VM_OUT/facts.json
cat /sys/class/block/vda2/size > $STTKB_VM_OUT/part_before
df -B1 --output=size /mnt/root | tail -n 1 > $STTKB_VM_OUT/fs_before
STTKB_ROOT_DEV=/dev/vda2 image-build/firstboot/sttkb-firstboot grow > $STTKB_VM_OUT/grow.log 2>&1
cat /sys/class/block/vda2/size > $STTKB_VM_OUT/part_after
df -B1 --output=size /mnt/root | tail -n 1 > $STTKB_VM_OUT/fs_after
STTKB_ROOT_DEV=/dev/vda2 image-build/firstboot/sttkb-firstboot grow > $STTKB_VM_OUT/grow2.log 2>&1
umount /mnt/root /mnt/boot
"""


@pytest.mark.vm
def test_image_mounts_in_a_real_kernel_and_first_boot_grows_the_root(built, default_model, tmp_path):
    require_vm()
    disk = tmp_path / "sd.img"
    shutil.copyfile(built.path, disk)
    with open(disk, "r+b") as f:
        f.truncate(disk.stat().st_size + (EXTRA_MIB << 20))
    res = run_in_vm(GUEST, modules=["vfat", "ext4", "nls_cp437", "nls_ascii"], drives=[str(disk)], timeout=180)
    assert res.returncode == 0, res.console[-3000:]
    facts = json.loads((res.outdir / "facts.json").read_text())

    active = [x for x in facts["config_txt"].splitlines() if x.strip() and not x.startswith("#")]
    assert active[-2:] == ["[all]", "dtoverlay=dwc2,dr_mode=peripheral"]
    assert "modules-load=dwc2,libcomposite" in facts["cmdline_txt"].split()

    assert facts["wants"]["sttkb-firstboot.service"] == "/etc/systemd/system/sttkb-firstboot.service"
    for pl in units.place_service_files(REPO / "services"):
        if pl.target.parent == units.UNIT_DIR:
            assert pl.target.name in facts["units"]
            for link in units.enable_links(pl.target.name, pl.source.read_text()):
                if link.path.parent.name == "multi-user.target.wants":
                    assert facts["wants"][link.path.name] == link.target

    assert wheelhouse.non_aarch64(facts["wheelhouse"]) == []
    assert any(n.startswith("pywhispercpp-") and "aarch64" in n for n in facts["wheelhouse"])
    assert any(n.startswith("python3-pyaudio_") for n in facts["debs"])
    assert facts["models"][default_model.name] == default_model.stat().st_size
    assert default_model.with_suffix(".json").name in facts["models"]

    uid = int(facts["passwd_sttkb"].split(":")[2])
    assert facts["state_owner"] == [uid, uid, "0o750"]
    assert facts["hostname"] == "sttkb\n"
    assert facts["firstboot_mode"] == "0o755"
    assert facts["sttkb_link"] == "/opt/sttkb/venv/bin/sttkb"

    # first boot: partition and filesystem grown over the free space (online), and a second run is a no-op
    part_before, part_after = (int((res.outdir / n).read_text()) for n in ("part_before", "part_after"))
    fs_before, fs_after = (int((res.outdir / n).read_text()) for n in ("fs_before", "fs_after"))
    assert part_after - part_before == EXTRA_MIB * 2048, (res.outdir / "grow.log").read_text()
    assert fs_after - fs_before >= (EXTRA_MIB - 4) << 20
    assert "already fills the disk" in (res.outdir / "grow2.log").read_text()
    # the image file itself stays a valid layout for the host tools too
    assert subprocess.run(["sfdisk", "-d", str(disk)], capture_output=True).returncode == 0

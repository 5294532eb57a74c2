"""The sttkb system user (passwd/group edits) and unit enablement computed from [Install] sections."""

from pathlib import Path, PurePosixPath

from tests.conftest import REPO
from tests.image.synthetic import GROUP, GSHADOW, PASSWD, SHADOW

from sttkb_image import accounts, units

BASE = accounts.AccountFiles(PASSWD, GROUP, SHADOW, GSHADOW)


def test_system_user_gets_highest_free_id_and_device_groups():
    files, uid, gid = accounts.add_system_user(BASE, "sttkb", "/var/lib/sttkb", "sttkb")
    assert (uid, gid) == (999, 999)   # 998 is taken by systemd-network, as on Raspberry Pi OS
    assert "sttkb:x:999:999:sttkb:/var/lib/sttkb:/usr/sbin/nologin" in files.passwd.splitlines()
    assert "sttkb:x:999:" in files.group.splitlines()
    assert "sttkb:!*:0::::::" in files.shadow.splitlines()   # locked: nobody logs in as sttkb
    for group in ("audio", "gpio", "bluetooth", "input"):
        line = next(x for x in files.group.splitlines() if x.startswith(group + ":"))
        assert line.split(":")[3].split(",") == ["sttkb"]
    # existing lines unchanged
    assert files.passwd.startswith(PASSWD)


def test_adding_twice_changes_nothing():
    once, uid, _ = accounts.add_system_user(BASE, "sttkb", "/var/lib/sttkb", "sttkb")
    twice, uid2, _ = accounts.add_system_user(once, "sttkb", "/var/lib/sttkb", "sttkb")
    assert twice == once and uid2 == uid


def test_enable_links_follow_install_section():
    text = "[Unit]\nDescription=x\n[Install]\nWantedBy=multi-user.target bluetooth.target\nAlias=kb.service\n"
    links = units.enable_links("sttkb.service", text)
    assert [str(x.path) for x in links] == ["/etc/systemd/system/bluetooth.target.wants/sttkb.service",
                                            "/etc/systemd/system/kb.service",
                                            "/etc/systemd/system/multi-user.target.wants/sttkb.service"]
    assert {x.target for x in links} == {"/etc/systemd/system/sttkb.service"}
    assert units.enable_links("static.service", "[Service]\nExecStart=/bin/true\n") == []


def test_template_unit_enabled_with_default_instance():
    text = "[Install]\nWantedBy=multi-user.target\nDefaultInstance=usb0\n"
    links = units.enable_links("gadget@.service", text)
    assert [str(x.path) for x in links] == ["/etc/systemd/system/multi-user.target.wants/gadget@usb0.service"]
    assert units.enable_links("gadget@.service", "[Install]\nWantedBy=multi-user.target\n") == []


def test_service_files_are_placed_by_kind(tmp_path):
    (tmp_path / "bluetooth" / "bluetooth.service.d").mkdir(parents=True)
    (tmp_path / "bluetooth" / "bluetooth.service.d" / "sttkb.conf").write_text("[Service]\n")
    (tmp_path / "bluetooth" / "main.conf").write_text("[General]\n")
    (tmp_path / "sttkb.service").write_text("[Service]\n")
    (tmp_path / "99-sttkb.rules").write_text("")
    (tmp_path / "sttkb.sysusers.conf").write_text("")
    (tmp_path / "tmpfiles.d").mkdir()
    (tmp_path / "tmpfiles.d" / "sttkb.conf").write_text("")
    (tmp_path / "README.md").write_text("")
    (tmp_path / "system-generators").mkdir()
    (tmp_path / "system-generators" / "gen").write_text("#!/bin/sh\n")
    (tmp_path / "system-generators" / "gen").chmod(0o755)
    placed = {str(p.source.relative_to(tmp_path)): p.target for p in units.place_service_files(tmp_path)}
    assert placed == {
        "system-generators/gen": PurePosixPath("/usr/local/lib/systemd/system-generators/gen"),
        "99-sttkb.rules": PurePosixPath("/etc/udev/rules.d/99-sttkb.rules"),
        "bluetooth/bluetooth.service.d/sttkb.conf": PurePosixPath("/etc/systemd/system/bluetooth.service.d/sttkb.conf"),
        "bluetooth/main.conf": PurePosixPath("/etc/sttkb/bluetooth/main.conf"),
        "sttkb.service": PurePosixPath("/etc/systemd/system/sttkb.service"),
        "sttkb.sysusers.conf": PurePosixPath("/usr/lib/sysusers.d/sttkb.conf"),
        "tmpfiles.d/sttkb.conf": PurePosixPath("/usr/lib/tmpfiles.d/sttkb.conf"),
    }


def test_every_unit_in_the_checkout_is_placed():
    services = REPO / "services"
    placed = {p.source for p in units.place_service_files(services)}
    for unit in services.rglob("*"):
        if unit.suffix in (".service", ".socket", ".timer"):
            assert unit in placed
    assert Path(REPO / "image-build" / "firstboot" / "sttkb-firstboot.service").is_file()

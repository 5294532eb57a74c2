"""config.txt and cmdline.txt edits (pure functions)."""


from tests.image.synthetic import CMDLINE_TXT, CONFIG_TXT

from sttkb_image.bootconfig import DWC2_OVERLAY, edit_cmdline_txt, edit_config_txt


def active(text: str) -> list[str]:
    return [x.strip() for x in text.splitlines() if x.strip() and not x.lstrip().startswith("#")]


def test_peripheral_overlay_applies_to_all_models_and_host_mode_lines_are_disabled():
    out = edit_config_txt(CONFIG_TXT)
    lines = active(out)
    # the last section header before our overlay is [all], and nothing follows it
    assert lines[-2:] == ["[all]", DWC2_OVERLAY]
    assert "otg_mode=1" not in lines                       # CM4: XHCI host mode would take the port
    assert "dtoverlay=dwc2,dr_mode=host" not in lines      # CM5 default
    assert lines.count(DWC2_OVERLAY) == 1
    # everything else is kept as it was
    assert "dtoverlay=vc4-kms-v3d" in lines and "arm_64bit=1" in lines


def test_config_edit_is_idempotent():
    once = edit_config_txt(CONFIG_TXT)
    assert edit_config_txt(once) == once


def test_config_without_trailing_newline_or_all_section():
    out = edit_config_txt("arm_64bit=1\n[pi4]\narm_boost=1")
    assert active(out) == ["arm_64bit=1", "[pi4]", "arm_boost=1", "[all]", DWC2_OVERLAY]


def test_cmdline_loads_gadget_modules_and_stays_one_line():
    out = edit_cmdline_txt(CMDLINE_TXT)
    assert out.count("\n") == 1 and out.endswith("\n")
    assert "modules-load=dwc2,libcomposite" in out.split()
    assert out.split()[:len(CMDLINE_TXT.split())] == CMDLINE_TXT.split()
    assert edit_cmdline_txt(out) == out


def test_cmdline_merges_existing_modules_load_and_keeps_init_arguments_after_dashes():
    out = edit_cmdline_txt("root=/dev/mmcblk0p2 modules-load=i2c-dev rootwait -- single")
    assert out.split() == ["root=/dev/mmcblk0p2", "rootwait", "modules-load=i2c-dev,dwc2,libcomposite", "--",
                           "single"]


def test_cmdline_wifi_country():
    out = edit_cmdline_txt(CMDLINE_TXT, regdom="de")
    assert "cfg80211.ieee80211_regdom=DE" in out.split()
    assert edit_cmdline_txt(out, regdom="de") == out


def test_cmdline_keeps_an_existing_wifi_country_unless_one_is_given():
    base = "root=/dev/mmcblk0p2 cfg80211.ieee80211_regdom=FR rootwait\n"
    assert "cfg80211.ieee80211_regdom=FR" in edit_cmdline_txt(base).split()
    assert edit_cmdline_txt(base, regdom="DE").split().count("cfg80211.ieee80211_regdom=DE") == 1
    assert "cfg80211.ieee80211_regdom=FR" not in edit_cmdline_txt(base, regdom="DE").split()

"""Pure edits of the boot partition's config.txt and cmdline.txt (idempotent: applying twice changes nothing).

config.txt: every existing ``dtoverlay=dwc2...`` and ``otg_mode=1`` line is commented out (``otg_mode=1`` in the
``[cm4]`` section puts the USB port in host mode through the XHCI controller; Raspberry Pi's own comment says to
remove it when the DWC2 controller is needed for device mode) and one managed block at the very end, opened with
``[all]`` so it applies to every model, loads the dwc2 overlay in peripheral mode.

cmdline.txt: one line; ``modules-load=dwc2,libcomposite`` is added (systemd-modules-load reads it from the kernel
command line), so the whole USB-device setup lives on the FAT partition that any computer can edit.
"""

from __future__ import annotations

BEGIN = "# BEGIN sttkb (managed by image-build/build-image; edit between these lines at your own risk)"
END = "# END sttkb"
DISABLED = "#sttkb-disabled# "
DWC2_OVERLAY = "dtoverlay=dwc2,dr_mode=peripheral"
MODULES = ("dwc2", "libcomposite")


def _conflicts(line: str) -> bool:
    """True for an active line that would fight the peripheral-mode dwc2 overlay."""
    s = line.strip().replace(" ", "")
    return s.startswith("dtoverlay=dwc2") or s == "otg_mode=1"


def edit_config_txt(text: str) -> str:
    """Return config.txt with USB device mode enabled for every Pi model (pure, idempotent)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == BEGIN:
            inside = True
            continue
        if inside:
            if line.strip() == END:
                inside = False
            continue
        out.append(DISABLED + line if _conflicts(line) else line)
    while out and not out[-1].strip():
        out.pop()
    out += ["", BEGIN, "[all]", DWC2_OVERLAY, END]
    return "\n".join(out) + "\n"


def edit_cmdline_txt(text: str, *, regdom: str | None = None) -> str:
    """Return cmdline.txt (a single line) with the gadget modules loaded at boot (pure, idempotent).

    ``regdom``: a Wi-Fi country code (two letters) to set as ``cfg80211.ieee80211_regdom``; Raspberry Pi OS keeps
    Wi-Fi blocked until a country is set.
    """
    words = text.split()
    replaced = ("modules-load=", "cfg80211.ieee80211_regdom=") if regdom else ("modules-load=",)
    kept = [w for w in words if not w.startswith(replaced)]
    loads: list[str] = []
    for w in words:
        if w.startswith("modules-load="):
            loads += [m for m in w.split("=", 1)[1].split(",") if m]
    for m in MODULES:
        if m not in loads:
            loads.append(m)
    extra = [f"modules-load={','.join(loads)}"]
    if regdom:
        extra.append(f"cfg80211.ieee80211_regdom={regdom.upper()}")
    if "--" in kept:  # arguments after "--" go to init, not to the kernel: keep ours before it
        i = kept.index("--")
        kept = kept[:i] + extra + kept[i:]
    else:
        kept += extra
    return " ".join(kept) + "\n"

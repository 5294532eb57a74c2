"""bluetoothd's settings for the box's ``[bluetooth] mode`` (pure).

The box ships one bluetoothd settings file (services/bluetooth/main.conf, installed as
/etc/sttkb/bluetooth/main.conf) for the LE keyboard: ``ControllerMode = le``. The Classic keyboard needs the
controller in BR/EDR (``bredr``): with ``le`` bluetoothd takes its SDP record but never publishes it; both
keyboards at once (``auto``) need ``dual``. bluetoothd has no command-line switch for this, so for ``mode =
"classic"`` or ``"auto"`` the systemd generator
(services/system-generators/sttkb-bluetooth-generator, which runs ``sttkb bt systemd-dropin``) writes a copy of
the shipped file with the controller mode changed, and a bluetooth.service drop-in that starts bluetoothd on that
copy. With ``le`` (the default) it writes nothing and the shipped file is used as it is.
"""

from __future__ import annotations

import re

CONTROLLER_MODES = {"le": "le", "classic": "bredr", "auto": "dual"}
"""``[bluetooth] mode`` → bluetoothd's ControllerMode."""
SHIPPED_MODE = "le"
"""The mode the shipped main.conf is written for."""
BLUETOOTHD = "/usr/libexec/bluetooth/bluetoothd"
NO_PLUGINS = "input,hog"
"""The box is a HID device: bluetoothd must never act as a HID host for it (input: Classic, hog: LE). The input
plugin would also listen on the Classic keyboard's own PSMs (17, 19)."""
DROPIN_NAME = "60-sttkb-radio.conf"
"""Sorts after the shipped drop-in (50-sttkb.conf), whose ExecStart it replaces."""
CONF_NAME = "sttkb-bluetoothd.conf"
"""The written copy of main.conf: not a unit name, so systemd does not read it from the generator directory."""

_MODE_LINE = re.compile(r"^ControllerMode\s*=.*$", re.MULTILINE)


class ConfError(ValueError):
    """The shipped main.conf cannot be turned into the mode's (no single ControllerMode line)."""


def conf_for_mode(shipped: str, mode: str) -> str:
    """The shipped main.conf text with the controller mode that ``mode`` needs. Everything else is kept."""
    controller = CONTROLLER_MODES[mode]
    lines = _MODE_LINE.findall(shipped)
    if len(lines) != 1:
        raise ConfError(f"expected one 'ControllerMode = ...' line in bluetoothd's settings, found {len(lines)}")
    header = (f"# Written by sttkb-bluetooth-generator (`sttkb bt systemd-dropin`) for [bluetooth] mode = "
              f"\"{mode}\":\n# the box's main.conf with ControllerMode = {controller}. Edit the box's main.conf, "
              f"not this copy.\n")
    return header + _MODE_LINE.sub(f"ControllerMode = {controller}", shipped)


def dropin_for_conf(conf_path: str, mode: str) -> str:
    """The bluetooth.service drop-in that starts bluetoothd on ``conf_path``."""
    return (f"# Written by sttkb-bluetooth-generator (`sttkb bt systemd-dropin`) for [bluetooth] mode = \"{mode}\".\n"
            "[Service]\n"
            "ExecStart=\n"
            f"ExecStart={BLUETOOTHD} -f {conf_path} --noplugin={NO_PLUGINS}\n")

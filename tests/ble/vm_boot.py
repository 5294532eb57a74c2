"""The host side of the Bluetooth VM boots (tests/ble/test_ble_vm.py, test_passkey_vm.py,
tests/bt_classic/test_classic_vm.py): what the guest needs from this machine, its environment for
tests/ble/vm/ble_stack.sh, and reading what a guest left (tests/ble/vm/guest_run.py writes it).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.vm.harness import VmResult


def require_bluez() -> None:
    """The guest uses the host's own bluetoothd and btvirt (Debian bluez + bluez-test-tools)."""
    missing = [p for p in ("/usr/libexec/bluetooth/bluetoothd", "/usr/bin/btvirt", "/usr/bin/hciconfig",
                           "/usr/bin/dbus-daemon") if not os.path.exists(p)]
    if missing:
        reason = f"BLE VM tests need {', '.join(missing)} (apt-get install bluez bluez-test-tools dbus)"
        if os.environ.get("STTKB_REQUIRE_VM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def stack_env(**env: str) -> dict[str, str]:
    """Guest environment for tests/ble/vm/ble_stack.sh; STTKB_BT_DEBUG=1 here is passed on (bluetoothd -d and a
    btmon capture in the result directory)."""
    if os.environ.get("STTKB_BT_DEBUG"):
        env["STTKB_BT_DEBUG"] = "1"
    return env


def guest_result(res: VmResult) -> dict:
    """The guest's result.json (no stages if it wrote none), with the end of the console (``_console``), the result
    directory (``_outdir``) and how long the boot took (``_seconds``)."""
    path = res.outdir / "result.json"
    data = json.loads(path.read_text()) if path.exists() else {"stages": []}
    data["_console"] = res.console[-3000:]
    data["_outdir"] = str(res.outdir)
    data["_seconds"] = res.seconds
    return data


def need(vm: dict, stage: str) -> None:
    """Fail, with the guest's error, logs and console, unless the guest reached ``stage``."""
    if stage not in vm["stages"]:
        pytest.fail(f"the guest stopped before stage {stage!r}: {vm.get('error')}\n"
                    f"logs: {vm['_outdir']}\n{vm.get('traceback', '')}\n{vm['_console']}")

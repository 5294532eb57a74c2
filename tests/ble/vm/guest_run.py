"""What every Bluetooth VM guest script does around its stages (tests/ble/vm/guest_e2e.py, guest_hog.py,
guest_passkey.py, tests/bt_classic/vm/guest_classic.py): where its results go (``$STTKB_VM_OUT``, the directory
the test shares with the guest) and running it under a deadline, leaving the error and its traceback in
result.json when it stops early. The guest reads the checkout over 9p (tests/vm/harness.py), so this module is
there as the scripts are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import traceback
from pathlib import Path
from typing import Any, Callable, Coroutine

OUT = Path(os.environ.get("STTKB_VM_OUT", "/tmp"))


def write_result(result: dict) -> None:
    """Write ``result`` to result.json (after every stage, so the test sees how far the guest got)."""
    (OUT / "result.json").write_text(json.dumps(result, indent=1))


def run_guest(run: Callable[[], Coroutine[Any, Any, Any]], timeout_s: float, result: dict, log: logging.Logger, *,
              evidence: Callable[[], dict] | None = None) -> int:
    """Log to guest.log and run ``run()`` for at most ``timeout_s`` seconds; the exit status (0: it finished).

    When it stops early, ``result`` gets the error, its traceback and what ``evidence()`` adds, and is written."""
    logging.basicConfig(level=logging.INFO, filename=str(OUT / "guest.log"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(asyncio.wait_for(run(), timeout_s))
        return 0
    except BaseException as e:  # noqa: BLE001 - report where it stopped
        result["error"] = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()
        if evidence is not None:
            result.update(evidence())
        write_result(result)
        log.exception("guest failed")
        return 1

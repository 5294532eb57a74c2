"""The pairing window as the running peripheral sees it: open it, close it, follow the adapter, report the end.

The window is the adapter's Pairable/Discoverable state (:meth:`sttkb.gadget.ble.adapter.Adapter.set_pairing_window`);
bluetoothd's own timeouts close it, a timer here is the second lock, and `sttkb bt pair` in another process may
open it too: :meth:`PairingWindowControl.follow` takes every change, whoever made it. Transitions run one at a
time, so when :meth:`open` returns, everything the change does (``on_change``: advertisement, LED) is done.
Loop thread only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Coroutine

log = logging.getLogger(__name__)

TIMER_GRACE_S = 1.0
"""The timer here closes the window this long after bluetoothd should have (it covers BlueZ builds that ignore
PairableTimeout while an agent is registered)."""


class PairingWindowControl:
    """``set_window(open, seconds)`` switches the adapter; ``on_change(open)`` runs after every transition;
    ``spawn(coro)`` starts background work on the loop (the timer's close)."""

    def __init__(self, set_window: Callable[[bool, float], Awaitable[None]],
                 on_change: Callable[[bool], Awaitable[None]],
                 spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self._set_window = set_window
        self._on_change = on_change
        self._spawn = spawn
        self.is_open = False
        self._on_done: Callable[[bool], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()

    async def open(self, seconds: float, on_done: Callable[[bool], None] | None) -> None:
        """Open for ``seconds``; ``on_done(paired)`` is called once when it closes (a window still waiting for
        its end gets ``on_done(False)`` first)."""
        if self._on_done is not None and self._on_done is not on_done:
            self._finish(False)
        self._on_done = on_done
        await self._set_window(True, seconds)
        await self.follow(True)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds + TIMER_GRACE_S,
                                                            lambda: self._spawn(self.close()))

    async def close(self) -> None:
        try:
            await self._set_window(False, 0.0)
        finally:   # whatever the adapter said, the agent refuses pairing from now on
            await self.follow(False)

    async def follow(self, open_: bool) -> None:
        """The adapter's Pairable is now ``open_`` (set here, by `sttkb bt pair` elsewhere, or by its timeout)."""
        async with self._lock:
            if open_ == self.is_open:
                return
            self.is_open = open_
            log.info("pairing window %s", "open: hosts can find and pair with the keyboard" if open_ else "closed")
            if not open_ and self._timer is not None:
                self._timer.cancel()
                self._timer = None
            await self._on_change(open_)
            if not open_:
                self._finish(False)

    async def host_paired(self) -> None:
        """A host bonded: the window closes first, then ``on_done(True)``."""
        on_done, self._on_done = self._on_done, None
        try:
            if self.is_open:
                await self.close()
        finally:   # the host did pair, even if the window could not be closed now (its timer closes it)
            self._on_done = on_done
            self._finish(True)

    def _finish(self, paired: bool) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            try:
                on_done(paired)
            except Exception:  # noqa: BLE001 (a callback must not break the keyboard)
                log.exception("pairing on_done callback failed")

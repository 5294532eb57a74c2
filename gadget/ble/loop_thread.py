"""One asyncio loop on a thread of its own: dbus-fast is asyncio, the peripheral's callers are plain threads.

:meth:`LoopThread.run` is the one way in from another thread (blocking, with a timeout in seconds);
:meth:`LoopThread.spawn` starts background work from the loop's own thread and logs its failure.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Coroutine, TypeVar

from sttkb.gadget.ble.errors import BluetoothError

log = logging.getLogger(__name__)
T = TypeVar("T")


class LoopThread:
    """An event loop running on a daemon thread named ``name`` between :meth:`start` and :meth:`stop`."""

    def __init__(self, name: str = "sttkb-ble") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def running(self) -> bool:
        return self._loop is not None

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 10.0) -> T:
        """Run ``coro`` on the loop and return its result; FutureTimeout (the coroutine is cancelled) after
        ``timeout`` seconds; BluetoothError when the loop is not running."""
        if self._loop is None:
            coro.close()
            raise BluetoothError("the Bluetooth keyboard is not started")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except FutureTimeout:
            fut.cancel()
            raise

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Start ``coro`` as a background task (call from the loop's thread); its failure is logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("Bluetooth background task failed: %s", t.exception())
        task.add_done_callback(done)

    def cancel_tasks(self) -> None:
        """Cancel the background tasks (call from the loop's thread)."""
        for task in list(self._tasks):
            task.cancel()

    def stop(self) -> None:
        """Stop the loop and join its thread (up to 5 s). Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5.0)
        loop.close()

"""The pairing window's transitions, with a stand-in adapter that behaves like bluetoothd: every property it sets
comes back as a signal, which the peripheral follows on a task of its own, racing the caller.

test_peripheral_mock.py once saw ``on_pairing_change`` not yet called when ``open_pairing_window`` had returned
(a loaded machine): the signal's task had marked the window open and was still re-registering the advertisement
when the caller's own transition found the window "already open" and returned. Here that interleaving is forced.
"""

from __future__ import annotations

import asyncio

from sttkb.gadget.ble.pairing_window import TIMER_GRACE_S, PairingWindowControl


class Bluetoothd:
    """set_window() answers at once and, like bluetoothd's PropertiesChanged, makes the peripheral follow the
    new state on a task of its own; on_change() takes a while, like re-registering the advertisement."""

    def __init__(self) -> None:
        self.changes: list[bool] = []
        self.tasks: list[asyncio.Task] = []
        self.control = PairingWindowControl(self.set_window, self.on_change, self.spawn)

    def spawn(self, coro) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def set_window(self, open_: bool, seconds: float) -> None:
        self.spawn(self.control.follow(open_))
        await asyncio.sleep(0)  # the signal's task starts before the caller goes on

    async def on_change(self, open_: bool) -> None:
        await asyncio.sleep(0.05)
        self.changes.append(open_)

    async def settle(self) -> None:
        await asyncio.gather(*self.tasks)


def test_open_returns_after_the_change_is_done_even_when_the_signal_got_there_first():
    async def scenario():
        d = Bluetoothd()
        await d.control.open(30.0, None)
        assert d.control.is_open and d.changes == [True]
        await d.control.close()
        assert not d.control.is_open and d.changes == [True, False]
        await d.settle()
        assert d.changes == [True, False], "each transition runs once"
    asyncio.run(scenario())


def test_a_host_pairing_closes_the_window_first_then_reports_it_once():
    async def scenario():
        d = Bluetoothd()
        done: list[tuple[bool, bool]] = []
        await d.control.open(30.0, lambda paired: done.append((paired, d.control.is_open)))
        await d.control.host_paired()
        await d.settle()
        assert done == [(True, False)] and d.changes == [True, False]
    asyncio.run(scenario())


def test_a_second_open_ends_the_first_windows_wait_and_the_timer_closes_the_window():
    async def scenario():
        d = Bluetoothd()
        first: list[bool] = []
        second: list[bool] = []
        await d.control.open(30.0, first.append)
        await d.control.open(0.1, second.append)
        assert first == [False] and second == []
        await asyncio.sleep(0.1 + TIMER_GRACE_S + 0.2)
        await d.settle()
        assert second == [False] and not d.control.is_open and d.changes == [True, False]
    asyncio.run(scenario())

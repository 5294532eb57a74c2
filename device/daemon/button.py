"""One button, many gestures: a pure recognizer plus a thin gpiozero driver.

Gestures (times from [button]):
  press       every press, at once (a press while typing cancels the rest)
  hold_start  still pressed after ``hold_s`` → push-to-talk begins
  hold_end    released after a hold
  long_hold   still pressed after ``pair_hold_s`` (the Bluetooth pairing gesture, if nothing was said)
  taps(n)     n short presses, each within ``multi_press_s`` of the last: 2 = double, 3 = triple

Debounce is done here in software (``bounce_ms``), so it behaves the same on every pin factory: edges within
the bounce time of the last accepted edge are ignored, and when the bounce time is over the pin level is read
again, so a glitch never leaves the button "stuck" pressed.

Pin factory: gpiozero picks one itself (``GPIOZERO_PIN_FACTORY`` overrides). On a Pi 5 only ``lgpio`` works
(RPi.GPIO cannot drive the RP1 chip): install python3-lgpio or the ``lgpio`` wheel, or set
``[button] pin_factory = "lgpio"``. Tests use gpiozero's MockFactory.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)

PRESS, HOLD_START, HOLD_END, LONG_HOLD, TAPS = "press", "hold_start", "hold_end", "long_hold", "taps"


@dataclass(frozen=True)
class Gesture:
    kind: str            # press | hold_start | hold_end | long_hold | taps
    count: int = 0       # taps: how many
    held_s: float = 0.0  # hold_end: how long the button was held (seconds)


class GestureRecognizer:
    """Turns timed button edges into gestures. Pure: the caller passes ``now`` (seconds, monotonic)."""

    def __init__(self, *, hold_s: float = 0.3, pair_hold_s: float = 5.0, multi_press_s: float = 0.4,
                 bounce_s: float = 0.02) -> None:
        self.hold_s, self.pair_hold_s = hold_s, pair_hold_s
        self.multi_press_s, self.bounce_s = multi_press_s, bounce_s
        self.pressed = False
        self._last_edge = -1e9
        self._pressed_at = 0.0
        self._released_at = 0.0
        self._held = False
        self._long = False
        self._taps = 0
        self._check_level = False  # re-read the pin when the bounce window ends

    def edge(self, pressed: bool, now: float) -> list[Gesture]:
        """A pin edge; returns the gestures it completes (ignored while bouncing)."""
        self._check_level = True
        if pressed == self.pressed or now - self._last_edge < self.bounce_s:
            return []
        return self._accept(pressed, now)

    def _accept(self, pressed: bool, now: float) -> list[Gesture]:
        self.pressed, self._last_edge, self._check_level = pressed, now, True
        if pressed:
            self._pressed_at, self._held, self._long = now, False, False
            return [Gesture(PRESS)]
        if self._held:
            self._taps = 0
            return [Gesture(HOLD_END, held_s=now - self._pressed_at)]
        self._taps += 1
        self._released_at = now
        return []

    def poll(self, now: float, level: bool | None = None) -> list[Gesture]:
        """Gestures that became due by ``now``; ``level`` = the pin's current level, to end a bounce window."""
        out: list[Gesture] = []
        if self._check_level and now - self._last_edge >= self.bounce_s:
            self._check_level = False
            if level is not None and level != self.pressed:
                out += self._accept(level, now)
                self._check_level = False
        if self.pressed:
            if not self._held and now - self._pressed_at >= self.hold_s:
                self._held, self._taps = True, 0  # a hold wins over presses before it
                out.append(Gesture(HOLD_START))
            if self._held and not self._long and now - self._pressed_at >= self.pair_hold_s:
                self._long = True
                out.append(Gesture(LONG_HOLD))
        elif self._taps and now - self._released_at >= self.multi_press_s:
            out.append(Gesture(TAPS, count=self._taps))
            self._taps = 0
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`poll` next has something to do (monotonic seconds), or None."""
        times = [self._last_edge + self.bounce_s] if self._check_level else []
        if self.pressed:
            if not self._held:
                times.append(self._pressed_at + self.hold_s)
            elif not self._long:
                times.append(self._pressed_at + self.pair_hold_s)
        elif self._taps:
            times.append(self._released_at + self.multi_press_s)
        return min(times) if times else None


class ButtonGestures:
    """A gpiozero Button (GPIO to GND, internal pull-up) reporting gestures to ``on_gesture``.

    ``on_gesture`` runs on gpiozero's or this class's timer thread: it must hand the work off at once (the
    daemon puts it on its event queue).
    """

    def __init__(self, pin: str, on_gesture: Callable[[Gesture], None], *, hold_s: float = 0.3,
                 pair_hold_s: float = 5.0, multi_press_s: float = 0.4, bounce_s: float = 0.02,
                 pin_factory=None) -> None:
        from gpiozero import Button  # imported here: the daemon runs without GPIO in simulate mode

        self.on_gesture = on_gesture
        self.recognizer = GestureRecognizer(hold_s=hold_s, pair_hold_s=pair_hold_s, multi_press_s=multi_press_s,
                                            bounce_s=bounce_s)
        self._lock = threading.Condition()
        self._closed = False
        # bounce_time=None: debounce is ours (MockFactory and some factories ignore gpiozero's)
        self.button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        self.button.when_pressed = lambda: self._edge(True)
        self.button.when_released = lambda: self._edge(False)
        self._thread = threading.Thread(target=self._timer_loop, name="sttkb-button", daemon=True)
        self._thread.start()

    def _emit(self, gestures: list[Gesture]) -> None:
        for g in gestures:
            log.debug("button gesture %s", g)
            try:
                self.on_gesture(g)
            except Exception:
                log.exception("button gesture handler failed")

    def _edge(self, pressed: bool) -> None:
        with self._lock:
            gestures = self.recognizer.edge(pressed, time.monotonic())
            self._lock.notify_all()
        self._emit(gestures)

    def _timer_loop(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                deadline = self.recognizer.next_deadline()
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if wait is None or wait > 0:
                    self._lock.wait(min(wait, 1.0) if wait is not None else 1.0)
                if self._closed:
                    return
                gestures = self.recognizer.poll(time.monotonic(), self.button.is_pressed)
            self._emit(gestures)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout=2)
        self.button.close()


def make_pin_factory(name: str):
    """A gpiozero pin factory by name ("" = gpiozero's own choice, "mock" = MockFactory for a dry run)."""
    if not name:
        return None
    try:
        if name == "mock":
            from gpiozero.pins.mock import MockFactory, MockPWMPin
            return MockFactory(pin_class=MockPWMPin)
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory
            return LGPIOFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory
            return RPiGPIOFactory()
        if name == "pigpio":
            from gpiozero.pins.pigpio import PiGPIOFactory
            return PiGPIOFactory()
        if name == "native":
            from gpiozero.pins.native import NativeFactory
            return NativeFactory()
    except (ImportError, OSError, RuntimeError) as e:
        from sttkb.daemon import Error
        raise Error(f"GPIO pin factory {name!r} cannot start: {e}. On a Pi 5 install python3-lgpio (or the "
                    f"lgpio wheel) and use 'lgpio'") from e
    raise ValueError(f"unknown pin factory {name!r}")

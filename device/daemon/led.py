"""The status LED: one pattern per daemon state, played by a small thread on a gpiozero (PWM)LED.

=============  =====================================  =======================================
pattern        with PWM                               without PWM (plain on/off pin)
=============  =====================================  =======================================
idle           steady dim glow (8 %)                  a short blip every 3 s
listening      steady full on                         steady on
transcribing   breathing, 0.8 s per breath            blinking 0.3 s on / 0.3 s off
typing         fast flicker, 0.05 s on / 0.05 s off   same
host_gone      typing paused, no host: 0.1 s blip/1 s same
pairing        slow blink, 0.5 s on / 0.5 s off       same
passkey        on, dark for 0.1 s every 0.5 s         same ("say the code": listening, while pairing)
error          double blink, then 0.9 s dark          same
remote_down    idle, but the speech server ([asr]     two short blips every 3 s
               engine) does not answer: the glow
               with a brighter 0.1 s blip every 2 s
=============  =====================================  =======================================
"""

from __future__ import annotations

import logging
import threading

from sttkb.daemon.state import State

log = logging.getLogger(__name__)

Step = tuple[float, float]  # (brightness 0..1, seconds)


def _breath(period_s: float, steps: int = 16) -> tuple[Step, ...]:
    half = steps // 2
    up = [(i / half, period_s / steps) for i in range(half)]
    down = [(1 - i / half, period_s / steps) for i in range(half)]
    return tuple(up + down)


PWM_PATTERNS: dict[str, tuple[Step, ...]] = {
    "off": ((0.0, 1.0),),
    "idle": ((0.08, 1.0),),
    "listening": ((1.0, 1.0),),
    "transcribing": _breath(0.8),
    "typing": ((1.0, 0.05), (0.0, 0.05)),
    "host_gone": ((1.0, 0.1), (0.0, 0.9)),
    "pairing": ((1.0, 0.5), (0.0, 0.5)),
    "passkey": ((1.0, 0.4), (0.0, 0.1)),
    "error": ((1.0, 0.1), (0.0, 0.1), (1.0, 0.1), (0.0, 0.9)),
    "remote_down": ((0.08, 1.9), (0.6, 0.1)),
}
ONOFF_PATTERNS: dict[str, tuple[Step, ...]] = {
    **PWM_PATTERNS,
    "idle": ((1.0, 0.05), (0.0, 2.95)),
    "transcribing": ((1.0, 0.3), (0.0, 0.3)),
    "remote_down": ((1.0, 0.05), (0.0, 0.15), (1.0, 0.05), (0.0, 2.75)),
}


def pattern_for(state: State, keyboard_state: str = "idle", *, remote_up: bool = True) -> str:
    """The LED pattern for a daemon state; typing to a host that went away shows ``host_gone``; idle while the
    remote engine's server does not answer (``remote_up`` False; the box's model decodes meanwhile) shows
    ``remote_down``."""
    if state is State.TYPING and keyboard_state in ("paused", "offline"):
        return "host_gone"
    if state is State.IDLE and not remote_up:
        return "remote_down"
    return {State.HANDSFREE: "listening"}.get(state, state.value)


class StatusLed:
    """Plays :data:`PWM_PATTERNS` (or the on/off ones) on ``pin``; :meth:`show` switches at once."""

    def __init__(self, pin: str, *, pwm: bool = True, pin_factory=None) -> None:
        from gpiozero import LED, PWMLED
        from gpiozero.exc import PinPWMUnsupported

        self.led = None
        if pwm:
            try:
                self.led = PWMLED(pin, pin_factory=pin_factory)
            except PinPWMUnsupported:
                log.info("LED pin %s cannot do PWM: using on/off patterns", pin)
        if self.led is None:
            self.led = LED(pin, pin_factory=pin_factory)
        self.patterns = PWM_PATTERNS if isinstance(self.led, PWMLED) else ONOFF_PATTERNS
        self.current = "off"
        self._cond = threading.Condition()
        self._version = 0
        self._closed = False
        self._thread = threading.Thread(target=self._play, name="sttkb-led", daemon=True)
        self._thread.start()

    def show(self, pattern: str) -> None:
        if pattern not in self.patterns:
            raise ValueError(f"unknown LED pattern {pattern!r}")
        with self._cond:
            if pattern == self.current:
                return
            self.current = pattern
            self._version += 1
            self._cond.notify_all()

    def _set(self, value: float) -> None:
        if self.patterns is ONOFF_PATTERNS:
            self.led.value = 1 if value >= 0.5 else 0
        else:
            self.led.value = value

    def _play(self) -> None:
        with self._cond:
            while not self._closed:
                version, steps = self._version, self.patterns[self.current]
                if len(steps) == 1:
                    self._set(steps[0][0])
                    self._cond.wait_for(lambda: self._version != version or self._closed)
                    continue
                for value, seconds in steps:
                    self._set(value)
                    if self._cond.wait_for(lambda: self._version != version or self._closed, seconds):
                        break

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2)
        self.led.off()
        self.led.close()


class LogLed:
    """A stand-in LED for ``sttkb run --simulate`` and boxes without one: logs each pattern change."""

    def __init__(self) -> None:
        self.current = "off"
        self.history: list[str] = []

    def show(self, pattern: str) -> None:
        if pattern != self.current:
            self.history.append(pattern)            # first: whoever sees ``current`` change sees it in the history
            self.current = pattern
            log.info("LED: %s", pattern)

    def close(self) -> None:
        pass

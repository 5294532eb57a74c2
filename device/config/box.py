"""[button], [led], [journal] and [daemon] settings: the box itself."""

from __future__ import annotations

from dataclasses import dataclass

from sttkb.config.schema import setting

#: What a gesture can be mapped to in [button].
GESTURE_ACTIONS = ("handsfree", "retype", "pair", "none")


@dataclass(frozen=True)
class ButtonSettings:
    pin: str = setting("GPIO17", "Button pin (gpiozero name); wired to GND, internal pull-up; empty = no button")
    bounce_ms: float = setting(20.0, "Debounce time (milliseconds)", min=0.0, max=500.0)
    multi_press_s: float = setting(0.4, "Max gap between presses of a double/triple press (seconds)",
                                   min=0.1, max=2.0)
    hold_s: float = setting(0.3, "Press longer than this = push-to-talk hold (seconds)", min=0.05, max=3.0)
    pair_hold_s: float = setting(5.0, "Hold this long to open the Bluetooth pairing window (seconds)",
                                 min=2.0, max=30.0)
    handsfree_silence_s: float = setting(30.0, "Hands-free mode stops after this much silence (seconds)",
                                         min=2.0, max=3600.0)
    double_press: str = setting("handsfree", "What a double press does", choices=GESTURE_ACTIONS)
    triple_press: str = setting("retype", "What a triple press does", choices=GESTURE_ACTIONS)
    long_hold: str = setting("pair", "What a silent hold of pair_hold_s does", choices=GESTURE_ACTIONS)
    pin_factory: str = setting("", "gpiozero pin factory for button and LED; empty = gpiozero's choice "
                                   "(a Pi 5 needs lgpio)",
                               choices=("", "lgpio", "rpigpio", "pigpio", "native", "mock"))


@dataclass(frozen=True)
class LedSettings:
    pin: str = setting("GPIO27", "LED pin (gpiozero name), through a resistor to GND; empty = no LED")
    pwm: bool = setting(True, "Use PWM for breathing/fading patterns where the pin allows")
    feedback_sounds: bool = setting(False, "Play short sounds on start/stop of listening")


@dataclass(frozen=True)
class JournalSettings:
    enabled: bool = setting(True, "Keep transcripts in a journal so nothing said is lost; off for privacy")
    path: str = setting("", "Journal file; empty = /var/lib/sttkb/journal.jsonl (service) or ~/.local/state")
    max_bytes: int = setting(1_000_000, "Rotate the journal beyond this size (bytes)", min=10_000,
                             max=1_000_000_000)
    keep: int = setting(3, "Rotated journal files kept", min=0, max=100)


@dataclass(frozen=True)
class DaemonSettings:
    control_socket: str = setting("/run/sttkb/control.sock", "Control socket path")
    socket_group: str = setting("sttkb", "Group that may use the control socket")
    mic_retry_s: float = setting(3.0, "Retry a missing microphone every N seconds", min=0.5, max=60.0)
    pre_roll_s: float = setting(0.3, "Audio kept from before the button press (seconds)", min=0.0, max=2.0)
    watchdog: bool = setting(True, "Ping the systemd watchdog from the main loop (when WatchdogSec is set)")

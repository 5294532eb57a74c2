"""Load /etc/sttkb/config.toml (or --config PATH) into one frozen :class:`Config`.

Each section lives in its own module as a frozen dataclass; this module only assembles them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sttkb.config.asr import AsrSettings, ModelSettings
from sttkb.config.audio import AudioSettings, VadSettings
from sttkb.config.box import ButtonSettings, DaemonSettings, JournalSettings, LedSettings
from sttkb.config.keyboard import BluetoothSettings, KeyboardSettings, UsbSettings
from sttkb.config.schema import ConfigError, build
from sttkb.config.text import TextSettings

__all__ = ["Config", "ConfigError", "load_config", "DEFAULT_PATH", "EXAMPLE_PATH"]

DEFAULT_PATH = Path("/etc/sttkb/config.toml")
EXAMPLE_PATH = Path(__file__).with_name("example.toml")


@dataclass(frozen=True)
class Config:
    audio: AudioSettings = field(default_factory=AudioSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    text: TextSettings = field(default_factory=TextSettings)
    keyboard: KeyboardSettings = field(default_factory=KeyboardSettings)
    usb: UsbSettings = field(default_factory=UsbSettings)
    bluetooth: BluetoothSettings = field(default_factory=BluetoothSettings)
    button: ButtonSettings = field(default_factory=ButtonSettings)
    led: LedSettings = field(default_factory=LedSettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)


def parse_config(text: str, source: str = "config") -> Config:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}. Fix the line it names, or compare with "
                          f"the commented example {EXAMPLE_PATH}") from e
    try:
        return build(Config, table, "")
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Load the config file. ``path=None`` reads /etc/sttkb/config.toml if it exists, else defaults."""
    if path is None:
        env = os.environ.get("STTKB_CONFIG")
        path = Path(env) if env else DEFAULT_PATH
        if not path.exists():
            return Config()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: no such config file. Copy {EXAMPLE_PATH} there, or leave out --config "
                          f"to use the defaults") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the config file: {e}") from e
    return parse_config(text, str(path))

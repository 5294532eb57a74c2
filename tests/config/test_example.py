"""The commented example config: it parses, it repeats every default, and it names every key of every section."""

from __future__ import annotations

import dataclasses
import tomllib
import typing

import pytest

from sttkb.config import EXAMPLE_PATH, Config, parse_config
from tests.config.toml_render import render_field

SECTIONS = typing.get_type_hints(Config)


def test_example_parses_to_the_defaults():
    config = parse_config(EXAMPLE_PATH.read_text(encoding="utf-8"), str(EXAMPLE_PATH))
    for section in SECTIONS:
        assert getattr(config, section) == getattr(Config(), section), (
            f"[{section}] in {EXAMPLE_PATH} differs from the defaults in device/config: make the example show the "
            f"default values")


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_example_names_every_key(section):
    """Fails with the exact lines to add when someone adds a setting but not its example."""
    table = tomllib.loads(EXAMPLE_PATH.read_text(encoding="utf-8"))
    assert section in table, f"{EXAMPLE_PATH} has no [{section}] section; add it with all its keys"
    missing = [f for f in dataclasses.fields(SECTIONS[section]) if f.name not in table[section]]
    assert not missing, (
        f"{EXAMPLE_PATH} lacks {', '.join(f'{section}.{f.name}' for f in missing)}. Add under [{section}]:\n"
        + "\n".join(render_field(f) for f in missing))


def test_every_key_in_the_example_has_a_comment_above_it():
    lines = EXAMPLE_PATH.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if line and not line.startswith(("#", "[")) and "=" in line:
            assert lines[number - 1].startswith("#"), f"{EXAMPLE_PATH}:{number + 1}: {line!r} has no comment"


def test_every_setting_has_a_doc():
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f.metadata.get("doc"), f"{section}.{f.name} has no doc: declare it with setting(default, doc)"


def test_example_ships_with_the_package():
    assert EXAMPLE_PATH.parent.name == "config" and EXAMPLE_PATH.is_file()

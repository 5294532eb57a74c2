"""Config errors: each names the key path, the bad value and what is allowed; the CLI prints one line."""

from __future__ import annotations

import pytest

from sttkb.cli import main
from sttkb.config import Config, ConfigError, load_config, parse_config


@pytest.mark.parametrize(("toml", "expected"), [
    # unknown keys and sections
    ("[vad]\naggresiveness = 2\n", ["vad.aggresiveness", "unknown key", "aggressiveness"]),
    ("[vadd]\naggressiveness = 2\n", ["vadd", "unknown key", "vad"]),
    ("language = 'en'\n", ["language", "unknown key", "asr"]),
    # bad types
    ("[text]\nspoken_commands = 'yes'\n", ["text.spoken_commands", "'yes'", "true or false"]),
    ("[vad]\naggressiveness = 'high'\n", ["vad.aggressiveness", "'high'", "an integer"]),
    ("[vad]\naggressiveness = 1.5\n", ["vad.aggressiveness", "1.5", "an integer"]),
    ("[vad]\naggressiveness = true\n", ["vad.aggressiveness", "True", "an integer"]),
    ("[text]\nfillers = 'um'\n", ["text.fillers", "a list of strings"]),
    ("[text]\nfillers = ['um', 3]\n", ["text.fillers[1]", "3", "a string"]),
    ("[text]\nreplacements = ['a']\n", ["text.replacements", "a table of"]),
    ("[text.replacements]\n'chat gpt' = 1\n", ["text.replacements.chat gpt", "1", "a string"]),
    ("vad = 3\n", ["vad", "expected a table"]),
    # out of range
    ("[vad]\naggressiveness = 7\n", ["vad.aggressiveness", "7", "between 0 and 3"]),
    ("[text]\nparagraph_pause_s = -1\n", ["text.paragraph_pause_s", "-1", "between 0.0 and 600.0"]),
    # bad choices
    ("[vad]\nframe_ms = 25\n", ["vad.frame_ms", "25", "10, 20, 30"]),
    ("[text]\nnumbers_language = 'ru'\n", ["text.numbers_language", "'ru'", "'en'", "'de'"]),
    ("[keyboard]\ntransport = 'serial'\n", ["keyboard.transport", "'serial'", "'usb'", "'bluetooth'"]),
    # cross-field checks
    ("[text.commands]\n'beep' = \"\\u0007\"\n", ["text", "commands", "control character"]),
    ("[text.replacements]\n'bell' = \"\\u0007\"\n", ["text", "replacements.bell", "control character"]),
    ("[text.commands]\n' ' = 'x'\n", ["text", "commands", "empty key"]),
    # TOML syntax
    ("[vad\naggressiveness = 2\n", ["not valid TOML", "line 1"]),
    ("[vad]\naggressiveness = \n", ["not valid TOML", "line 2"]),
])
def test_errors_name_the_key_value_and_allowed(toml, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(toml, "my.toml")
    message = str(info.value)
    assert message.startswith("my.toml: ")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    assert "\n" not in message


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="no such config file.*example"):
        load_config(tmp_path / "nope.toml")


def test_unreadable_file_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[text]\nliteral_word = '\xe9'\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_valid_file_overrides_only_its_keys(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[vad]\naggressiveness = 3\n[text.replacements]\n"chat gpt" = "ChatGPT"\n'
                    '[asr]\nvocabulary = ["Siobhan"]\n', encoding="utf-8")
    config = load_config(path)
    assert config.vad.aggressiveness == 3
    assert config.text.replacements == {"chat gpt": "ChatGPT"}
    assert config.asr.vocabulary == ("Siobhan",)
    assert config.vad.frame_ms == Config().vad.frame_ms
    assert config.audio == Config().audio


def test_loaded_settings_are_immutable(tmp_path):
    config = parse_config('[text.replacements]\n"a" = "b"\n[text]\nfillers = ["um"]\n')
    with pytest.raises(TypeError):
        config.text.replacements["c"] = "d"  # type: ignore[index]
    with pytest.raises((TypeError, AttributeError)):
        config.text.fillers.append("uh")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        Config().text.commands["x"] = "y"  # type: ignore[index]


def test_no_file_and_no_default_file_means_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("STTKB_CONFIG", str(tmp_path / "absent.toml"))
    assert load_config() == Config()


@pytest.mark.parametrize(("content", "expected"), [
    ("[vad]\naggressiveness = 9\n", "vad.aggressiveness: 9 is out of range; must be between 0 and 3"),
    ("[vad\n", "not valid TOML"),
    (None, "no such config file"),
])
def test_cli_prints_one_line_and_exits_1(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code = main(["--config", str(path), "config", "check"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sttkb: error: ")
    assert expected in err
    assert "Traceback" not in err


def test_cli_check_accepts_the_example(capsys):
    from sttkb.config import EXAMPLE_PATH
    assert main(["--config", str(EXAMPLE_PATH), "config", "check"]) == 0
    assert "OK" in capsys.readouterr().out


def test_cli_example_prints_a_valid_config(capsys):
    assert main(["config", "example"]) == 0
    assert parse_config(capsys.readouterr().out) == Config()

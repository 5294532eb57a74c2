"""`sttkb type --dry-run` / `--transport virtual` and error messages, through the real `sttkb` entry point."""

from __future__ import annotations

from sttkb.cli import main


def test_dry_run_prints_one_hex_report_per_line(capsys):
    assert main(["type", "--dry-run", "--layout", "de", "zy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["00 00 1c 00 00 00 00 00", "00 00 1d 00 00 00 00 00", "00 00 00 00 00 00 00 00"]


def test_virtual_transport_prints_what_the_host_shows(capsys, caplog):
    caplog.set_level("INFO")
    assert main(["type", "--transport", "virtual", "--layout", "fr", "Déjà", "vu", "—", "2"]) == 0
    assert capsys.readouterr().out == "Déjà vu - 2\n"
    assert "U+2014" in caplog.text  # the em dash replacement is logged, not silent


def test_bad_layout_is_one_clear_line(capsys):
    assert main(["type", "--dry-run", "--layout", "qwerty", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sttkb: error: unknown keyboard layout 'qwerty'") and "Traceback" not in err


def test_typing_without_a_usb_host_says_what_to_do(capsys, tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[usb]\nhidg_device = "{tmp_path / "hidg0"}"\nudc = "none.0"\n')
    assert main(["--config", str(cfg), "type", "hello"]) == 1
    err = capsys.readouterr().err
    assert "Plug the box into a computer" in err and "sttkb gadget status" in err

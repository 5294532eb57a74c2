"""The control socket: JSON lines over a unix stream socket (/run/sttkb/control.sock, mode 0660, group sttkb).

Request: one JSON object per line, ``{"cmd": "status"}``, ``{"cmd": "type", "text": "..."}``,
``{"cmd": "model_use", "name": "base.en"}``. Reply: one JSON object per line, ``{"ok": true, ...}`` or
``{"ok": false, "error": "what went wrong and what to do"}``. Commands: status, listen, stop, type, retype,
pair, reload, model_use, history.

:class:`ControlServer` runs the accept loop in a thread and hands each request to the daemon's handler;
:func:`request` is the client the CLI uses.
"""

from __future__ import annotations

import grp
import json
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from sttkb.daemon import Error

log = logging.getLogger(__name__)

DEFAULT_PATH = "/run/sttkb/control.sock"
SOCKET_MODE = 0o660
MAX_LINE = 1 << 20  # bytes; a request longer than this is refused
COMMANDS = ("status", "listen", "stop", "type", "retype", "pair", "reload", "model_use", "history")

Handler = Callable[[dict], dict]


class ControlError(Error):
    """The control socket cannot be used."""


class DaemonNotRunning(ControlError, ConnectionError):
    """Nobody answers on the control socket."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(f"sttkb daemon is not running (no answer on {path}): start it with "
                         f"`systemctl start sttkb` or `sttkb run`")
        self.path = str(path)


class CommandFailed(ControlError, RuntimeError):
    """The daemon answered with an error."""


def candidate_paths(configured: str = DEFAULT_PATH) -> list[Path]:
    """Where the socket may be: $STTKB_CONTROL_SOCKET, the configured path, then a per-user fallback used by a
    daemon that cannot write /run/sttkb (a development run as an ordinary user)."""
    env = os.environ.get("STTKB_CONTROL_SOCKET")
    if env:
        return [Path(env)]
    paths = [Path(configured or DEFAULT_PATH)]
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/sttkb-{os.getuid()}"
    fallback = Path(runtime) / "sttkb" / "control.sock"
    if fallback not in paths:
        paths.append(fallback)
    return paths


def _answers(path: Path, timeout: float = 1.0) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


class ControlServer:
    """Listens on a unix socket; calls ``handler(request) -> reply`` from a per-connection thread."""

    def __init__(self, handler: Handler, path: str | Path | None = None, *, group: str | None = "sttkb") -> None:
        self.handler = handler
        self.requested = path
        self.group = group
        self.path: Path | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> Path:
        """Bind (replacing a stale socket file), set mode and group, start accepting. Returns the path."""
        paths = [Path(self.requested)] if self.requested else candidate_paths()
        last: Exception | None = None
        for path in paths:
            try:
                self._bind(path)
                break
            except PermissionError as e:
                last = e
                log.debug("cannot use %s: %s", path, e)
        else:
            raise ControlError(f"cannot create the control socket ({last}); run as the sttkb service, or set "
                               f"[daemon] control_socket to a path you can write") from last
        self._thread = threading.Thread(target=self._accept_loop, name="sttkb-control", daemon=True)
        self._thread.start()
        log.info("control socket at %s", self.path)
        return self.path  # type: ignore[return-value]

    def _bind(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if _answers(path):
                raise ControlError(f"another sttkb daemon is already running (it answers on {path}); stop it "
                                   f"with `systemctl stop sttkb`, or give this one another --control path")
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(str(path))
            os.chmod(path, SOCKET_MODE)
            self._set_group(path)
            sock.listen(8)
        except BaseException:
            sock.close()
            raise
        self._sock, self.path = sock, path

    def _set_group(self, path: Path) -> None:
        if not self.group:
            return
        try:
            gid = grp.getgrnam(self.group).gr_gid
        except KeyError:
            log.debug("group %s does not exist; control socket keeps the daemon's group", self.group)
            return
        if os.stat(path).st_gid == gid:
            return          # the service runs with Group=sttkb: the socket has it already (and chown is filtered)
        try:
            os.chown(path, -1, gid)
        except OSError as e:
            log.warning("cannot give the control socket to group %s: %s", self.group, e)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closing.is_set():
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), name="sttkb-control-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            while True:
                line = f.readline(MAX_LINE + 1)
                if not line:
                    return
                reply = self._reply(line)
                try:
                    f.write((json.dumps(reply, ensure_ascii=False) + "\n").encode())
                    f.flush()
                except OSError:
                    return

    def _reply(self, line: bytes) -> dict:
        if len(line) > MAX_LINE:
            return {"ok": False, "error": "request too long"}
        try:
            req = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "not a JSON line; send e.g. {\"cmd\": \"status\"}"}
        if not isinstance(req, dict) or req.get("cmd") not in COMMANDS:
            return {"ok": False, "error": f"unknown command; known: {', '.join(COMMANDS)}"}
        try:
            return self.handler(req)
        except Error as e:
            return {"ok": False, "error": str(e)}
        except Exception as e:  # the daemon lives on; the client hears what happened
            log.exception("control command %s failed", req.get("cmd"))
            return {"ok": False, "error": f"internal error: {e}"}

    def close(self) -> None:
        self._closing.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)


def request(cmd: str, *, path: str | Path | None = None, configured: str = DEFAULT_PATH, timeout: float = 30.0,
            **args: Any) -> dict:
    """Send one command to the daemon and return its reply; raise :class:`DaemonNotRunning` when nobody
    answers and :class:`CommandFailed` when the daemon says no."""
    paths = [Path(path)] if path else candidate_paths(configured)
    for p in paths:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(str(p))
        except PermissionError as e:
            s.close()
            raise ControlError(f"no permission to use {p}: add yourself to the sttkb group "
                               f"(`sudo usermod -aG sttkb $USER`, then log in again)") from e
        except OSError:
            s.close()
            continue
        with s, s.makefile("rwb") as f:
            try:
                f.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
                f.flush()
                line = f.readline(MAX_LINE + 1)
            except socket.timeout as e:
                raise ControlError(f"the daemon did not answer `{cmd}` within {timeout:g} s; check "
                                   f"`journalctl -u sttkb`") from e
        if not line:
            raise ControlError("the daemon closed the connection without an answer; check `journalctl -u sttkb`")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise CommandFailed(reply.get("error") or f"`{cmd}` failed")
        return reply
    raise DaemonNotRunning(paths[0])

"""What every remote engine client shares: the reply, the connection (with the address rule for plain engines),
the API key file, the per-segment timeout and the check that a reply is text at all.

The clients themselves: :mod:`sttkb.asr.wyoming_client` (the Wyoming protocol, through the ``wyoming`` package)
and :mod:`sttkb.asr.openai_client` (an OpenAI-compatible ``/v1/audio/transcriptions`` endpoint). The engine that
uses them with the box's own model as fallback: :mod:`sttkb.asr.fallback`.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sttkb.asr.errors import (ApiKeyFileError, RemoteAddressRefused, RemoteGarbled, RemoteTimeout,
                              RemoteUnreachable)
from sttkb.asr.guard import max_tokens_for
from sttkb.audio import SAMPLE_RATE
from sttkb.config.engine_url import EngineUrl, is_local_address

CREDENTIAL_NAME = "sttkb-remote-api-key"
"""The name systemd's ``LoadCredential=`` gives the API key in the service's ``$CREDENTIALS_DIRECTORY``."""
MAX_CHARS_PER_TOKEN = 6
"""A reply longer than the segment's token budget (``[asr] tokens_per_second``) times this is not speech."""


@dataclass(frozen=True)
class RemoteReply:
    text: str
    """The server's text of the segment (not yet through the guards)."""
    rtt_s: float
    """Wall time from connecting to the last byte of the reply (seconds)."""


class RemoteClient(Protocol):
    """One speech server. Each call opens its own connection: a call that timed out leaves nothing behind that
    could answer later."""

    url: EngineUrl

    def transcribe(self, samples: np.ndarray, prompt: str, *, timeout_s: float) -> RemoteReply:
        """The server's text of 16 kHz float32 mono ``samples``; raises :class:`sttkb.asr.errors.RemoteError`."""
        ...

    def probe(self, *, timeout_s: float) -> float:
        """Check the server answers (seconds it took); raises :class:`sttkb.asr.errors.RemoteError`."""
        ...


def timeout_for(remote_timeout_ms: int, remote_timeout_per_s_ms: int, audio_s: float) -> float:
    """How long a segment of ``audio_s`` seconds may take on the server (seconds): a fixed part plus a part that
    grows with the audio, since a server's time grows with the segment too."""
    return remote_timeout_ms / 1000.0 + remote_timeout_per_s_ms / 1000.0 * max(0.0, audio_s)


def pcm16(samples: np.ndarray) -> bytes:
    """16-bit little-endian PCM of float32 samples in -1..1 (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).round().astype("<i2").tobytes()


def connect(url: EngineUrl, *, timeout_s: float, allow_public_plain: bool) -> socket.socket:
    """A TCP connection to ``url``'s host, to an address the rules allow: a plain engine (``http://``,
    ``wyoming://``) only to loopback, private or link-local addresses unless ``allow_public_plain``.

    Names are resolved here, at every connection, and each address is checked (a name that starts resolving to a
    public address is refused, not followed)."""
    deadline = time.monotonic() + timeout_s
    try:
        infos = socket.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise RemoteUnreachable(f"{url.host}: cannot resolve the name ({e.strerror}); check asr.engine, or use "
                                f"the server's IP address") from e
    refused: list[str] = []
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not url.encrypted and not allow_public_plain and not is_local_address(addr):
            refused.append(str(addr))
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RemoteTimeout(f"{url}: no connection within {timeout_s:.1f} s")
        sock = socket.socket(family, kind, proto)
        sock.settimeout(remaining)
        try:
            sock.connect(sockaddr)
            return sock
        except TimeoutError as e:
            sock.close()
            raise RemoteTimeout(f"{url}: no connection within {timeout_s:.1f} s") from e
        except OSError as e:
            sock.close()
            if e.errno in (errno.EPERM, errno.EACCES):
                raise RemoteAddressRefused(
                    f"{url}: this process may not connect to {addr} ({e.strerror}); under systemd the service's "
                    f"sandbox opens only to the engine's address: run `systemctl daemon-reload && systemctl "
                    f"restart sttkb` after changing asr.engine (docs/remote.md)") from e
            last = e
    if refused and last is None:
        raise RemoteAddressRefused(f"{url}: {url.host} is {', '.join(refused)}, not a private, link-local or "
                                   f"loopback address, and {url.scheme}:// is unencrypted; use https://, or set "
                                   f"asr.remote_allow_public_plain = true")
    detail = last.strerror if last is not None and last.strerror else str(last)
    raise RemoteUnreachable(f"{url}: cannot connect ({detail})")


def read_api_key(path: str, *, credentials_dir: str | None = None) -> str:
    """The API key in ``path`` (whitespace around it removed).

    Under systemd the key comes from the service's credentials (``LoadCredential=`` in the drop-in that
    ``sttkb remote systemd-dropin`` writes: a root-only file the unprivileged daemon could not read itself).
    The file must belong to root or to this user and be readable by no one else."""
    cred_dir = credentials_dir if credentials_dir is not None else os.environ.get("CREDENTIALS_DIRECTORY", "")
    if cred_dir and (Path(cred_dir) / CREDENTIAL_NAME).is_file():
        file = Path(cred_dir) / CREDENTIAL_NAME
    else:
        file = Path(path).expanduser()
    try:
        st = file.stat()
    except FileNotFoundError as e:
        raise ApiKeyFileError(f"{file}: no such API key file (asr.remote_api_key_file); write the key into it and "
                              f"`chmod 600` it") from e
    except OSError as e:
        raise ApiKeyFileError(f"{file}: cannot read the API key file: {e.strerror}") from e
    if not os.access(file, os.R_OK):
        raise ApiKeyFileError(f"{file}: this user (uid {os.geteuid()}) cannot read the API key file; the service gets "
                              f"it from systemd (LoadCredential=, written by the generator): run `systemctl "
                              f"daemon-reload && systemctl restart sttkb` (docs/remote.md)")
    if not stat.S_ISREG(st.st_mode):
        raise ApiKeyFileError(f"{file}: the API key file is not a regular file")
    if st.st_mode & 0o077:
        raise ApiKeyFileError(f"{file}: the API key file is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                              f"`chmod 600 {file}` so only its owner can read it")
    if st.st_uid not in (0, os.geteuid()):
        raise ApiKeyFileError(f"{file}: the API key file belongs to uid {st.st_uid}, neither root nor this user; "
                              f"`chown root {file}`")
    try:
        key = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ApiKeyFileError(f"{file}: cannot read the API key file: {e}") from e
    if not key or any(c.isspace() or not c.isprintable() for c in key):
        raise ApiKeyFileError(f"{file}: the API key file must hold the key alone, on one line")
    return key


def check_text(text: object, audio_s: float, tokens_per_second: float) -> str:
    """The reply's text, if it can be speech: a string, no control characters or undecodable bytes, not far longer
    than the segment's token budget. Raises :class:`RemoteGarbled`; the text is never in the message."""
    if not isinstance(text, str):
        raise RemoteGarbled(f"the reply's text is {type(text).__name__}, not a string")
    if "\ufffd" in text:
        raise RemoteGarbled("the reply's text has undecodable bytes")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise RemoteGarbled("the reply's text has control characters")
    limit = MAX_CHARS_PER_TOKEN * max_tokens_for(audio_s, tokens_per_second)
    if len(text) > limit:
        raise RemoteGarbled(f"the reply has {len(text)} characters for {audio_s:.1f} s of audio (at most {limit})")
    return text.strip()


def duration_s(samples: np.ndarray) -> float:
    return len(samples) / SAMPLE_RATE

"""An OpenAI-compatible transcription endpoint (``[asr] engine = "https://HOST/v1/audio/transcriptions"``):
faster-whisper-server/speaches, whisper.cpp's server, LocalAI and others.

Per segment, on a fresh connection: one multipart/form-data POST with the audio as a 16 kHz 16-bit WAV file and
the fields ``model``, ``language``, ``prompt``, ``temperature`` (0) and ``response_format`` (json); the reply is
JSON with ``text``. Standard library only (``http.client``, ``ssl``).

TLS: the certificate is verified against the system's authorities (or ``asr.remote_ca_file``) with the host
name; or, with ``asr.remote_tls_fingerprint``, it must be exactly the pinned certificate (SHA-256 of its DER
form) — the pin replaces the authorities, so a home server's self-signed certificate works. ``http://`` is for
private addresses only, unless ``asr.remote_allow_public_plain``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import logging
import os
import socket
import ssl
import time
import uuid
import wave

import numpy as np

from sttkb.asr.errors import (RemoteError, RemoteGarbled, RemoteRefused, RemoteTimeout, RemoteTlsError,
                              RemoteUnreachable)
from sttkb.asr.remote import RemoteReply, connect, pcm16
from sttkb.audio import SAMPLE_RATE
from sttkb.config.engine_url import EngineUrl

log = logging.getLogger(__name__)

PROBE_S = 0.5
"""Silence sent by :meth:`OpenAIClient.probe` (seconds): the cheapest request that checks the key and model."""
MAX_REPLY_BYTES = 1 << 20
"""A reply larger than this is not a transcript of one segment."""


def wav_bytes(samples: np.ndarray) -> bytes:
    """A 16 kHz mono 16-bit WAV file of float32 samples."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm16(samples))
    return out.getvalue()


def multipart(fields: dict[str, str], file_field: str, filename: str, content: bytes,
              content_type: str) -> tuple[bytes, str]:
    """(body, Content-Type header) of a multipart/form-data request."""
    boundary = f"sttkb-{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode("utf-8") + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def tls_context(*, fingerprint: str = "", ca_file: str = "") -> ssl.SSLContext:
    """Verified TLS: the authorities (and the host name), or — with a pin — no authority check here; the pin is
    checked on the certificate right after the handshake (:func:`check_pin`)."""
    if fingerprint:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def certificate_fingerprint(tls: ssl.SSLSocket) -> str:
    der = tls.getpeercert(binary_form=True)
    if not der:
        raise RemoteTlsError("the server sent no certificate")
    return hashlib.sha256(der).hexdigest()


def check_pin(tls: ssl.SSLSocket, fingerprint: str, where: str) -> None:
    got = certificate_fingerprint(tls)
    if not hmac.compare_digest(got, fingerprint):
        raise RemoteTlsError(f"{where}: the server's certificate is not the pinned one (its SHA-256 fingerprint is "
                             f"{got}); if the server's certificate was renewed on purpose, put the new fingerprint "
                             f"in asr.remote_tls_fingerprint")


class OpenAIClient:
    """One OpenAI-compatible endpoint. Each call opens its own connection and closes it."""

    def __init__(self, url: EngineUrl, *, api_key: str = "", language: str = "en", model: str = "whisper-1",
                 fingerprint: str = "", ca_file: str = "", allow_public_plain: bool = False) -> None:
        if url.kind != "openai":
            raise ValueError(f"{url} is not an http(s):// URL")
        if ca_file and not os.path.isfile(os.path.expanduser(ca_file)):
            raise RemoteTlsError(f"{ca_file}: no such CA file (asr.remote_ca_file)")
        self.url = url
        self.api_key = api_key
        self.language = None if language == "auto" else language
        self.model = model
        self.fingerprint = fingerprint
        self.allow_public_plain = allow_public_plain
        self._tls = tls_context(fingerprint=fingerprint, ca_file=os.path.expanduser(ca_file)) if url.encrypted \
            else None

    # -- the calls ---------------------------------------------------------------------------------------------
    def transcribe(self, samples: np.ndarray, prompt: str, *, timeout_s: float) -> RemoteReply:
        start = time.monotonic()
        fields = {"model": self.model, "response_format": "json", "temperature": "0"}
        if self.language:
            fields["language"] = self.language
        if prompt:
            fields["prompt"] = prompt
        body, content_type = multipart(fields, "file", "speech.wav", wav_bytes(samples), "audio/wav")
        reply = self._post(body, content_type, timeout_s, start)
        try:
            data = json.loads(reply)
        except (ValueError, UnicodeDecodeError) as e:
            raise RemoteGarbled(f"{self.url}: the reply is not JSON") from e
        if not isinstance(data, dict) or "text" not in data:
            raise RemoteGarbled(f"{self.url}: the reply has no \"text\"")
        text = data["text"]
        if not isinstance(text, str):
            raise RemoteGarbled(f"{self.url}: the reply's \"text\" is not a string")
        return RemoteReply(text=text, rtt_s=time.monotonic() - start)

    def probe(self, *, timeout_s: float) -> float:
        """Transcribe half a second of silence: checks the connection, TLS, the API key and the model."""
        start = time.monotonic()
        self.transcribe(np.zeros(int(PROBE_S * SAMPLE_RATE), np.float32), "", timeout_s=timeout_s)
        return time.monotonic() - start

    # -- HTTP --------------------------------------------------------------------------------------------------
    def _open(self, timeout_s: float) -> socket.socket:
        sock = connect(self.url, timeout_s=timeout_s, allow_public_plain=self.allow_public_plain)
        if self._tls is None:
            return sock
        try:
            tls = self._tls.wrap_socket(sock, server_hostname=self.url.host)
        except ssl.SSLCertVerificationError as e:
            sock.close()
            raise RemoteTlsError(f"{self.url}: the server's certificate failed verification ({e.verify_message}); "
                                 f"for a self-signed home server pin it with asr.remote_tls_fingerprint, or trust "
                                 f"its CA with asr.remote_ca_file") from e
        except ssl.SSLError as e:
            sock.close()
            raise RemoteTlsError(f"{self.url}: TLS failed ({e.reason or e})") from e
        except TimeoutError as e:
            sock.close()
            raise RemoteTimeout(f"{self.url}: the TLS handshake did not finish in time") from e
        except OSError as e:
            sock.close()
            raise RemoteUnreachable(f"{self.url}: the connection broke during the TLS handshake "
                                    f"({e.strerror or e})") from e
        if self.fingerprint:
            try:
                check_pin(tls, self.fingerprint, str(self.url))
            except RemoteError:
                tls.close()
                raise
        return tls

    def _post(self, body: bytes, content_type: str, timeout_s: float, start: float) -> bytes:
        deadline = start + timeout_s
        sock = self._open(timeout_s)
        conn_cls = http.client.HTTPSConnection if self._tls is not None else http.client.HTTPConnection
        conn = conn_cls(self.url.host, self.url.port, timeout=max(0.001, deadline - time.monotonic()))
        conn.sock = sock   # connected (and checked) above: http.client must not connect again by itself
        headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": "sttkb",
                   "Connection": "close"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            conn.request("POST", self.url.path, body=body, headers=headers)
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            response = conn.getresponse()
            chunks, size = [], 0
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise RemoteGarbled(f"{self.url}: the reply is larger than {MAX_REPLY_BYTES} bytes")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError
        except TimeoutError as e:
            raise RemoteTimeout(f"{self.url}: no answer within {timeout_s:.1f} s") from e
        except RemoteError:
            raise
        except (http.client.HTTPException, OSError) as e:
            raise RemoteUnreachable(f"{self.url}: the connection broke ({e.__class__.__name__}: {e})") from e
        finally:
            conn.close()
        data = b"".join(chunks)
        if response.status != 200:
            raise RemoteRefused(self._status_message(response.status, response.reason, data), status=response.status)
        return data

    def _status_message(self, status: int, reason: str, data: bytes) -> str:
        if status in (401, 403):
            return (f"{self.url}: the server refused the request ({status} {reason}): check the API key in "
                    f"asr.remote_api_key_file")
        if status == 404:
            return f"{self.url}: no such endpoint (404); the path is usually /v1/audio/transcriptions"
        detail = ""
        try:
            err = json.loads(data).get("error") or json.loads(data).get("detail")
            if isinstance(err, dict):
                err = err.get("message") or err.get("error")
            if isinstance(err, str):
                detail = f": {err[:200]}"
        except (ValueError, AttributeError, UnicodeDecodeError):
            pass
        return f"{self.url}: the server answered {status} {reason}{detail}"

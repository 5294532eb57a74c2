"""``[asr] engine``: "local" or the URL of a speech server on the user's network, parsed and checked (pure).

Accepted forms::

    local
    wyoming://HOST:PORT                                   the Wyoming protocol (Home Assistant's speech servers)
    https://HOST[:PORT]/v1/audio/transcriptions           an OpenAI-compatible transcription endpoint
    http://HOST[:PORT]/v1/audio/transcriptions            the same without TLS: private addresses only

HOST is a name, an IPv4 address or a bracketed IPv6 address. Plain (unencrypted) engines — ``http://`` and
``wyoming://`` — may only name a loopback, private or link-local address unless ``allow_public_plain`` says
otherwise; a host given by name is checked again against the address it resolves to, at every connection.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEMES = ("wyoming", "http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class EngineUrlError(ValueError):
    """``[asr] engine`` is not "local" or a URL this box can use (the message says what to write)."""


@dataclass(frozen=True)
class EngineUrl:
    """Where a remote engine is."""

    scheme: str
    """"wyoming", "http" or "https"."""
    host: str
    """A name or an IP address (IPv6 without brackets)."""
    port: int
    path: str
    """The HTTP path ("" for Wyoming)."""

    @property
    def kind(self) -> str:
        """"wyoming" or "openai" (an OpenAI-compatible HTTP endpoint)."""
        return "wyoming" if self.scheme == "wyoming" else "openai"

    @property
    def encrypted(self) -> bool:
        return self.scheme == "https"

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host as an IP address, or None when it is a name."""
        return ip_literal(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",   # loopback, RFC 1918, link
    "::1/128", "fc00::/7", "fe80::/10"))                                               # loopback, ULA, link-local
"""The user's own network: loopback, private (RFC 1918, IPv6 unique local) and link-local addresses."""


def is_local_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for loopback, private (RFC 1918, IPv6 ULA) and link-local addresses: the user's own network."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in LOCAL_NETWORKS if net.version == addr.version)


def parse_engine_url(text: str) -> EngineUrl | None:
    """None for "local"; else the parsed URL. Raises :class:`EngineUrlError` naming what is wrong."""
    value = text.strip()
    if value == "local":
        return None
    hint = ('write "local", "wyoming://HOST:PORT" (e.g. "wyoming://192.168.1.20:10300") or '
            '"https://HOST/v1/audio/transcriptions"')
    if "://" not in value:
        raise EngineUrlError(f"{text!r} is not \"local\" or a URL; {hint}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise EngineUrlError(f"{text!r}: {e}; {hint}") from e
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise EngineUrlError(f"{text!r}: unknown scheme {parts.scheme!r}; {hint}")
    if parts.username or parts.password:
        raise EngineUrlError(f"{text!r}: no user or password in the URL; put an API key in a file and name it "
                             f"in asr.remote_api_key_file")
    host = parts.hostname or ""
    if not host or (ip_literal(host) is None and not _HOSTNAME.match(host)):
        raise EngineUrlError(f"{text!r}: no valid host name or address in it; {hint}")
    if parts.query or parts.fragment:
        raise EngineUrlError(f"{text!r}: no ?query or #fragment, please; {hint}")
    if scheme == "wyoming":
        if port is None:
            raise EngineUrlError(f"{text!r}: a Wyoming URL needs the port (wyoming-faster-whisper listens on "
                                 f"10300 by default): wyoming://{host}:10300")
        if parts.path not in ("", "/"):
            raise EngineUrlError(f"{text!r}: a Wyoming URL has no path; write wyoming://{host}:{port}")
        path = ""
    else:
        path = parts.path or ""
        if not path or path == "/":
            raise EngineUrlError(f"{text!r}: name the endpoint's path, usually "
                                 f"{scheme}://{parts.netloc}/v1/audio/transcriptions")
    return EngineUrl(scheme=scheme, host=host, port=port or DEFAULT_PORTS.get(scheme, 0), path=path)


def check_engine(url: EngineUrl, *, allow_public_plain: bool) -> None:
    """Refuse a plain (unencrypted) engine at a public IP address unless the user opted in."""
    addr = url.address
    if url.encrypted or allow_public_plain or addr is None:
        return
    if not is_local_address(addr):
        raise EngineUrlError(f"{url}: {url.scheme}:// sends speech unencrypted, and {addr} is not a private, "
                             f"link-local or loopback address. Use https://, a server on your own network, or set "
                             f"asr.remote_allow_public_plain = true if you accept that")


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lower-case hex digits; colons, spaces and a "sha256:" prefix are
    accepted (as `openssl x509 -fingerprint -sha256` prints it). "" stays "" (no pin)."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:"):]
    elif value.startswith("sha256 fingerprint="):
        value = value[len("sha256 fingerprint="):]
    value = value.replace(":", "").replace(" ", "")
    if value and not _FINGERPRINT.match(value):
        raise EngineUrlError(f"{text!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed; get it with "
                             f"`openssl x509 -in server.pem -noout -fingerprint -sha256`)")
    return value

"""Errors of the recognizer."""

from __future__ import annotations

from sttkb.errors import SttkbError


class Error(SttkbError):
    """Base of the speech recognition errors."""


class ModelLoadError(Error, OSError):
    """whisper.cpp cannot load the model file."""


class ModelSettingsError(Error, ValueError):
    """The [asr] settings do not fit the model (e.g. a language an English-only model cannot do)."""


class DecodeAborted(Error):
    """A decode was abandoned because its ``abort`` callback said so (something else needed the recognizer)."""

    def __init__(self, spent_s: float) -> None:
        super().__init__(f"decode abandoned after {spent_s:.2f} s")
        self.spent_s = spent_s
        """Wall time whisper.cpp had spent on it (seconds)."""


class RemoteError(Error, OSError):
    """The remote engine (a speech server on the network) gave no usable text for a segment.

    ``reason`` is a short word the status and the LED can show: "unreachable", "timeout", "refused" (an HTTP
    error, a wrong API key), "tls" (the certificate failed its check), "address" (a plain engine at a public
    address, or the service's sandbox refused the connection), "garbled" (a reply that is not text)."""

    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:   # OSError's own __str__ would show the args tuple
        return str(self.args[0]) if self.args else self.reason


class RemoteUnreachable(RemoteError):
    reason = "unreachable"


class RemoteTimeout(RemoteError, TimeoutError):
    reason = "timeout"


class RemoteRefused(RemoteError):
    """The server answered with an error (HTTP 4xx/5xx): ``status`` holds the HTTP status (0 for Wyoming)."""

    reason = "refused"

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class RemoteTlsError(RemoteError):
    reason = "tls"


class RemoteAddressRefused(RemoteError, PermissionError):
    reason = "address"


class RemoteGarbled(RemoteError):
    reason = "garbled"


class ApiKeyFileError(Error, PermissionError):
    """The API key file is missing, unreadable, empty or readable by others."""

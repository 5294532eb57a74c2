"""The remote engine with the box's own model as fallback: a speech server on the user's network decodes each
segment while it answers well, this box's whisper.cpp whenever it does not.

:class:`FallbackEngine` has :class:`sttkb.asr.engine.WhisperEngine`'s interface (``transcribe``, ``recognize``,
``warm_up``, ``decode_private``, ``close``, ``max_segment_s``), so the chain uses it without knowing.

Per segment, in the caller's thread (the chain decodes one segment at a time, so typed order is speech order):

1. While the server is *up*, the segment goes to it with the same prompt, within a timeout that grows with the
   segment (``[asr] remote_timeout_ms`` + ``remote_timeout_per_s_ms`` per second of audio). Its text goes through
   the same guards as local text: :func:`sttkb.asr.remote.check_text` (a string, no control characters, not
   longer than the segment's token budget allows) and the repetition guard (:func:`sttkb.asr.guard.detect_loop`,
   loops cut to their first copy; mostly loop = not used).
2. If the server fails — unreachable, timeout, an HTTP error, a wrong key, a certificate that fails its check, a
   garbled or looping reply — the box's model decodes the same segment, and the server is *down*. Nothing of the
   failed request can arrive later: each request has its own connection, closed when it is given up.
3. While the server is down, segments go straight to the box's model (no timeout to wait for), and a background
   thread checks the server (:meth:`RemoteClient.probe`) after 1, 2, 4 ... at most 60 s; when it answers, it is
   *up* again and the next segment goes to it.

The spoken Bluetooth pairing code never leaves the box: :meth:`decode_private` is always local.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from sttkb.asr.engine import LOOP_RETRY_FRACTION, AsrResult, WhisperEngine
from sttkb.asr.errors import DecodeAborted, RemoteError, RemoteGarbled
from sttkb.asr.guard import detect_loop
from sttkb.asr.openai_client import OpenAIClient
from sttkb.asr.remote import RemoteClient, check_text, read_api_key, timeout_for
from sttkb.asr.wyoming_client import WyomingClient
from sttkb.audio import SAMPLE_RATE
from sttkb.audio.segment import Segment
from sttkb.config.asr import AsrSettings

log = logging.getLogger(__name__)

FIRST_CHECK_S = 1.0
"""After a failure the server is checked again after this long, then after twice as long each time (seconds)."""
MAX_CHECK_S = 60.0
"""The longest wait between two checks of a server that is down (seconds)."""
PROBE_TIMEOUT_S = 5.0
"""How long one check may take (seconds)."""


def build_client(settings: AsrSettings) -> RemoteClient:
    """The client for ``settings.engine`` (which must not be "local"). Reads the API key file now: a key file
    others can read is refused before anything is sent."""
    url = settings.remote
    if url is None:
        raise ValueError("asr.engine is \"local\": there is no remote engine to build")
    if url.kind == "wyoming":
        return WyomingClient(url, language=settings.language, allow_public_plain=settings.remote_allow_public_plain)
    key = read_api_key(settings.remote_api_key_file) if settings.remote_api_key_file else ""
    return OpenAIClient(url, api_key=key, language=settings.language, model=settings.remote_model,
                        fingerprint=settings.remote_tls_fingerprint, ca_file=settings.remote_ca_file,
                        allow_public_plain=settings.remote_allow_public_plain)


class FallbackEngine:
    """A speech server first, the box's :class:`WhisperEngine` when the server fails (see the module doc).

    Not thread-safe for decoding (one caller at a time, like WhisperEngine); the background check only touches the
    server's state, under a lock."""

    def __init__(self, local: WhisperEngine, client: RemoteClient, settings: AsrSettings | None = None, *,
                 first_check_s: float = FIRST_CHECK_S, max_check_s: float = MAX_CHECK_S,
                 probe_timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.local = local
        self.client = client
        self.remote_settings = settings or local.settings
        self.first_check_s = first_check_s
        self.max_check_s = max_check_s
        self.probe_timeout_s = probe_timeout_s
        self._lock = threading.Lock()
        self._up = True
        self._stop = threading.Event()
        self._checker: threading.Thread | None = None
        self.on_change: Callable[[bool], None] | None = None
        """Called (from the caller's or the checking thread) with True when the server is back, False when it
        failed: for the LED."""
        self.last_engine: str | None = None
        """Who made the last segment's text: "remote", "local" or None (nothing decoded yet)."""
        self.last_rtt_s: float | None = None
        """The server's last round trip (seconds), from a segment or a check."""
        self.last_error: str | None = None
        """The last failure of the server, one line without any transcript (None: none yet)."""
        self.remote_segments = 0
        """Segments whose text came from the server."""
        self.local_segments = 0
        """Segments the box's model decoded because the server was down or failed."""
        self.failures = 0
        """Requests to the server that failed (segments and checks)."""

    # -- what the chain and the daemon see of WhisperEngine ------------------------------------------------------
    @property
    def settings(self) -> AsrSettings:
        return self.local.settings

    @property
    def max_segment_s(self) -> float:
        """Segments must fit the box's own model: it may have to decode any of them."""
        return self.local.max_segment_s

    @property
    def warmed_up(self) -> bool:
        return self.local.warmed_up

    @property
    def yield_cpu(self) -> bool:
        return self.local.yield_cpu

    @yield_cpu.setter
    def yield_cpu(self, value: bool) -> None:
        self.local.yield_cpu = value

    def __getattr__(self, name: str):
        # Anything else (model_path, audio_ctx, calls, ...) is the box's model's.
        if name == "local":
            raise AttributeError(name)
        return getattr(self.local, name)

    @property
    def remote_up(self) -> bool:
        """False from a failure until a check finds the server answering again."""
        with self._lock:
            return self._up

    def status(self) -> dict:
        """For ``sttkb status``: the server, whether it is up, who typed the last text, the last round trip."""
        return {"engine": str(self.client.url), "remote_up": self.remote_up, "last_engine": self.last_engine,
                "last_rtt_ms": None if self.last_rtt_s is None else round(1000 * self.last_rtt_s),
                "last_error": self.last_error, "remote_segments": self.remote_segments,
                "local_segments": self.local_segments}

    # -- decoding -------------------------------------------------------------------------------------------------
    def transcribe(self, segment: Segment | np.ndarray, prompt: str = "") -> AsrResult:
        return self.recognize(segment, prompt)

    def recognize(self, segment: Segment | np.ndarray, prompt: str = "", *, beam_size: int | None = None,
                  abort: Callable[[], bool] | None = None) -> AsrResult:
        """The server's text of ``segment``, or the box's model's when the server is down or fails on it.

        ``beam_size``: a second, beam-search decode asked for while there is time (``[asr] beam_when_idle``).
        When the text came from the server, the box's smaller model would only make it worse: abandoned at once
        (:class:`DecodeAborted`), so the server's text stands. When the box's model made it, that model decodes
        again with beam search, as without a server. ``abort``: stops a decode of the box's model (the chain's
        early decode when speech comes back); a request to the server runs to its answer or its timeout."""
        if beam_size is not None:
            if self.last_engine == "remote":
                raise DecodeAborted(0.0)
            return self._local(segment, prompt, None, beam_size=beam_size, abort=abort)
        if not self.remote_up:
            return self._local(segment, prompt, "down", abort=abort)
        samples = segment.samples if isinstance(segment, Segment) else segment
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        try:
            result = self._remote(samples, prompt)
        except RemoteError as e:
            self._failed(e)
            return self._local(segment, prompt, e.reason, abort=abort)
        except Exception as e:   # a bug or a reply no check foresaw: the segment must still be typed
            log.warning("the remote engine failed unexpectedly; decoding locally", exc_info=True)
            error = RemoteError(f"{self.client.url}: unexpected {e.__class__.__name__}: {e}", reason="error")
            self._failed(error)
            return self._local(segment, prompt, error.reason, abort=abort)
        self.remote_segments += 1
        self.last_engine = "remote"
        self.last_rtt_s = result.rtt_s
        return result

    def _remote(self, samples: np.ndarray, prompt: str) -> AsrResult:
        s = self.remote_settings
        duration = len(samples) / SAMPLE_RATE
        timeout = timeout_for(s.remote_timeout_ms, s.remote_timeout_per_s_ms, duration)
        reply = self.client.transcribe(samples, prompt, timeout_s=timeout)
        text = check_text(reply.text, duration, s.tokens_per_second)
        loop = detect_loop(text)
        if loop.loop_fraction >= LOOP_RETRY_FRACTION:
            log.debug("the server's text looped: %r", text)   # transcripts only at DEBUG
            raise RemoteGarbled(f"{self.client.url}: the text came back "
                                f"{100 * loop.loop_fraction:.0f}% repetition loop", reason="loop")
        if loop.found:
            log.info("cut a repetition loop in the server's text (%.0f%% of it)", 100 * loop.loop_fraction)
        kept = loop.trimmed.strip()
        log.debug("segment %.1f s -> %r (server, %.2f s)", duration, kept, reply.rtt_s)
        return AsrResult(text=kept, dropped_reason=None if kept else "empty", raw_text=reply.text,
                         loop_fraction=loop.loop_fraction, asr_s=reply.rtt_s, audio_s=duration, engine="remote",
                         rtt_s=reply.rtt_s)

    def _local(self, segment: Segment | np.ndarray, prompt: str, why: str | None, *, beam_size: int | None = None,
               abort: Callable[[], bool] | None = None) -> AsrResult:
        result = self.local.recognize(segment, prompt, beam_size=beam_size, abort=abort)
        if beam_size is None:
            self.local_segments += 1
            self.last_engine = "local"
        return replace(result, engine="local", remote_error=why)

    def decode_private(self, segment: Segment | np.ndarray, *, max_tokens: int) -> str:
        """Always the box's own model: the spoken pairing code never leaves the box."""
        return self.local.decode_private(segment, max_tokens=max_tokens)

    # -- the server's state ----------------------------------------------------------------------------------------
    def _failed(self, error: RemoteError) -> None:
        self.failures += 1
        self.last_error = f"{error.reason}: {error}"
        with self._lock:
            was_up, self._up = self._up, False
        if was_up:
            log.warning("remote engine failed (%s); the box's model decodes until it answers again", error)
            self._notify(False)
        self._start_checker()

    def _start_checker(self) -> None:
        with self._lock:
            if self._stop.is_set() or (self._checker is not None and self._checker.is_alive()):
                return
            self._checker = threading.Thread(target=self._check_until_up, name="sttkb-remote-check", daemon=True)
            self._checker.start()

    def _check_until_up(self) -> None:
        wait = self.first_check_s
        while not self._stop.wait(wait):
            try:
                rtt = self.client.probe(timeout_s=self.probe_timeout_s)
            except RemoteError as e:
                self.failures += 1
                self.last_error = f"{e.reason}: {e}"
                log.debug("remote engine still not answering (%s); next check in %.0f s", e,
                          min(wait * 2, self.max_check_s))
                wait = min(wait * 2, self.max_check_s)
                continue
            except Exception as e:   # a bug must not kill the check for good: log it and keep backing off
                log.warning("checking the remote engine failed unexpectedly: %s", e, exc_info=True)
                wait = min(wait * 2, self.max_check_s)
                continue
            self.last_rtt_s = rtt
            with self._lock:
                self._up = True
            log.info("remote engine %s answers again (%.0f ms); using it", self.client.url, 1000 * rtt)
            self._notify(True)
            return

    def _notify(self, up: bool) -> None:
        callback = self.on_change
        if callback is not None:
            try:
                callback(up)
            except Exception:   # the LED must not break decoding
                log.warning("remote engine state callback failed", exc_info=True)

    def check_now(self) -> bool:
        """Check the server once, now, in this thread (at start-up); True when it answers. A failure marks it down
        and starts the background checks."""
        try:
            self.last_rtt_s = self.client.probe(timeout_s=self.probe_timeout_s)
        except RemoteError as e:
            self._failed(e)
            return False
        log.info("remote engine %s answers (%.0f ms)", self.client.url, 1000 * self.last_rtt_s)
        return True

    def warm_up(self) -> float:
        """Warm the box's model up (it may be needed any time) and check the server once."""
        spent = self.local.warm_up()
        self.check_now()
        return spent

    def stop(self) -> None:
        """Stop the background check (the box's model stays loaded; safe twice)."""
        self._stop.set()
        checker = self._checker
        if checker is not None and checker is not threading.current_thread():
            checker.join(timeout=self.probe_timeout_s + 1.0)

    def close(self) -> None:
        """Stop the background check and free the box's model (safe twice)."""
        self.stop()
        self.local.close()

    def __enter__(self) -> FallbackEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

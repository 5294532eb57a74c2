"""A Wyoming speech server (``[asr] engine = "wyoming://HOST:PORT"``): wyoming-faster-whisper,
wyoming-whisper-cpp and the other servers Home Assistant talks to.

The protocol's events come from the ``wyoming`` package; this module only orders them. Per segment, on a fresh
connection: ``transcribe`` (language; the prompt in ``context``), ``audio-start``, the audio as 16-bit PCM chunks,
``audio-stop``; then events are read until ``transcript`` (or ``error``). Wyoming has no standard prompt field: the
prompt travels as ``context.prompt`` and servers that do not know it ignore it (wyoming-faster-whisper uses its own
``--initial-prompt``). Wyoming is unencrypted: private addresses only, unless ``asr.remote_allow_public_plain``.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error as WyomingError
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import Describe, Info

from sttkb.asr.errors import RemoteError, RemoteGarbled, RemoteRefused, RemoteTimeout, RemoteUnreachable
from sttkb.asr.remote import RemoteReply, connect, pcm16
from sttkb.audio import SAMPLE_RATE
from sttkb.config.engine_url import EngineUrl

log = logging.getLogger(__name__)

CHUNK_SAMPLES = SAMPLE_RATE // 10
"""Audio per ``audio-chunk`` event (100 ms: what Wyoming satellites send)."""


class WyomingClient:
    """One Wyoming server. Each call opens its own connection and closes it (a late answer cannot arrive)."""

    def __init__(self, url: EngineUrl, *, language: str = "en", allow_public_plain: bool = False) -> None:
        if url.kind != "wyoming":
            raise ValueError(f"{url} is not a wyoming:// URL")
        self.url = url
        self.language = None if language == "auto" else language
        self.allow_public_plain = allow_public_plain

    # -- the calls ---------------------------------------------------------------------------------------------
    def transcribe(self, samples: np.ndarray, prompt: str, *, timeout_s: float) -> RemoteReply:
        start = time.monotonic()
        text = self._run(self._transcribe(samples, prompt), timeout_s, start)
        return RemoteReply(text=text, rtt_s=time.monotonic() - start)

    def probe(self, *, timeout_s: float) -> float:
        """Transcribe half a second of silence (seconds it took): the server is up, speaks Wyoming and has its
        model loaded (``describe`` alone is answered before a server loads its model on the first request)."""
        start = time.monotonic()
        self._run(self._transcribe(np.zeros(SAMPLE_RATE // 2, np.float32), ""), timeout_s, start)
        return time.monotonic() - start

    def describe(self, *, timeout_s: float = 5.0) -> list[str]:
        """Names of the speech-to-text programs and models the server offers (for ``sttkb remote test``)."""
        start = time.monotonic()
        info: Info = self._run(self._describe(), timeout_s, start)
        names = []
        for program in info.asr:
            models = ", ".join(m.name for m in program.models if getattr(m, "installed", True))
            names.append(f"{program.name} ({models})" if models else program.name)
        return names

    # -- the protocol ------------------------------------------------------------------------------------------
    def _run(self, work, timeout_s: float, start: float):
        sock = connect(self.url, timeout_s=timeout_s, allow_public_plain=self.allow_public_plain)
        remaining = max(0.001, timeout_s - (time.monotonic() - start))
        sock.setblocking(False)

        async def session():
            reader, writer = await asyncio.open_connection(sock=sock)
            try:
                return await asyncio.wait_for(work(reader, writer), remaining)
            finally:
                writer.close()

        try:
            return asyncio.run(session())
        except (TimeoutError, asyncio.TimeoutError) as e:
            raise RemoteTimeout(f"{self.url}: no answer within {timeout_s:.1f} s") from e
        except RemoteError:
            raise
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            raise RemoteUnreachable(f"{self.url}: the connection broke ({e.__class__.__name__})") from e
        except OSError as e:
            raise RemoteUnreachable(f"{self.url}: {e.strerror or e}") from e
        finally:
            sock.close()

    def _transcribe(self, samples: np.ndarray, prompt: str):
        pcm = pcm16(samples)

        async def work(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
            context = {"prompt": prompt} if prompt else None
            await async_write_event(Transcribe(language=self.language, context=context).event(), writer)
            fmt = dict(rate=SAMPLE_RATE, width=2, channels=1)
            await async_write_event(AudioStart(**fmt).event(), writer)
            step = 2 * CHUNK_SAMPLES
            for i in range(0, len(pcm), step):
                await async_write_event(AudioChunk(audio=pcm[i:i + step], **fmt).event(), writer)
            await async_write_event(AudioStop().event(), writer)
            while True:
                event = await self._read(reader)
                if Transcript.is_type(event.type):
                    text = event.data.get("text")
                    if not isinstance(text, str):
                        raise RemoteGarbled(f"{self.url}: a transcript event without text")
                    return text
                log.debug("wyoming: skipping a %r event while waiting for the transcript", event.type)
        return work

    def _describe(self):
        async def work(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Info:
            await async_write_event(Describe().event(), writer)
            while True:
                event = await self._read(reader)
                if Info.is_type(event.type):
                    try:
                        return Info.from_event(event)
                    except Exception as e:   # the wyoming package's own parser refused the server's info
                        raise RemoteGarbled(f"{self.url}: an info event it cannot read ({e})") from e
        return work

    async def _read(self, reader: asyncio.StreamReader) -> Event:
        event = await async_read_event(reader)
        if event is None:
            raise RemoteUnreachable(f"{self.url}: the server closed the connection or sent something that is not "
                                    f"Wyoming")
        if WyomingError.is_type(event.type):
            error = WyomingError.from_event(event)
            raise RemoteRefused(f"{self.url}: the server reports an error: {error.text}"
                                + (f" ({error.code})" if error.code else ""))
        return event

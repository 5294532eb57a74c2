"""The microphone, through PortAudio (pyaudio).

PortAudio calls :meth:`MicSource._callback` on its own thread for every buffer. The callback never blocks: it
puts the raw bytes into a bounded queue (``queue_seconds`` of audio) and returns. If the queue is full the
buffer is dropped and counted; PortAudio's own input-overflow flag is counted too. The consumer
(:meth:`MicSource.chunks`) converts to float, down-mixes and resamples to 16 kHz (soxr, streaming) when the
device cannot capture at 16 kHz.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from sttkb.audio import SAMPLE_RATE, MicError
from sttkb.audio.levels import from_int16_bytes
from sttkb.config.audio import AudioSettings

log = logging.getLogger(__name__)

PA_INT16 = 8              # pyaudio.paInt16
PA_CONTINUE = 0           # pyaudio.paContinue
PA_INPUT_OVERFLOW = 2     # pyaudio.paInputOverflow
PA_INPUT_UNDERFLOW = 1    # pyaudio.paInputUnderflow
GET_TIMEOUT_S = 0.1
"""How often :meth:`MicSource.chunks` looks at the stop flag while waiting for audio (seconds)."""
OVERFLOW_LOG_INTERVAL_S = 30.0
"""After the first overflow warning, at most one more per this many seconds (a device that overflows on every
buffer must not flood the log)."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    """Most input channels the device offers."""
    default_rate: int
    """Its default sample rate (hertz)."""


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for a moment: PortAudio's ALSA/JACK probing prints dozens of
    C-level lines that mean nothing to a user."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _pyaudio():
    try:
        import pyaudio
    except ImportError as e:  # pragma: no cover - a dependency
        raise MicError("pyaudio is not installed: run the set-up again (it needs portaudio19-dev)") from e
    with quiet_stderr():
        return pyaudio.PyAudio()


def list_input_devices(pa) -> list[InputDevice]:
    """Every device with at least one input channel."""
    out = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if int(info.get("maxInputChannels", 0)) > 0:
            out.append(InputDevice(i, str(info.get("name", f"device {i}")), int(info["maxInputChannels"]),
                                   int(float(info.get("defaultSampleRate", SAMPLE_RATE)))))
    return out


def find_input_device(pa, wanted: str) -> InputDevice:
    """``wanted``: "" = the system default input, a number = that index, else a case-insensitive name substring."""
    devices = list_input_devices(pa)
    if not devices:
        raise MicError("no microphone found: plug one in (check with `arecord -l`), then try again")
    if not wanted:
        try:
            info = pa.get_default_input_device_info()
            index = int(info["index"])
        except (IOError, OSError, KeyError):
            return devices[0]
        return next((d for d in devices if d.index == index), devices[0])
    if wanted.strip().isdigit():
        index = int(wanted)
        for d in devices:
            if d.index == index:
                return d
        raise MicError(f"audio.device = {wanted!r}: no input device with that index; "
                       f"`sttkb dictate --list-devices` shows them")
    matches = [d for d in devices if wanted.lower() in d.name.lower()]
    if not matches:
        names = ", ".join(f"{d.index}: {d.name}" for d in devices)
        raise MicError(f"audio.device = {wanted!r}: no input device has that in its name (inputs: {names})")
    if len(matches) > 1:
        log.info("audio.device %r matches %d devices; using %d: %s", wanted, len(matches), matches[0].index,
                 matches[0].name)
    return matches[0]


def _supports(pa, device: InputDevice, rate: int, channels: int) -> bool:
    try:
        return bool(pa.is_format_supported(rate, input_device=device.index, input_channels=channels,
                                           input_format=PA_INT16))
    except ValueError:
        return False


class MicSource:
    """A PortAudio input stream as an :class:`~sttkb.audio.sources.AudioSource` (16 kHz mono float32 chunks).

    ``pa_factory`` builds the ``pyaudio.PyAudio`` object (tests pass a fake: there is no microphone in CI).
    """

    def __init__(self, settings: AudioSettings | None = None, *, pa_factory: Callable[[], object] = _pyaudio) -> None:
        self.settings = s = settings or AudioSettings()
        self._pa = pa_factory()
        try:
            self.device = find_input_device(self._pa, s.device)
            self.capture_rate = self._choose_rate()
            self.channels = 1 if _supports(self._pa, self.device, self.capture_rate, 1) else min(2, self.device.channels)
            self.frames_per_buffer = s.frames_per_buffer
            max_buffers = max(2, int(s.queue_seconds * self.capture_rate / self.frames_per_buffer))
            self._queue: queue.Queue[bytes] = queue.Queue(maxsize=max_buffers)
            self._resampler = None
            if self.capture_rate != SAMPLE_RATE:
                import soxr
                self._resampler = soxr.ResampleStream(self.capture_rate, SAMPLE_RATE, 1, dtype="float32")
            self._stop = threading.Event()
            self.input_overflows = 0
            """Buffers PortAudio flagged as overflowed (the device lost audio before we got it)."""
            self.queue_overflows = 0
            """Buffers dropped because the consumer was more than ``queue_seconds`` behind."""
            self.dropped_s = 0.0
            """Audio dropped on queue overflow (seconds)."""
            self._stream = self._open()
        except BaseException:
            self._terminate()
            raise
        log.info("microphone %d: %s at %d Hz, %d channel(s)%s", self.device.index, self.device.name,
                 self.capture_rate, self.channels, "" if self._resampler is None else " (resampled to 16 kHz)")

    def _choose_rate(self) -> int:
        s = self.settings
        if s.capture_rate:
            if not _supports(self._pa, self.device, s.capture_rate, 1) and not _supports(
                    self._pa, self.device, s.capture_rate, min(2, self.device.channels)):
                raise MicError(f"audio.capture_rate = {s.capture_rate}: {self.device.name} cannot capture at "
                               f"that rate; set 0 to pick automatically")
            return s.capture_rate
        if _supports(self._pa, self.device, SAMPLE_RATE, 1):
            return SAMPLE_RATE
        return self.device.default_rate

    def _open(self):
        try:
            return self._pa.open(format=PA_INT16, channels=self.channels, rate=self.capture_rate, input=True,
                                 input_device_index=self.device.index, frames_per_buffer=self.frames_per_buffer,
                                 stream_callback=self._callback, start=True)
        except (IOError, OSError, ValueError) as e:
            raise MicError(f"cannot open the microphone {self.device.name!r} ({e}); is another program using "
                           f"it? Pick another with audio.device (`sttkb dictate --list-devices`)") from e

    # PortAudio's thread: never block, never raise.
    def _callback(self, in_data, frame_count, time_info, status_flags):
        if status_flags & PA_INPUT_OVERFLOW:
            self.input_overflows += 1
        if in_data:
            try:
                self._queue.put_nowait(in_data)
            except queue.Full:
                self.queue_overflows += 1
                self.dropped_s += frame_count / self.capture_rate
        return (None, PA_CONTINUE)

    @property
    def overflows(self) -> int:
        return self.input_overflows + self.queue_overflows

    def _convert(self, data: bytes, last: bool = False) -> np.ndarray:
        audio = from_int16_bytes(data, self.channels)
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio, last=last)
        return np.asarray(audio, dtype=np.float32)

    def _log_overflows(self, reported: int) -> int:
        """Warn about buffers lost since ``reported``; returns the new count."""
        parts = [f"{self.input_overflows} by the device"] if self.input_overflows else []
        if self.queue_overflows:
            parts.append(f"{self.queue_overflows} because transcription fell {self.settings.queue_seconds:.0f} s "
                         f"behind")
        log.warning("microphone overflow: %d buffer(s) lost since the last report, %d so far (%s)",
                    self.overflows - reported, self.overflows, ", ".join(parts))
        return self.overflows

    def chunks(self) -> Iterator[np.ndarray]:
        reported, quiet_until = 0, 0.0
        try:
            while not self._stop.is_set():
                try:
                    data = self._queue.get(timeout=GET_TIMEOUT_S)
                except queue.Empty:
                    if self._stream is not None and not self._stream.is_active() and self._queue.empty():
                        break
                    continue
                if self.overflows > reported and time.monotonic() >= quiet_until:
                    reported = self._log_overflows(reported)
                    quiet_until = time.monotonic() + OVERFLOW_LOG_INTERVAL_S
                chunk = self._convert(data)
                if chunk.size:
                    yield chunk
            # Audio already captured before stop() still belongs to the utterance (button released mid-word).
            while True:
                try:
                    data = self._queue.get_nowait()
                except queue.Empty:
                    break
                chunk = self._convert(data)
                if chunk.size:
                    yield chunk
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if len(tail):
                    yield np.asarray(tail, dtype=np.float32)
        finally:
            if self.overflows > reported:
                self._log_overflows(reported)
            self.close()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop and close the stream and PortAudio (safe twice)."""
        self._stop.set()
        stream, self._stream = getattr(self, "_stream", None), None
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except (IOError, OSError):
                pass
        self._terminate()

    def _terminate(self) -> None:
        pa, self._pa = getattr(self, "_pa", None), None
        if pa is not None:
            try:
                pa.terminate()
            except Exception:  # noqa: BLE001 - closing, nothing to do about it
                pass

"""The microphone source against a fake PortAudio.

There is no microphone (and no sound server) in CI, so ``pyaudio.PyAudio`` is replaced by a fake that lists
devices, says which formats they support and hands the stream callback to the test, which then plays the part of
PortAudio's audio thread. What is tested is our code around it: device choice, the 16 kHz / native-rate
decision, int16 → float, down-mixing, resampling, the non-blocking callback and the overflow accounting.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sttkb.audio import MicError
from sttkb.audio.mic import PA_CONTINUE, PA_INPUT_OVERFLOW, MicSource, find_input_device, list_input_devices
from sttkb.config.audio import AudioSettings


class FakeStream:
    def __init__(self, callback, **kw):
        self.callback = callback
        self.kw = kw
        self.active = True
        self.closed = False

    def is_active(self):
        return self.active

    def stop_stream(self):
        self.active = False

    def close(self):
        self.closed = True


class FakePyAudio:
    """Devices: 0 = an output only, 1 = "USB PnP Sound Device" (48 kHz only, mono), 2 = "Built-in Mic" (16 kHz,
    stereo only)."""

    DEVICES = [
        {"index": 0, "name": "HDMI out", "maxInputChannels": 0, "defaultSampleRate": 48000.0},
        {"index": 1, "name": "USB PnP Sound Device: Audio (hw:1,0)", "maxInputChannels": 1,
         "defaultSampleRate": 48000.0},
        {"index": 2, "name": "Built-in Mic", "maxInputChannels": 2, "defaultSampleRate": 16000.0},
    ]
    SUPPORTED = {1: {(48000, 1)}, 2: {(16000, 2), (44100, 2)}}

    def __init__(self, default=2):
        self.default = default
        self.streams: list[FakeStream] = []
        self.terminated = False

    def get_device_count(self):
        return len(self.DEVICES)

    def get_device_info_by_index(self, i):
        return dict(self.DEVICES[i])

    def get_default_input_device_info(self):
        return dict(self.DEVICES[self.default])

    def is_format_supported(self, rate, input_device, input_channels, input_format):
        if (rate, input_channels) in self.SUPPORTED.get(input_device, set()):
            return True
        raise ValueError("Invalid sample rate")  # what pyaudio does

    def open(self, *, stream_callback, **kw):
        stream = FakeStream(stream_callback, **kw)
        self.streams.append(stream)
        return stream

    def terminate(self):
        self.terminated = True


def pcm(samples: np.ndarray, channels: int = 1) -> bytes:
    data = np.repeat(samples[:, None], channels, axis=1).reshape(-1) if channels > 1 else samples
    return (np.clip(data, -1, 1) * 32767).astype("<i2").tobytes()


def tone(freq, seconds, rate):
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def test_device_listing_and_choice():
    pa = FakePyAudio()
    assert [d.index for d in list_input_devices(pa)] == [1, 2]
    assert find_input_device(pa, "").name == "Built-in Mic"
    assert find_input_device(pa, "usb pnp").index == 1
    assert find_input_device(pa, "1").index == 1
    with pytest.raises(MicError, match="no input device has that in its name.*1: USB PnP"):
        find_input_device(pa, "Blue Yeti")
    with pytest.raises(MicError, match="no input device with that index"):
        find_input_device(pa, "0")


def test_captures_at_16k_when_the_device_can():
    pa = FakePyAudio()
    mic = MicSource(AudioSettings(device="Built-in"), pa_factory=lambda: pa)
    assert mic.capture_rate == 16000 and mic.channels == 2  # this device has no mono mode: down-mixed
    stream = pa.streams[0]
    assert stream.kw["rate"] == 16000 and stream.kw["input_device_index"] == 2
    x = tone(1000, 0.3, 16000)
    stream.callback(pcm(x, 2), len(x), {}, 0)
    mic.stop()
    out = np.concatenate(list(mic.chunks()))
    assert np.allclose(out, x, atol=1e-4)
    assert stream.closed and pa.terminated


def test_a_48k_only_mic_is_captured_natively_and_resampled():
    pa = FakePyAudio()
    mic = MicSource(AudioSettings(device="USB"), pa_factory=lambda: pa)
    assert mic.capture_rate == 48000 and mic.channels == 1
    stream = pa.streams[0]
    x = tone(1000, 1.0, 48000)
    for i in range(0, len(x), 1440):
        assert stream.callback(pcm(x[i:i + 1440]), 1440, {}, 0) == (None, PA_CONTINUE)
    mic.stop()
    out = np.concatenate(list(mic.chunks()))
    assert len(out) == pytest.approx(16000, abs=2)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert np.argmax(spectrum) * 16000 / len(out) == pytest.approx(1000, abs=2)


def test_overflows_are_counted_and_the_callback_never_blocks():
    pa = FakePyAudio()
    # 5 s of queue at 16 kHz / 4000-sample buffers = 20 buffers.
    mic = MicSource(AudioSettings(device="Built-in", frames_per_buffer=4000, queue_seconds=5.0),
                    pa_factory=lambda: pa)
    stream = pa.streams[0]
    buf = pcm(np.zeros(4000), 2)
    start = time.monotonic()
    for i in range(30):  # nobody reads: the last 10 do not fit
        stream.callback(buf, 4000, {}, PA_INPUT_OVERFLOW if i == 3 else 0)
    assert time.monotonic() - start < 0.5
    assert mic.queue_overflows == 10
    assert mic.input_overflows == 1
    assert mic.overflows == 11
    assert mic.dropped_s == pytest.approx(2.5)
    mic.stop()
    assert sum(len(c) for c in mic.chunks()) == 20 * 4000


def test_a_device_that_overflows_on_every_buffer_does_not_flood_the_log(monkeypatch, caplog):
    """Seen in the qemu VM (tests/daemon/test_run_vm.py): a capture device flagged overflow on nearly every buffer
    and the daemon wrote one warning per buffer (1500 lines in 5 minutes). Now: the first at once, then one per
    OVERFLOW_LOG_INTERVAL_S saying how many since, and the rest when the stream ends."""
    import sttkb.audio.mic as mic_module
    monkeypatch.setattr(mic_module, "OVERFLOW_LOG_INTERVAL_S", 0.3)
    pa = FakePyAudio()
    mic = MicSource(AudioSettings(device="Built-in"), pa_factory=lambda: pa)
    stream = pa.streams[0]
    buf = pcm(np.zeros(480), 2)
    chunks = mic.chunks()
    with caplog.at_level("WARNING", logger="sttkb.audio.mic"):
        for _ in range(50):
            stream.callback(buf, 480, {}, PA_INPUT_OVERFLOW)
            next(chunks)
        time.sleep(0.35)
        for _ in range(10):
            stream.callback(buf, 480, {}, PA_INPUT_OVERFLOW)
            next(chunks)
        stream.callback(buf, 480, {}, PA_INPUT_OVERFLOW)
        next(chunks)
        mic.stop()
        list(chunks)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "microphone overflow: 1 buffer(s) lost since the last report, 1 so far (1 by the device)",
        "microphone overflow: 50 buffer(s) lost since the last report, 51 so far (51 by the device)",
        "microphone overflow: 10 buffer(s) lost since the last report, 61 so far (61 by the device)",
    ]


def test_audio_captured_before_stop_is_not_lost():
    """Button released while the consumer is still busy: what PortAudio already delivered is still handed out."""
    pa = FakePyAudio()
    mic = MicSource(AudioSettings(), pa_factory=lambda: pa)
    got = []

    def consume():
        for chunk in mic.chunks():
            got.append(len(chunk))
            time.sleep(0.01)

    t = threading.Thread(target=consume)
    t.start()
    for _ in range(50):
        pa.streams[0].callback(pcm(np.zeros(480), 2), 480, {}, 0)
    mic.stop()
    t.join(5)
    assert sum(got) == 50 * 480


def test_unknown_rate_setting_is_refused_clearly():
    pa = FakePyAudio()
    with pytest.raises(MicError, match="audio.capture_rate = 22050"):
        MicSource(AudioSettings(device="USB", capture_rate=22050), pa_factory=lambda: pa)
    assert pa.terminated


def test_no_microphone_at_all():
    class Empty(FakePyAudio):
        DEVICES = [FakePyAudio.DEVICES[0]]
    with pytest.raises(MicError, match="no microphone found"):
        MicSource(AudioSettings(), pa_factory=Empty)

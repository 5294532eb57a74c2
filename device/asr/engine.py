"""whisper.cpp (through pywhispercpp) turning one speech segment into text.

The model is always loaded from a file path: ``pywhispercpp.model.Model`` downloads from the network when given
a name, which must never happen on the device.

Per segment: greedy decoding by default (beam search optional, also call by call), whisper.cpp's temperature
fallback, its no-speech / log-probability thresholds, an initial prompt (vocabulary + previous text), a token budget
proportional to the segment's duration, a fixed encoder window (``audio_ctx``) and the repetition guard. A
segment whose text is mostly loop, or whose decode runs out of its token budget, is decoded once more with
temperature; if that fails the same way it is dropped.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sttkb.asr import cpu_variant
from sttkb.asr.errors import DecodeAborted, ModelLoadError, ModelSettingsError
from sttkb.asr.guard import detect_loop, max_tokens_for
from sttkb.asr.priority import lower_decoder_thread
from sttkb.audio import SAMPLE_RATE
from sttkb.audio.segment import Segment
from sttkb.config.asr import AsrSettings
from sttkb.errors import SttkbError

log = logging.getLogger(__name__)

FRAME_S = 0.02
"""Length of one encoder frame (seconds): audio_ctx 1500 = 30 s."""
FULL_AUDIO_CTX = 1500
"""Encoder frames of a full 30 s window."""
WINDOW_MARGIN_S = 1.0
"""Room left between the longest segment and the end of the encoder window (seconds)."""
MIN_INPUT_S = 1.05
"""whisper.cpp refuses input shorter than 1 s: shorter segments are padded with zeros to this (seconds)."""
LOOP_RETRY_FRACTION = 0.5
"""A segment whose text is at least this share loop is retried once with temperature, then dropped."""
RETRY_TEMPERATURE = 0.4
"""Sampling temperature of the retry."""
TEMPERATURE_INCREMENT = 0.2
"""whisper.cpp's fallback step when a decode fails its entropy/log-probability thresholds."""
GREEDY_BEST_OF = 2
"""Candidates sampled per fallback temperature in greedy mode (whisper.cpp's default is 5: slow on a Pi)."""


def _strategy(beam: bool):
    import _pywhispercpp as pw
    s = pw.whisper_sampling_strategy
    return s.WHISPER_SAMPLING_BEAM_SEARCH if beam else s.WHISPER_SAMPLING_GREEDY


@dataclass(frozen=True)
class AsrResult:
    """What the recognizer made of one segment."""

    text: str
    """The text to use (after the repetition guard); empty when dropped or nothing was said."""
    dropped_reason: str | None = None
    """Why nothing is used: "loop" (mostly repetition twice), "runaway" (ran out of its token budget twice),
    "empty" (whisper.cpp heard no speech) or None."""
    raw_text: str = ""
    """whisper.cpp's own output of the last decode, before the guard."""
    loop_fraction: float = 0.0
    """Share of the raw text that was loop repetition (0..1)."""
    retried: bool = False
    """True if the segment was decoded a second time because it looped."""
    asr_s: float = 0.0
    """Wall time spent in whisper.cpp for this segment (seconds)."""
    audio_s: float = 0.0
    """Length of the audio decoded (seconds)."""
    end_mark_p: float | None = None
    """How sure the recognizer was of the sentence end (". ! ?") it closed the text with: that token's probability
    (0..1); None when the text does not end with one, or the recognizer does not say."""
    engine: str = "local"
    """Who made the text: "local" (this box's whisper.cpp) or "remote" (the speech server of ``[asr] engine``)."""
    rtt_s: float | None = None
    """The speech server's round trip for this segment when its text is used (seconds); None otherwise."""
    remote_error: str | None = None
    """Why the server's text was not used and this box's model decoded the segment instead: "unreachable",
    "timeout", "refused", "tls", "address", "garbled", "loop", "error" (anything unforeseen) or "down" (the server
    had failed and is not back yet); None when the server's text was used or no server is configured."""


def window_seconds(audio_ctx: int) -> float:
    """Audio the encoder window holds for an ``audio_ctx`` (0 = full 30 s)."""
    ctx = FULL_AUDIO_CTX if audio_ctx <= 0 else min(audio_ctx, FULL_AUDIO_CTX)
    return ctx * FRAME_S


def max_segment_seconds(audio_ctx: int) -> float:
    """Longest segment that fits the encoder window with a margin (seconds): 768 → 14.36 s."""
    return window_seconds(audio_ctx) - WINDOW_MARGIN_S


def cpu_threads(configured: int) -> int:
    """Threads for whisper.cpp: the setting, or every core this process may use (0)."""
    if configured > 0:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# -- whisper.cpp's C-level log: into Python logging at DEBUG, never onto the terminal --------------------------
_log_lock = threading.Lock()
_log_installed = False
_cpp_log = logging.getLogger("whisper.cpp")


def _forward_cpp_log(level: int, text: str) -> None:
    text = text.rstrip()
    if text and text != ".":
        _cpp_log.debug("%s", text)


def install_cpp_log_handler() -> None:
    """Route whisper.cpp's log lines to the ``whisper.cpp`` logger at DEBUG (once per process).

    The callback is removed again at interpreter exit: a Python callback called while the interpreter is
    finalizing (a model freed late) would abort the process.
    """
    global _log_installed
    cpu_variant.activate()          # before whisper.cpp's libraries are first loaded
    import _pywhispercpp as pw
    with _log_lock:
        if _log_installed:
            return
        pw.whisper_log_set(_forward_cpp_log)
        atexit.register(pw.whisper_log_set, None)
        # pywhispercpp logs "Transcribing ..." / "Inference time" at INFO for every call: keep that for -v (debug).
        if logging.getLogger("pywhispercpp").level == logging.NOTSET:
            logging.getLogger("pywhispercpp").setLevel(logging.WARNING)
        _log_installed = True


def default_model_factory(model_path: str, **params):
    """Build the pywhispercpp model (the one place it is constructed; tests may pass their own factory).

    The file is checked first: whisper.cpp "loads" a truncated file and crashes (SIGSEGV) on garbage.
    """
    from pywhispercpp.model import Model

    from sttkb.models.validate import check_loadable
    check_loadable(Path(model_path))
    return Model(model_path, redirect_whispercpp_logs_to=None, **params)


class WhisperEngine:
    """One loaded whisper.cpp model. Not thread-safe: one caller at a time (the chain's transcribe loop)."""

    def __init__(self, model_path: str | os.PathLike, settings: AsrSettings | None = None, *,
                 model_factory=default_model_factory) -> None:
        self.settings = s = settings or AsrSettings()
        self.yield_cpu = False
        """Decode at a lower priority than capture and typing (:mod:`sttkb.asr.priority`): the box's daemon turns
        it on (nothing else there competes for the CPU, and the microphone must not starve); off elsewhere, where a
        lowered decoder would lose to every busy program on the machine."""
        path = Path(model_path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such model file; see `sttkb model list`, or leave models.name empty "
                                 f"to use the embedded default")
        self.model_path = path
        self.threads = cpu_threads(s.threads)
        install_cpp_log_handler()
        strategy = 0 if s.beam_size <= 1 else 1
        try:
            self._model = model_factory(
                str(path), params_sampling_strategy=strategy, n_threads=self.threads,
                print_progress=False, print_realtime=False, print_timestamps=False, print_special=False,
                no_context=True, suppress_blank=True, suppress_nst=True)
        except SttkbError:
            raise
        except Exception as e:  # pywhispercpp raises plain RuntimeError/ValueError on a bad file
            raise ModelLoadError(f"{path}: whisper.cpp cannot load this model ({e}); re-import it with "
                                 f"`sttkb model import`") from e
        if getattr(self._model, "_ctx", True) is None:
            raise ModelLoadError(f"{path}: whisper.cpp cannot load this model; re-import it with "
                                 f"`sttkb model import`")
        self.multilingual = self._is_multilingual()
        self._check_language()
        self.calls = 0
        """Segments decoded (whisper.cpp runs, retries included; warm-up not counted)."""
        self._last_end_mark_p: float | None = None
        self.audio_s = 0.0
        """Audio decoded (seconds)."""
        self.asr_s = 0.0
        """Wall time spent decoding (seconds)."""
        self.dropped = 0
        """Segments dropped as loops."""
        self.warmed_up = False

    # -- set-up ------------------------------------------------------------------------------------------
    def _is_multilingual(self) -> bool:
        try:
            import _pywhispercpp as pw
            return bool(pw.whisper_is_multilingual(self._model._ctx))
        except Exception:  # a test double without a context
            return not self.model_path.name.split("-")[0].endswith(".en")

    def _check_language(self) -> None:
        s = self.settings
        if not self.multilingual and s.language not in ("en", "auto"):
            raise ModelSettingsError(f"asr.language = {s.language!r}, but {self.model_path.name} is an "
                                     f"English-only model: set asr.language = \"en\" or import a multilingual model")
        if not self.multilingual and s.translate:
            log.warning("asr.translate is on, but %s is English-only: it already writes English",
                        self.model_path.name)

    @property
    def audio_ctx(self) -> int:
        return self.settings.audio_ctx

    @property
    def max_segment_s(self) -> float:
        """Longest segment this engine's encoder window holds (seconds)."""
        return max_segment_seconds(self.audio_ctx)

    def _params(self, duration_s: float, prompt: str, *, temperature: float = 0.0,
                beam_size: int | None = None) -> dict:
        """whisper.cpp's parameters for one call. ``beam_size``: this call's decoding (None: ``asr.beam_size``).

        The sampling strategy and both decoders' settings are set on every call (pywhispercpp keeps parameters
        between calls), so a beam call and a greedy call never leak into each other; a greedy call gets exactly
        what a model built for greedy decoding starts with, a beam call on a beam-configured engine what a model
        built for beam search starts with."""
        s = self.settings
        beam = s.beam_size if beam_size is None else beam_size
        multilingual = self.multilingual
        params = dict(
            language=(s.language if multilingual else "en"),
            translate=bool(s.translate and multilingual),
            n_threads=self.threads,
            audio_ctx=self.audio_ctx if 0 < self.audio_ctx < FULL_AUDIO_CTX else 0,
            max_tokens=max_tokens_for(duration_s, s.tokens_per_second),
            initial_prompt=prompt or "",
            temperature=temperature,
            temperature_inc=TEMPERATURE_INCREMENT if s.temperature_fallback and temperature == 0.0 else 0.0,
            no_speech_thold=s.no_speech_threshold,
            logprob_thold=s.logprob_threshold,
            single_segment=True,
            no_timestamps=True,
        )
        if beam > 1:
            params["strategy"] = _strategy(True)
            params["beam_search"] = {"beam_size": beam, "patience": -1.0}
            # samples per fallback temperature: as greedy decoding has them, or whisper.cpp's beam default (1)
            params["greedy"] = {"best_of": GREEDY_BEST_OF if s.beam_size <= 1 else -1}
        else:
            params["strategy"] = _strategy(False)
            params["greedy"] = {"best_of": GREEDY_BEST_OF}
            params["beam_search"] = {"beam_size": -1, "patience": -1.0}
        return params

    # -- decoding ----------------------------------------------------------------------------------------
    def _end_mark_p(self) -> float | None:
        """The probability of the last decode's closing ". ! ?" token; None when its text ends otherwise."""
        ctx = getattr(self._model, "_ctx", None)
        if ctx is None:
            return None
        import _pywhispercpp as pw
        n = pw.whisper_full_n_segments(ctx)
        if n == 0:
            return None
        eot = pw.whisper_token_eot(ctx)
        for i in range(pw.whisper_full_n_tokens(ctx, n - 1) - 1, -1, -1):
            if pw.whisper_full_get_token_id(ctx, n - 1, i) >= eot:
                continue                      # end of text, timestamps and other special tokens
            text = pw.whisper_full_get_token_text(ctx, n - 1, i).strip()
            return float(pw.whisper_full_get_token_p(ctx, n - 1, i)) if text[-1:] in (".", "!", "?") else None
        return None

    def _ran_out_of_tokens(self) -> bool:
        """True if the last decode stopped at the token budget instead of an end-of-text token: it was still
        producing text at twice the rate anyone speaks — a runaway (loop or invention)."""
        ctx = getattr(self._model, "_ctx", None)
        if ctx is None:
            return bool(getattr(self._model, "ran_out_of_tokens", False))  # test doubles
        import _pywhispercpp as pw
        n = pw.whisper_full_n_segments(ctx)
        if n == 0:
            return False
        count = pw.whisper_full_n_tokens(ctx, n - 1)
        if count == 0:
            return False
        return pw.whisper_full_get_token_id(ctx, n - 1, count - 1) != pw.whisper_token_eot(ctx)

    def _decode(self, audio: np.ndarray, prompt: str, temperature: float = 0.0, *, beam_size: int | None = None,
                abort: Callable[[], bool] | None = None, yield_cpu: bool = True,
                **overrides) -> tuple[str, float, bool]:
        """(text, seconds, ran out of tokens). ``overrides``: whisper.cpp parameters that :meth:`_params` also sets
        (pywhispercpp keeps parameters between calls, so only those may differ from one call to the next).

        ``yield_cpu`` (with :attr:`yield_cpu` on): the calling thread (and the compute threads whisper.cpp starts
        from it) first drops to a lower priority, so capture and typing win the CPU (:mod:`sttkb.asr.priority`);
        the warm-up at load, on whatever thread loads the model, does not.

        ``abort``: asked by whisper.cpp after the encoder and after every decoder step; once it says True the
        decode stops and :class:`DecodeAborted` is raised."""
        duration = len(audio) / SAMPLE_RATE
        if duration < MIN_INPUT_S:
            audio = np.concatenate([audio, np.zeros(int(MIN_INPUT_S * SAMPLE_RATE) - len(audio), np.float32)])
        params = self._params(duration, prompt, temperature=temperature, beam_size=beam_size)
        if not overrides.keys() <= params.keys():
            raise ValueError(f"the next decode would not reset {sorted(overrides.keys() - params.keys())}")
        params.update(overrides)
        stopped = False
        if abort is not None:
            def stop_now() -> bool:
                nonlocal stopped
                stopped = stopped or bool(abort())
                return stopped
            params["abort_callback"] = stop_now
        if yield_cpu and self.yield_cpu:
            lower_decoder_thread()
        start = time.perf_counter()
        segments = self._model.transcribe(audio, **params)   # (pywhispercpp sets or clears the callback each call)
        spent = time.perf_counter() - start
        self.calls += 1
        self.audio_s += duration
        self.asr_s += spent
        if stopped:
            raise DecodeAborted(spent)
        text = " ".join(seg.text.strip() for seg in segments if seg.text.strip())
        self._last_end_mark_p = self._end_mark_p() if text else None
        return text, spent, bool(text) and self._ran_out_of_tokens()

    def transcribe(self, segment: Segment | np.ndarray, prompt: str = "") -> AsrResult:
        """Decode one segment (or raw 16 kHz float32 samples). ``prompt``: see :mod:`sttkb.asr.prompt`.

        A decode that is mostly loop, or that runs out of its token budget (a runaway the guard cannot see yet,
        e.g. a whole sentence repeated once and cut off), is decoded once more with temperature; if that fails
        the same way the segment is dropped (logged) rather than typing invented text.
        """
        return self.recognize(segment, prompt)

    def recognize(self, segment: Segment | np.ndarray, prompt: str = "", *, beam_size: int | None = None,
                  abort: Callable[[], bool] | None = None) -> AsrResult:
        """:meth:`transcribe` with this call's decoding: ``beam_size`` (None: ``asr.beam_size``; 1 = greedy), and
        ``abort``, asked while whisper.cpp works: once it says True the decode (or its retry) stops and
        :class:`~sttkb.asr.errors.DecodeAborted` is raised. Same guards, same retry, same result."""
        audio = segment.samples if isinstance(segment, Segment) else segment
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        duration = len(audio) / SAMPLE_RATE
        if duration > window_seconds(self.audio_ctx):
            log.warning("a %.1f s segment is longer than the %.1f s encoder window: its end is not heard",
                        duration, window_seconds(self.audio_ctx))
        raw, spent, runaway = self._decode(audio, prompt, beam_size=beam_size, abort=abort)
        loop = detect_loop(raw)
        retried = False
        if loop.loop_fraction >= LOOP_RETRY_FRACTION or runaway:
            why = "ran out of tokens" if runaway else f"came out {100 * loop.loop_fraction:.0f}% loop"
            log.info("segment of %.1f s %s; decoding again with temperature %.1f", duration, why,
                     RETRY_TEMPERATURE)
            log.debug("first decode: %r", raw)
            try:
                raw, more, runaway = self._decode(audio, prompt, temperature=RETRY_TEMPERATURE, beam_size=beam_size,
                                                  abort=abort)
            except DecodeAborted as e:
                raise DecodeAborted(spent + e.spent_s) from None
            spent += more
            retried = True
            loop = detect_loop(raw)
            if loop.loop_fraction >= LOOP_RETRY_FRACTION or runaway:
                self.dropped += 1
                reason = "runaway" if runaway and loop.loop_fraction < LOOP_RETRY_FRACTION else "loop"
                log.warning("dropped a %.1f s segment: whisper.cpp %s twice", duration,
                            "ran out of tokens" if reason == "runaway" else "looped")
                log.debug("dropped text %r (loop unit %r)", raw, loop.unit)  # transcripts only at DEBUG
                return AsrResult(text="", dropped_reason=reason, raw_text=raw, loop_fraction=loop.loop_fraction,
                                 retried=True, asr_s=spent, audio_s=duration)
        if loop.found:
            log.info("cut a repetition loop (%.0f%% of the text)", 100 * loop.loop_fraction)
        text = loop.trimmed.strip()
        log.debug("segment %.1f s -> %r (%.2f s)", duration, text, spent)
        return AsrResult(text=text, dropped_reason=None if text else "empty", raw_text=raw,
                         end_mark_p=(self._last_end_mark_p if text.endswith((".", "!", "?")) and not loop.found
                                     else None),
                         loop_fraction=loop.loop_fraction, retried=retried, asr_s=spent, audio_s=duration)

    def decode_private(self, segment: Segment | np.ndarray, *, max_tokens: int) -> str:
        """A quick, fixed decode of a few private words (a spoken pairing code): no prompt, no temperature
        fallback, no retry, at most ``max_tokens`` tokens. whisper.cpp's text, "" when it heard nothing.

        Unlike :meth:`transcribe`, nothing of the text is logged, not even at DEBUG: it is a secret.
        """
        audio = segment.samples if isinstance(segment, Segment) else segment
        text, _, _ = self._decode(np.ascontiguousarray(audio, dtype=np.float32), "", temperature_inc=0.0,
                                  max_tokens=max_tokens)
        return text

    def warm_up(self) -> float:
        """Run one short decode so the first real segment does not pay for allocations; returns seconds."""
        start = time.perf_counter()
        noise = (np.random.default_rng(0).standard_normal(int(MIN_INPUT_S * SAMPLE_RATE)) * 1e-3).astype(np.float32)
        calls, audio_s, asr_s = self.calls, self.audio_s, self.asr_s
        self._decode(noise, "", yield_cpu=False)
        self.calls, self.audio_s, self.asr_s = calls, audio_s, asr_s
        self.warmed_up = True
        spent = time.perf_counter() - start
        log.debug("warm-up took %.2f s", spent)
        return spent

    def close(self) -> None:
        """Free the model (safe twice)."""
        model, self._model = getattr(self, "_model", None), None
        if model is not None:
            del model

    def __enter__(self) -> WhisperEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Check a converted model with whisper.cpp itself: it must load and transcribe the reference clip without
producing nothing or a repetition loop. Optionally report WER on the user's own recording (``--check``)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from sttkb.audio.files import read_audio
from sttkb.models.errors import ValidationFailedError
from sttkb.models.wer import word_error_rate

log = logging.getLogger(__name__)

LOOP_REFUSE_FRACTION = 0.2
"""Refuse a model when more than this share of its reference transcript is a repetition loop."""
VALIDATION_THREADS = 2


def reference_clip() -> tuple[Path, str]:
    """The clip shipped in device/models/data (espeak-ng, 16 kHz mono) and its text."""
    data = resources.files("sttkb.models") / "data"
    return Path(str(data / "reference.wav")), (data / "reference.txt").read_text(encoding="utf-8").strip()


@dataclass(frozen=True)
class CheckResult:
    audio: str
    wer: float
    errors: int
    reference_words: int
    seconds: float


@dataclass(frozen=True)
class ValidationResult:
    ok: bool
    text: str
    """Transcript of the reference clip (synthetic speech, not private)."""
    reference_wer: float
    loop_fraction: float
    load_seconds: float
    transcribe_seconds: float
    check: CheckResult | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _transcribe(model, audio, language: str) -> tuple[str, float]:
    from pywhispercpp.utils import redirect_stderr
    start = time.monotonic()
    with redirect_stderr(to=None):          # whisper.cpp's own chatter (timings, language detection)
        segments = model.transcribe(audio, language=language)
    return " ".join(s.text.strip() for s in segments).strip(), time.monotonic() - start


def check_loadable(path: Path) -> None:
    """Raise a models Error unless ``path`` is a complete ggml whisper model with the tensor types whisper.cpp
    expects. Cheap (reads only the index). Needed because whisper.cpp "loads" a truncated file without an error
    and then crashes the process (SIGSEGV) on the first transcription."""
    from sttkb.models.ggml import GgmlFile, check_against_whisper_layout
    from sttkb.models.quant import check_tensor_types
    with GgmlFile(path) as f:
        check_against_whisper_layout(f)
        check_tensor_types(f)


def load_model(path: Path, threads: int = VALIDATION_THREADS):
    """pywhispercpp Model from a FILE PATH (a bare name would make pywhispercpp download a model)."""
    from sttkb.asr import cpu_variant
    cpu_variant.activate()
    from pywhispercpp.model import Model
    if not path.is_file():
        raise ValidationFailedError(f"{path}: the converted model file is missing")
    check_loadable(path)
    try:
        return Model(str(path), n_threads=threads, print_progress=False, print_realtime=False,
                     redirect_whispercpp_logs_to=None)
    except Exception as e:        # whisper.cpp load failures surface as assorted exceptions
        raise ValidationFailedError(f"whisper.cpp could not load the converted model ({e}); the source is not a "
                                    f"Whisper model it supports") from e


def validate_model(path: Path, english_only: bool, check: tuple[Path, str] | None = None,
                   threads: int = VALIDATION_THREADS) -> ValidationResult:
    """Load ``path`` with whisper.cpp and transcribe the reference clip; raise ValidationFailedError when the
    output is empty or mostly a loop. ``check`` = (audio file, its true text) → WER in the result."""
    from sttkb.asr.guard import detect_loop

    clip, clip_text = reference_clip()
    audio = read_audio(clip)
    check_audio = read_audio(check[0]) if check else None     # fail on a bad --check file before loading
    start = time.monotonic()
    model = load_model(path, threads)
    load_s = time.monotonic() - start
    text, transcribe_s = _transcribe(model, audio, "en")
    log.debug("reference clip transcript: %r", text)
    loop = detect_loop(text)
    ref_wer = word_error_rate(clip_text, text).wer
    if not text:
        raise ValidationFailedError("the converted model produced no text for the reference clip: it is broken "
                                    "(or not trained for English); nothing was imported")
    if loop.loop_fraction > LOOP_REFUSE_FRACTION:
        raise ValidationFailedError(
            f"the converted model loops on the reference clip ({loop.loop_fraction:.0%} repetition of "
            f"{loop.unit!r}); nothing was imported. Try a higher-precision --quant (q8_0 or f16)")
    check_result = None
    if check is not None:
        hyp, check_s = _transcribe(model, check_audio, "en" if english_only else "auto")
        w = word_error_rate(check[1], hyp)
        check_result = CheckResult(str(check[0]), w.wer, w.errors, w.reference_words, check_s)
    return ValidationResult(True, text, ref_wer, loop.loop_fraction, load_s, transcribe_s, check_result)

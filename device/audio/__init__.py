"""Audio in: files and microphones → 16 kHz mono float32, and the VAD segmenter that cuts speech out of it."""

from __future__ import annotations

from sttkb.errors import SttkbError

SAMPLE_RATE = 16000
"""The rate everything after the sources works at (hertz): what whisper.cpp expects."""


class Error(SttkbError):
    """Base of the audio errors."""


class AudioFileError(Error, OSError):
    """An audio file is missing, unreadable or in a format we cannot decode."""


class MicError(Error, OSError):
    """The microphone cannot be found or opened."""

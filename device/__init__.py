"""sttkb device side: listen -> cut speech (VAD) -> transcribe (whisper.cpp) -> clean text.

Nothing in this package knows about HID; turning text into keystrokes is the job of ``gadget``.
"""

__version__ = "0.1.0"

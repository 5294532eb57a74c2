"""``sttkb transcribe FILE`` and ``sttkb dictate``: speech in, text out on stdout (logs on stderr)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from sttkb.errors import SttkbError

log = logging.getLogger(__name__)

Sink = Callable[[str], None]
"""Where dictated text goes: stdout by default; the composition root may pass a keyboard's ``type_text``."""


def stdout_sink(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def load(args):
    """(config, model) from ``--config`` / ``--model`` (what ``--model`` means: :mod:`sttkb.speech`)."""
    from sttkb.config import load_config
    from sttkb.speech import choose_model
    config = load_config(args.config)
    return config, choose_model(config, getattr(args, "model", None), on_progress=say)


def say(message: str) -> None:
    """Progress for the user on stderr (stdout carries only the text)."""
    print(f"sttkb: {message}", file=sys.stderr)


# -- transcribe --------------------------------------------------------------------------------------------
def cmd_transcribe(args) -> int:
    from sttkb.audio.sources import FileSource
    from sttkb.speech import load_transcriber
    config, model = load(args)
    source = FileSource(args.file)          # decode errors surface before the model loads
    transcriber = load_transcriber(config, model, warm_up=False)
    try:
        text = "".join(piece.text for piece in transcriber.stream(source, awaited_at_pause=True))
    finally:
        transcriber.close()
    stats = transcriber.stats
    log.info("%.1f s of audio, %d segment(s), %.1f s of speech decoded in %.1f s", stats.audio_s, stats.segments,
             stats.speech_s, stats.asr_s)
    text = text.rstrip(" ")
    if text:
        print(text)
    else:
        log.warning("no speech found in %s", args.file)
    return 0


# -- dictate -----------------------------------------------------------------------------------------------
def open_source(args, config):
    if args.file:
        from sttkb.audio.sources import FileSource
        return FileSource(args.file, realtime=args.realtime)
    from sttkb.audio.mic import MicSource
    settings = config.audio
    if args.device is not None:
        from dataclasses import replace
        settings = replace(settings, device=args.device)
    return MicSource(settings)


def dictate(args, sink: Sink = stdout_sink) -> int:
    """Stream pieces into ``sink`` as they are transcribed (the keyboard is one line away: pass its
    ``type_text``)."""
    from sttkb.speech import load_transcriber
    config, model = load(args)
    source = open_source(args, config)
    try:
        transcriber = load_transcriber(config, model)
    except BaseException:
        source.stop()
        if hasattr(source, "close"):
            source.close()
        raise
    if not args.file:
        print("sttkb: listening; Ctrl+C to stop", file=sys.stderr)
    wrote = False
    try:
        for piece in transcriber.stream(source, awaited_at_pause=True):   # no button: each phrase is awaited
            if piece.text:
                sink(piece.text)
                wrote = True
            log.info("segment %.1f-%.1f s: %.2f s to transcribe", piece.segment_start_s, piece.segment_end_s,
                     piece.asr_s)
    except KeyboardInterrupt:
        source.stop()
    finally:
        transcriber.close()
    if wrote and sink is stdout_sink:
        sys.stdout.write("\n")
        sys.stdout.flush()
    if transcriber.stats.overflows:
        log.warning("%d capture overflow(s): some audio was lost", transcriber.stats.overflows)
    return 0


def cmd_dictate(args) -> int:
    if args.list_devices:
        from sttkb.audio.mic import _pyaudio, list_input_devices
        pa = _pyaudio()
        try:
            devices = list_input_devices(pa)
        finally:
            pa.terminate()
        if not devices:
            print("no input devices found", file=sys.stderr)
            return 1
        for d in devices:
            print(f"{d.index}\t{d.name}\t{d.channels} ch\t{d.default_rate} Hz")
        return 0
    if args.realtime and not args.file:
        raise SttkbError("--realtime replays a --file at 1x speed; a microphone is always real time")
    sink = getattr(args, "sink", None)
    if sink is not None or args.keyboard == "stdout":
        return dictate(args, sink or stdout_sink)
    return _dictate_to_keyboard(args)


def _dictate_to_keyboard(args) -> int:
    """Type each piece as it comes, through the gadget side (this CLI is the composition root)."""
    from sttkb.config import load_config
    from sttkb.gadget.factory import build_keyboard

    config = load_config(args.config)
    built = build_keyboard(args.keyboard, config.keyboard, config.usb, config.bluetooth)
    typist, transport = built.keyboard, built.virtual
    try:
        rc = dictate(args, typist.type_text)
        typist.wait_idle(None)
    finally:
        rest = typist.cancel()
        built.close()
    if rest:
        log.warning("%d character(s) were not typed (the host went away)", len(rest))
        log.debug("not typed: %r", rest)        # transcripts are private: their text only at DEBUG
    if transport is not None:
        print(transport.text)
    return rc


def register(sub) -> None:
    """Add ``transcribe`` and ``dictate`` to the `sttkb` subparsers."""
    p = sub.add_parser("transcribe", help="print the transcript of an audio file (WAV/FLAC, any rate)",
                       description="Transcribe an audio file with the configured model. The transcript alone goes "
                                   "to stdout; logs go to stderr.")
    p.add_argument("file", metavar="FILE", help="audio file: WAV, FLAC or OGG, any sample rate and channels")
    p.add_argument("--model", metavar="NAME|PATH", help="a model name from `sttkb model list` or a ggml .bin path "
                                                         "(default: models.name, else the embedded default)")
    p.set_defaults(func=cmd_transcribe)

    d = sub.add_parser("dictate", help="stream text as you speak (microphone or a file)",
                       description="Listen and print each piece of text as soon as it is transcribed.")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--file", metavar="FILE", help="read this audio file instead of the microphone")
    src.add_argument("--device", metavar="NAME|INDEX", help="microphone (name substring or index; "
                                                             "default: audio.device)")
    d.add_argument("--keyboard", choices=("stdout", "virtual", "usb"), default="stdout",
                   help="where the text goes: stdout (default), virtual (type it into a simulated host in the "
                        "[keyboard] layout and print what the host received), usb (type it through /dev/hidg0)")
    d.add_argument("--realtime", action="store_true", help="with --file: replay at 1x speed, like a microphone")
    d.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    d.add_argument("--model", metavar="NAME|PATH", help="as for `sttkb transcribe`")
    d.set_defaults(func=cmd_dictate)


if __name__ == "__main__":  # pragma: no cover
    argparse.ArgumentParser().print_help()

"""``sttkb run | status | listen | stop | history | retype | reload``: the daemon and its control socket.

This module is the composition root of the box: it is the one place that builds gadget keyboards, the
microphone, the transcriber, the button and the LED, and hands them to :class:`sttkb.daemon.service.Daemon`.

For other commands: :func:`notify_daemon_model` (after ``sttkb model use``) and :func:`send_to_daemon`
(``sttkb type`` sends its text to a running daemon, else types directly).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from sttkb.errors import SttkbError

log = logging.getLogger(__name__)


# -- helpers other commands use -------------------------------------------------------------------------------
def _socket_setting(config_path: str | None = None) -> str:
    try:
        from sttkb.config import load_config
        return load_config(config_path).daemon.control_socket
    except SttkbError:
        from sttkb.daemon.control import DEFAULT_PATH
        return DEFAULT_PATH


def send_to_daemon(cmd: str, *, config_path: str | None = None, timeout: float = 30.0, **args) -> dict | None:
    """Send a control command; None when no daemon runs (the caller then acts by itself).
    Raises :class:`sttkb.daemon.control.CommandFailed` when the daemon says no."""
    from sttkb.daemon.control import DaemonNotRunning, request
    try:
        return request(cmd, configured=_socket_setting(config_path), timeout=timeout, **args)
    except DaemonNotRunning:
        return None


def notify_daemon_model(name: str, *, config_path: str | None = None) -> str:
    """After ``sttkb model use NAME``: ask a running daemon to load NAME (it keeps the old model if the new one
    fails). Returns a line for the user; raises SttkbError when the daemon could not load it."""
    from sttkb.daemon.control import CommandFailed
    try:
        reply = send_to_daemon("model_use", name=name, config_path=config_path, timeout=600)
    except CommandFailed as e:
        raise SttkbError(f"the running daemon could not switch: {e}") from e
    if reply is None:
        return "the daemon is not running; it uses this model when it starts"
    return f"the running daemon now uses {reply.get('model', name)}"


def _request(args, cmd: str, timeout: float = 30.0, **kw) -> dict:
    from sttkb.daemon.control import request
    return request(cmd, path=getattr(args, "control", None), configured=_socket_setting(args.config),
                   timeout=timeout, **kw)


# -- client commands ------------------------------------------------------------------------------------------
def cmd_status(args) -> int:
    reply = _request(args, "status")
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
        return 0
    print(f"state:     {reply['state']}")
    if reply.get("passkey"):
        print(f"pairing:   say the code {reply['passkey']['host']} shows "
              f"({reply['passkey']['seconds_left']:.0f} s left)")
    print(f"keyboard:  {reply['keyboard']}")
    print(f"mic:       {reply['mic']}")
    print(f"model:     {reply['model'] or '?'}")
    if reply.get("engine"):
        print(f"engine:    {engine_line(reply['engine'])}")
    print(f"journal:   {reply['journal'] or 'off'}" + (
        f" ({reply['untyped']} untyped: see `sttkb history`)" if reply.get("untyped") else ""))
    if reply.get("last_latency_s") is not None:
        print(f"latency:   {reply['last_latency_s']:.2f} s end of speech → last keystroke (last dictation), "
              f"{reply['median_latency_s']:.2f} s median per segment")
    return 0


def engine_line(engine: dict) -> str:
    """``sttkb status``'s engine line from the daemon's ``engine`` status."""
    if engine.get("engine", "local") == "local":
        return "local (speech stays on the box)"
    state = "answers" if engine.get("remote_up") else "not answering: the box's model decodes"
    parts = [f"{engine['engine']} ({state})"]
    if engine.get("last_engine"):
        who = "the server" if engine["last_engine"] == "remote" else "the box's model"
        parts.append(f"last text by {who}")
    if engine.get("last_rtt_ms") is not None:
        parts.append(f"round trip {engine['last_rtt_ms']} ms")
    line = "; ".join(parts)
    if engine.get("last_error") and not engine.get("remote_up"):
        line += f"; last failure: {engine['last_error']}"
    return line


def cmd_simple(args) -> int:
    reply = _request(args, args.control_cmd)
    print(f"sttkb: {args.control_cmd}: ok (state {reply.get('state')})", file=sys.stderr)
    return 0


def cmd_retype(args) -> int:
    kw = {"id": args.id} if args.id is not None else {}
    _request(args, "retype", **kw)
    print("sttkb: retyping", file=sys.stderr)
    return 0


def cmd_reload(args) -> int:
    reply = _request(args, "reload")
    print(f"sttkb: config reloaded: {reply.get('note', '')}", file=sys.stderr)
    return 0


def cmd_history(args) -> int:
    from sttkb.daemon.journal import JournalError, read_entries, readable_path
    reply = send_to_daemon("history", config_path=args.config, limit=args.limit) if not args.file else None
    if reply is not None:
        if reply.get("journal") is None:
            print("the journal is off ([journal] enabled = false): nothing is kept", file=sys.stderr)
            return 0
        entries = reply["entries"]
    else:
        path = Path(args.file) if args.file else readable_path()
        try:
            entries = [e.__dict__ for e in read_entries(path)][-args.limit:]
        except JournalError as e:
            raise SttkbError(f"{e}; members of group sttkb can read it (`sudo usermod -aG sttkb $USER`)") from e
    if args.json:
        print(json.dumps(entries, indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print("no transcripts in the journal", file=sys.stderr)
        return 0
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
        mark = {"typed": " ", "untyped": "!", "cancelled": "x"}.get(e["state"], "?")
        print(f"{e['id']:>6} {when} {mark} {e['text'].rstrip()}")
    if any(e["state"] == "untyped" for e in entries):
        print("(! = never typed, e.g. power was lost: type one with `sttkb retype ID`; "
              "x = cancelled)", file=sys.stderr)
    return 0


# -- sttkb run --------------------------------------------------------------------------------------------------
def _build_keyboards(config, simulate: bool):
    """Simulate: a virtual host; else the kind [keyboard] transport names (auto = USB and Bluetooth as enabled)."""
    from sttkb.gadget.factory import build_keyboard
    kind = "virtual" if simulate else config.keyboard.transport
    return build_keyboard(kind, config.keyboard, config.usb, config.bluetooth)


class _HostPrinter:
    """Simulate: prints what the virtual host has typed, as it appears."""

    def __init__(self, transport, out=sys.stdout) -> None:
        self.transport, self.out, self.shown = transport, out, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sttkb-host-printer", daemon=True)
        self._thread.start()

    def _flush(self) -> None:
        text = self.transport.text
        if len(text) > self.shown:
            self.out.write(text[self.shown:])
            self.out.flush()
            self.shown = len(text)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        self._flush()
        if self.shown:
            self.out.write("\n")
            self.out.flush()


def _drive_gestures(daemon_stop: threading.Event, pin, edges_source, *, start: float, pair_hold_s: float) -> None:
    """Simulate: press and release gpiozero's mock pin at the scripted times (the real gesture code runs)."""
    from sttkb.daemon.gestures_script import GestureScriptError, parse_line
    if isinstance(edges_source, list):
        items = iter(edges_source)
    else:  # stdin, read live
        def live():
            for line in edges_source:
                try:
                    yield from parse_line(line, now=time.monotonic() - start, pair_hold_s=pair_hold_s)
                except GestureScriptError as e:
                    print(f"sttkb: {e}", file=sys.stderr)
        items = live()
    for at, pressed in items:
        delay = start + at - time.monotonic()
        if delay > 0 and daemon_stop.wait(delay):
            return
        if pressed:
            pin.drive_low()
        else:
            pin.drive_high()


def _gpio(key: str, pin: str, build):
    """Build a GPIO device; gpiozero's errors become one line that says what to do."""
    try:
        return build()
    except SttkbError:
        raise
    except Exception as e:  # gpiozero: BadPinFactory, PinInvalidPin, GPIOPinInUse, PermissionError ...
        raise SttkbError(f"[{key.split('.')[0]}] {key.split('.')[1]} = {pin!r}: cannot use this GPIO ({e}). On a "
                         f"Pi: check the pin name, that user sttkb is in group gpio, and on a Pi 5 set "
                         f"[button] pin_factory = \"lgpio\". Without a Pi: `sttkb run --simulate`, or set "
                         f"{key} = \"\"") from e


def passkey_listener(config):
    """The daemon's ``Parts.hear_passkey``: a spoken pairing code, heard with whichever model the daemon uses now
    (``sttkb model use`` may swap it), and the box's [vad] settings."""
    from sttkb.passkey_listener import hear_passkey

    def hear(chunks, transcriber, *, deadline: float):
        return hear_passkey(chunks, transcriber.engine, deadline=deadline, vad=config.vad)
    return hear


def cmd_run(args) -> int:
    from sttkb.config import load_config
    from sttkb.daemon.button import ButtonGestures, make_pin_factory
    from sttkb.daemon.control import ControlError, ControlServer
    from sttkb.daemon.journal import Journal
    from sttkb.daemon.led import LogLed, StatusLed
    from sttkb.daemon.notify import Notifier
    from sttkb.daemon.service import Daemon, Parts

    config = load_config(args.config)
    simulate = args.simulate
    if simulate and not args.audio:
        raise SttkbError("--simulate needs --audio FILE (a WAV/FLAC replayed in real time as the microphone)")
    if args.audio and not simulate:
        raise SttkbError("--audio only works with --simulate")
    if args.gestures and not simulate:
        raise SttkbError("--gestures only works with --simulate (the box has a real button)")
    edges = None
    if args.gestures and args.gestures != "-":
        from sttkb.daemon.gestures_script import parse_script
        try:
            text = Path(args.gestures).read_text(encoding="utf-8")
        except OSError as e:
            raise SttkbError(f"cannot read the gesture script {args.gestures}: {e}") from e
        edges = parse_script(text, pair_hold_s=config.button.pair_hold_s)

    if simulate:
        from sttkb.audio.sources import FileSource
        FileSource(args.audio)  # a bad file fails here, with the audio package's clear message, before the model
    from sttkb.speech import choose_model, load_transcriber
    from sttkb.cli.transcribe import say
    model = choose_model(config, args.model, on_progress=say if simulate else None)  # the service: the journal
    # On the box nothing else competes for the CPU: the decoder yields it to the microphone and the typist. A
    # simulation runs on a desktop among other programs, where a lowered decoder would lose to all of them.
    yield_cpu = not simulate
    transcriber = load_transcriber(config, model, yield_cpu=yield_cpu)

    def load_model(name: str):
        return load_transcriber(config, choose_model(config, name), yield_cpu=yield_cpu), name

    if simulate:
        from sttkb.audio.sources import FileSource
        audio_path = args.audio

        def open_mic():
            return FileSource(audio_path, realtime=True)
    else:
        def open_mic():
            from sttkb.audio.mic import MicSource
            return MicSource(config.audio)

    keyboards = _build_keyboards(config, simulate)
    keyboard, virtual = keyboards.keyboard, keyboards.virtual
    journal_path = args.journal or config.journal.path or None
    journal_on = config.journal.enabled and (not simulate or bool(args.journal))
    journal = Journal(journal_path, enabled=journal_on, max_bytes=config.journal.max_bytes,
                      keep=config.journal.keep)
    factory = make_pin_factory("mock" if simulate else config.button.pin_factory)
    led = LogLed()
    if config.led.pin and not simulate:
        led = _gpio("led.pin", config.led.pin, lambda: StatusLed(config.led.pin, pwm=config.led.pwm,
                                                                 pin_factory=factory))
    elif not simulate:
        log.info("no status LED ([led] pin is empty): the state shows in `sttkb status` and this log")
    if config.led.feedback_sounds:
        from sttkb.daemon.sounds import FeedbackSounds, SoundingLed
        led = SoundingLed(led, FeedbackSounds())
    daemon = Daemon(config, Parts(
        keyboard=keyboard, transcriber=transcriber, open_mic=open_mic, load_model=load_model,
        model_name=model.name, pairing=keyboards.pairing, journal=journal, notifier=Notifier(), led=led,
        reload_config=lambda: load_config(args.config), mic_ends_run=simulate,
        hear_passkey=passkey_listener(config) if keyboards.pairing is not None else None))

    button = None
    pin_name = config.button.pin or ("GPIO17" if simulate else "")
    if pin_name:
        b = config.button
        button = _gpio("button.pin", pin_name, lambda: ButtonGestures(
            pin_name, daemon.gesture, hold_s=b.hold_s, pair_hold_s=b.pair_hold_s, multi_press_s=b.multi_press_s,
            bounce_s=b.bounce_ms / 1000, pin_factory=factory))
    else:
        log.info("no button ([button] pin is empty): start and stop listening with `sttkb listen` and `sttkb stop`")
    control = ControlServer(daemon.command, args.control or config.daemon.control_socket,
                            group=config.daemon.socket_group)
    try:
        control.start()
    except ControlError as e:
        if not simulate:
            raise
        log.warning("no control socket for this simulated run: %s", e)
        control = None

    def on_signal(signum, frame):
        daemon.shutdown()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, lambda s, f: threading.Thread(
        target=lambda: daemon.command({"cmd": "reload"}), daemon=True).start())

    printer = _HostPrinter(virtual) if virtual is not None else None
    daemon.start()
    if simulate:
        threading.Thread(target=lambda: (daemon.run_done.wait(), daemon.shutdown()), daemon=True).start()
        start = time.monotonic()
        pin = factory.pin(pin_name)
        if edges is None and args.gestures != "-":
            edges = [(0.0, True)]  # an implied hold over the whole file
        source = edges if edges is not None else sys.stdin
        threading.Thread(target=_drive_gestures, args=(daemon._stop, pin, source),
                         kwargs={"start": start, "pair_hold_s": config.button.pair_hold_s}, daemon=True).start()
    try:
        daemon.run()
    finally:
        if control is not None:
            control.close()
        if button is not None:
            button.close()
        keyboard.wait_idle(10)
        daemon.close()
        keyboards.close()
        if printer is not None:
            printer.close()
    if simulate:
        _print_latency(daemon)
    return 0


def _print_latency(daemon) -> None:
    import statistics
    lat, final = daemon.latencies, daemon.final_latencies
    if not lat:
        print("sttkb: nothing was typed (no speech heard)", file=sys.stderr)
        return
    print(f"sttkb: latency, end of speech → last keystroke: "
          f"{', '.join(f'{x:.2f}' for x in final) or '-'} s after each release; per segment median "
          f"{statistics.median(lat):.2f} s, max {max(lat):.2f} s ({len(lat)} segments)", file=sys.stderr)
    if daemon.breakdowns:
        wait, asr, typing = (statistics.median(x) for x in zip(*daemon.breakdowns))
        print(f"sttkb: per segment (median): {wait:.2f} s waiting for the pause that ends it ([vad] "
              f"end_silence_ms) + {asr:.2f} s whisper.cpp + {typing:.2f} s typing", file=sys.stderr)


# -- registration -----------------------------------------------------------------------------------------------
def register(sub) -> None:
    """Add ``run``, ``status``, ``listen``, ``stop``, ``history``, ``retype``, ``reload``."""
    control = argparse.ArgumentParser(add_help=False)
    control.add_argument("--control", metavar="SOCKET", help="control socket (default [daemon] control_socket)")

    p = sub.add_parser("run", parents=[control], help="run the box: button, mic, transcribe, type (the service)",
                       description="Run the daemon: hold the button and talk, text is typed on the host. "
                                   "--simulate runs it without a Pi: audio from a file in real time, button "
                                   "gestures from a script or stdin, and a virtual host that prints what it sees.")
    p.add_argument("--simulate", action="store_true", help="no Pi needed: virtual host printed on stdout")
    p.add_argument("--audio", metavar="FILE", help="simulate: the microphone (WAV/FLAC, replayed in real time)")
    p.add_argument("--gestures", metavar="SCRIPT|-",
                   help="simulate: button gestures ('hold 0 12.5', 'double 30', ...; - = read lines from stdin); "
                        "default: the button is held for the whole file")
    p.add_argument("--model", metavar="NAME|PATH", help="model name in the store or a ggml .bin (default: config)")
    p.add_argument("--journal", metavar="PATH", help="journal file (simulate keeps none unless given)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", parents=[control], help="what the daemon is doing")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.set_defaults(func=cmd_status)
    for name, text in (("listen", "start listening hands-free (like a double press)"),
                       ("stop", "stop listening (or close the pairing window)")):
        p = sub.add_parser(name, parents=[control], help=text)
        p.set_defaults(func=cmd_simple, control_cmd=name)
    p = sub.add_parser("history", parents=[control], help="transcripts in the journal (also untyped ones)")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="last N entries (default 50)")
    p.add_argument("--json", action="store_true", help="machine-readable")
    p.add_argument("--file", metavar="PATH", help="read this journal file instead of asking the daemon")
    p.set_defaults(func=cmd_history)
    p = sub.add_parser("retype", parents=[control], help="type the last transcript again (or entry ID)")
    p.add_argument("id", nargs="?", type=int, metavar="ID", help="journal entry (see `sttkb history`)")
    p.set_defaults(func=cmd_retype)
    p = sub.add_parser("reload", parents=[control], help="re-read the config file in the running daemon")
    p.set_defaults(func=cmd_reload)

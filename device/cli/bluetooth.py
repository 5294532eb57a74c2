"""`sttkb bt list|pair|forget HOST|use HOST|pace HOST|status` (on the box) and `sttkb check` (on a laptop).

The bt commands talk to bluetoothd directly, so they work whether or not the sttkb daemon runs: the pairing
window is the adapter's Pairable/Discoverable state, which the daemon's keyboard follows. If no sttkb keyboard is
advertising (the daemon is not running), `sttkb bt pair` serves the keyboard itself until the window closes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from pathlib import Path

from sttkb.gadget.ble.hosts import MAX_PACE_MS, SLOW_PACE_MS   # plain data, no D-Bus: cheap at every start

log = logging.getLogger(__name__)


def _run(coro):
    """asyncio.run, imported here: every `sttkb` command loads this module, few of them need asyncio."""
    import asyncio
    return asyncio.run(coro)

DEFAULT_STATE_DIR = "/var/lib/sttkb"   # the same as sttkb.gadget.ble.hosts.DEFAULT_STATE_DIR (not imported: startup)
SHIPPED_BLUETOOTHD_CONF = "/etc/sttkb/bluetooth/main.conf"   # services/bluetooth/main.conf on the box


def register(sub) -> None:
    """Add the Bluetooth commands to the `sttkb` subparsers."""
    bt = sub.add_parser("bt", help="Bluetooth hosts: list, pair, forget, use, status",
                        description="Manage the hosts of the Bluetooth keyboard, LE or Classic (run on the box).")
    bt.add_argument("--adapter", help="Bluetooth adapter (default: [bluetooth] adapter, hci0)")
    bt.add_argument("--state-dir", default=DEFAULT_STATE_DIR, type=Path,
                    help=f"where the last/preferred host is remembered (default {DEFAULT_STATE_DIR})")
    cmds = bt.add_subparsers(dest="bt_command", metavar="COMMAND")
    cmds.required = True
    p = cmds.add_parser("list", help="bonded hosts (and which one is connected)")
    p.set_defaults(func=cmd_list)
    p = cmds.add_parser("status", help="adapter, pairing window, advertising, connected host")
    p.set_defaults(func=cmd_status)
    p = cmds.add_parser("pair", help="open the pairing window: the box is discoverable and pairable until a host "
                                     "pairs or the timeout")
    p.add_argument("--timeout", type=float, help="seconds (default: [bluetooth] pairing_timeout_s)")
    p.add_argument("--no-wait", action="store_true", help="open the window and return at once")
    p.set_defaults(func=cmd_pair)
    p = cmds.add_parser("forget", help="remove a bonded host and its keys (it must pair again)")
    p.add_argument("host", metavar="HOST", help="address (AA:BB:...) or name, as `sttkb bt list` shows")
    p.set_defaults(func=cmd_forget)
    p = cmds.add_parser("use", help="type to this bonded host: disconnect the others and connect to it")
    p.add_argument("host", metavar="HOST", help="address (AA:BB:...) or name, as `sttkb bt list` shows")
    p.set_defaults(func=cmd_use)
    p = cmds.add_parser("pace", help="a host's own typing pace: slow it down if it drops or repeats keys",
                        description="Set the least time between two key reports for one bonded host (its slow "
                                    "mode); the others keep [bluetooth] report_interval_ms. A running daemon "
                                    "uses it from the next key.")
    p.add_argument("host", metavar="HOST", help="address (AA:BB:...) or name, as `sttkb bt list` shows")
    p.add_argument("pace", metavar="PACE", nargs="?",
                   help=f"milliseconds between reports (0..{MAX_PACE_MS:g}), 'slow' ({SLOW_PACE_MS:g} ms) or "
                        f"'normal' (back to [bluetooth] report_interval_ms); none: show it")
    p.set_defaults(func=cmd_pace)

    p = cmds.add_parser("systemd-dropin", help="write bluetoothd's settings for [bluetooth] mode (the systemd "
                                               "generator runs this at boot)",
                        description="For [bluetooth] mode = \"classic\" or \"auto\": write a copy of the box's "
                                    "bluetoothd settings with ControllerMode = bredr or dual and the "
                                    "bluetooth.service drop-in that uses it into DIR; for \"le\" remove them (the "
                                    "shipped settings are LE). "
                                    "Without --output print what would be written.")
    p.add_argument("--output", metavar="DIR", help="the generator's directory (/run/systemd/generator)")
    p.add_argument("--shipped", metavar="FILE", default=SHIPPED_BLUETOOTHD_CONF,
                   help=f"the box's bluetoothd settings (default {SHIPPED_BLUETOOTHD_CONF})")
    p.set_defaults(func=cmd_systemd_dropin)

    chk = sub.add_parser("check", help="on a laptop: find the sttkb keyboard over Bluetooth and report what a "
                                       "host sees and what is wrong",
                         description="Run this on the computer you want to type into (needs Bluetooth and "
                                     "bleak). It scans, connects, pairs if needed, reads the HID service and "
                                     "prints what it found and what is wrong.")
    chk.add_argument("--name", help="keyboard name to look for (default: any device advertising HID)")
    chk.add_argument("--address", help="keyboard address (skips matching by name)")
    chk.add_argument("--adapter", help="local Bluetooth adapter (Linux: hci0 ...)")
    chk.add_argument("--timeout", type=float, default=15.0, help="scan time (seconds, default 15)")
    chk.add_argument("--no-pair", action="store_true", help="do not pair; only read what is readable without")
    chk.set_defaults(func=cmd_check)


def _settings(args):
    from sttkb.config import load_config
    return load_config(getattr(args, "config", None)).bluetooth


def _adapter(args) -> str:
    return args.adapter or _settings(args).adapter


def _state(args):
    from sttkb.gadget.ble.hosts import HostState
    return HostState(args.state_dir)


def cmd_list(args: argparse.Namespace) -> int:
    from sttkb.gadget.ble import hostctl
    from sttkb.gadget.ble.hosts import RADIO_NAMES
    mode = _settings(args).mode
    st = _run(hostctl.status(_adapter(args)))
    state = _state(args)
    bonded = [h for h in st.hosts if h.is_bonded]
    if not bonded:
        print("no bonded hosts; pair one with `sttkb bt pair` (or hold the button)", file=sys.stderr)
        return 0
    other = []
    for h in bonded:
        radio = state.radio.get(h.address)
        print(h.describe(preferred=h.address == state.preferred, last=h.address == state.last,
                         pairing=state.pairing.get(h.address), pace_ms=state.pace.get(h.address), radio=radio))
        if radio is not None and mode != "auto" and radio != mode:
            other.append(h.address)
    if other:
        print(f"the keyboard is {RADIO_NAMES[mode]} now ([bluetooth] mode = \"{mode}\"): {', '.join(other)} paired "
              f"with the other one and must pair again (remove the keyboard on that computer, then `sttkb bt pair`)",
              file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sttkb.gadget.ble import hostctl
    st = _run(hostctl.status(_adapter(args)))
    state = _state(args)
    connected = [h for h in st.hosts if h.connected]
    print(f"adapter:      {st.adapter} {st.address} ({'powered' if st.powered else 'OFF'})")
    print(f"name:         {st.alias}")
    print(f"pairing:      {'window OPEN (discoverable, pairable)' if st.pairable else 'closed'}")
    from sttkb.gadget.ble.hosts import MODE_NAMES
    mode = _settings(args).mode
    running = {"le": st.advertising, "classic": st.classic_record,
               "auto": st.advertising and st.classic_record}[mode]
    what = {"le": "advertising", "classic": "HID record published",
            "auto": "advertising, HID record published"}[mode]
    print(f"keyboard:     Bluetooth {MODE_NAMES[mode]} ([bluetooth] mode = \"{mode}\"), "
          f"{what if running else 'not running — is the sttkb daemon running? (sttkb status)'}")
    print(f"bonded hosts: {sum(1 for h in st.hosts if h.is_bonded)}")
    print(f"connected:    {', '.join(h.describe() for h in connected) or 'none'}")
    print(f"last/preferred host: {state.last or '-'} / {state.preferred or '-'}")
    return 0 if st.powered else 1


def cmd_forget(args: argparse.Namespace) -> int:
    from sttkb.gadget.ble import hostctl
    host = _run(hostctl.forget(_adapter(args), args.host, _state(args)))
    print(f"forgot {host.address} ({host.name}); remove the keyboard on that host too before pairing again")
    return 0


def parse_pace(text: str) -> float | None:
    """`sttkb bt pace` PACE: milliseconds, "slow" or "normal" (None: the default). ValueError says what is allowed."""
    word = text.strip().lower().removesuffix("ms").strip()
    if word == "slow":
        return SLOW_PACE_MS
    if word in ("normal", "default"):
        return None
    try:
        ms = float(word)
    except ValueError:
        ms = -1.0
    if not 0 <= ms <= MAX_PACE_MS:
        raise ValueError(f"pace {text!r}: give milliseconds from 0 to {MAX_PACE_MS:g}, 'slow' ({SLOW_PACE_MS:g} ms) "
                         f"or 'normal'")
    return ms


def cmd_pace(args: argparse.Namespace) -> int:
    from sttkb.gadget.ble import hostctl
    from sttkb.gadget.ble.hosts import match_host
    try:
        ms = parse_pace(args.pace) if args.pace is not None else None
    except ValueError as e:
        print(f"sttkb bt pace: {e}", file=sys.stderr)
        return 2
    host = match_host(_run(hostctl.status(_adapter(args))).hosts, args.host)
    state = _state(args)
    default = _settings(args).report_interval_ms
    if args.pace is not None:
        state.set_pace(host.address, ms)
    own = state.pace.get(host.address)
    if own is None:
        print(f"{host.address} ({host.name}): normal pace, [bluetooth] report_interval_ms = {default:g} ms")
    else:
        print(f"{host.address} ({host.name}): its own pace, {max(own, default):g} ms between key reports "
              f"(`sttkb bt pace {host.address} normal` undoes it)")
    return 0


def cmd_use(args: argparse.Namespace) -> int:
    from sttkb.gadget.ble import hostctl
    host, connected = _run(hostctl.use(_adapter(args), args.host, _state(args)))
    if connected:
        print(f"typing to {host.address} ({host.name})")
    else:
        print(f"{host.address} ({host.name}) is preferred now; it is not in reach yet — it takes over when it "
              f"reconnects (wake it, or select the keyboard in its Bluetooth settings)")
    return 0


def cmd_pair(args: argparse.Namespace) -> int:
    from sttkb.gadget.ble import hostctl
    settings = _settings(args)
    adapter = args.adapter or settings.adapter
    timeout = args.timeout if args.timeout is not None else settings.pairing_timeout_s
    if timeout <= 0:
        from sttkb.gadget.ble.errors import BluetoothError
        raise BluetoothError("--timeout must be more than 0 seconds")
    st = _run(hostctl.status(adapter))
    before = {h.address for h in st.hosts if h.is_bonded}
    if st.keyboard_running:  # the daemon's keyboard is up: just open the window, it follows
        _run(hostctl.open_window(adapter, timeout))
        print(f"pairing window open for {timeout:.0f} s: on the host, add a Bluetooth device and pick "
              f"{st.alias!r}", file=sys.stderr)
        if args.no_wait:
            return 0
        new = _run(hostctl.wait_for_new_bond(adapter, before, timeout + 2))
    else:
        new = _serve_pairing(args, settings, adapter, timeout, before)
    if new is None:
        print("no host paired; the window is closed", file=sys.stderr)
        return 1
    print(f"paired with {new.address} ({new.name})")
    return 0


def _serve_pairing(args, settings, adapter: str, timeout: float, before: set[str]):
    """No daemon: register the keyboard here for the length of the window. Nothing here listens for a spoken code
    (the daemon does), so this window pairs Just Works; passkey-only cannot pair without the daemon."""
    from dataclasses import replace

    if settings.pairing == "passkey-only":
        print("sttkb: [bluetooth] pairing = \"passkey-only\" needs the sttkb daemon, which listens for the code the "
              "computer shows: start it (`sudo systemctl start sttkb`) and run `sttkb bt pair` again",
              file=sys.stderr)
        return None
    print(f"the sttkb daemon is not running: serving the keyboard from this command for {timeout:.0f} s; "
          "nothing listens for a spoken code without the daemon, so this window pairs Just Works (no code)",
          file=sys.stderr)
    settings = replace(settings, pairing="just-works")
    done = threading.Event()
    result: list[bool] = []

    def on_done(paired: bool) -> None:
        result.append(paired)
        done.set()

    with _serving(replace(settings, adapter=adapter), args.state_dir) as kb:
        kb.open_pairing_window(timeout, on_done)
        print(f"pairing window open: on the host, add a Bluetooth device and pick {settings.name!r}",
              file=sys.stderr)
        done.wait(timeout + 5)
        if not (result and result[0]):
            return None
        new = [h for h in kb.hosts() if h.is_bonded and h.address not in before]
        return new[0] if new else None


@contextlib.contextmanager
def _serving(settings, state_dir):
    """The keyboard(s) of ``settings.mode``, started for `sttkb bt pair` without the daemon."""
    from dataclasses import replace
    if settings.mode == "auto":
        from sttkb.gadget.both_radios import open_both_keyboards
        # Only for the window: no reconnecting to an earlier host meanwhile.
        both, le, classic = open_both_keyboards(replace(settings, reconnect=False), state_dir=state_dir,
                                                track_delivery=False)
        try:
            yield both
        finally:
            for transport in (classic, le):
                transport.close()
            both.close()
        return
    if settings.mode == "classic":
        from sttkb.gadget.bt_classic.peripheral import ClassicPeripheral as Peripheral
    else:
        from sttkb.gadget.ble.peripheral import BlePeripheral as Peripheral
    with Peripheral(settings, state_dir=state_dir) as kb:
        yield kb


def cmd_systemd_dropin(args: argparse.Namespace) -> int:
    """What sttkb-bluetooth-generator runs. It must never leave bluetoothd without settings: on any problem
    nothing is written (the shipped LE settings apply) and the reason goes to stderr (the journal)."""
    from sttkb.config import load_config
    from sttkb.errors import SttkbError
    from sttkb.gadget import bluetoothd_conf as bc
    out = Path(args.output) if args.output else None
    written = [] if out is None else [out / "bluetooth.service.d" / bc.DROPIN_NAME, out / bc.CONF_NAME]
    try:
        mode = load_config(getattr(args, "config", None)).bluetooth.mode
        text = None if mode == bc.SHIPPED_MODE else bc.conf_for_mode(Path(args.shipped).read_text("utf-8"), mode)
    except (SttkbError, OSError, bc.ConfError) as e:
        print(f"sttkb bt systemd-dropin: {e}; bluetoothd keeps the shipped settings ({args.shipped}, LE)",
              file=sys.stderr)
        for path in written:
            path.unlink(missing_ok=True)
        return 1
    if out is None:
        if text is None:
            print(f"# [bluetooth] mode = \"{mode}\": bluetoothd uses {args.shipped} as it is")
        else:
            sys.stdout.write(bc.dropin_for_conf(bc.CONF_NAME, mode) + "\n# " + bc.CONF_NAME + ":\n" + text)
        return 0
    if text is None:
        for path in written:
            path.unlink(missing_ok=True)
        return 0
    from sttkb.cli.generated import replace_text
    dropin, conf = written
    replace_text(conf, text)    # the settings first: the drop-in never names a file that is not there
    replace_text(dropin, bc.dropin_for_conf(str(conf.resolve()), mode))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from sttkb.gadget.host_check import run_check
    report = run_check(name=args.name, address=args.address, adapter=args.adapter, scan_timeout=args.timeout,
                       pair=not args.no_pair)
    print(report.render())
    return 0 if report.ok else 1

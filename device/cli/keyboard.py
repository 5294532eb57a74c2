"""``sttkb gadget up|down|status`` (the USB gadget) and ``sttkb type TEXT`` (through the running daemon, else straight
to the USB keyboard, or a simulated host). Keyboards come from :mod:`sttkb.gadget.factory`."""

from __future__ import annotations

import dataclasses
import logging
import sys

from sttkb.gadget import factory
from sttkb.gadget.errors import Error, HostDisconnected
from sttkb.gadget.keymap import get_keymap
from sttkb.gadget.keystrokes import UNMAPPABLE_POLICIES, plan_text, text_to_reports

log = logging.getLogger(__name__)


def register(sub) -> None:
    """Add the keyboard commands to the `sttkb` subparsers."""
    g = sub.add_parser("gadget", help="the USB keyboard gadget: up, down, status",
                       description="Create (up) or remove (down) the configfs USB HID keyboard, or show whether a "
                                   "host has it configured (status). up/down need root.")
    cmds = g.add_subparsers(dest="gadget_command", metavar="COMMAND")
    cmds.required = True
    p = cmds.add_parser("up", help="create the gadget and bind it to the USB controller (idempotent)")
    p.add_argument("--udc", help="USB device controller (default: [usb] udc, else the first in /sys/class/udc)")
    p.set_defaults(func=cmd_gadget_up)
    p = cmds.add_parser("down", help="unbind and remove the gadget (idempotent)")
    p.set_defaults(func=cmd_gadget_down)
    p = cmds.add_parser("status", help="set up? bound? UDC state: not attached / configured / suspended")
    p.set_defaults(func=cmd_gadget_status)

    t = sub.add_parser("type", help="type TEXT on the host as the keyboard (or print the reports)",
                       description="Type TEXT through the keyboard in the host's layout. --dry-run prints the "
                                   "8-byte HID reports as hex, one per line, instead (for checking layouts).")
    t.add_argument("text", nargs="+", metavar="TEXT", help="text to type ('-' reads stdin)")
    t.add_argument("--layout", help="host keyboard layout, XKB name: us, gb, de, fr, us(intl)... "
                                    "(default: [keyboard] layout)")
    t.add_argument("--transport", choices=("usb", "virtual"),
                   help="usb: /dev/hidg0; virtual: print what a host in LAYOUT would show (default: the running "
                        "daemon types it, journaled, to whichever host is connected; without a daemon, usb)")
    t.add_argument("--unmappable", choices=UNMAPPABLE_POLICIES, help="characters the layout cannot type "
                                                                      "(default: [keyboard] unmappable)")
    t.add_argument("--delay-ms", type=float, help="pause between reports (default: [keyboard] key_delay_ms)")
    t.add_argument("--caps-lock", action="store_true", help="dry-run/virtual: assume the host's Caps Lock is on")
    t.add_argument("--dry-run", action="store_true", help="print the reports as hex, type nothing")
    t.set_defaults(func=cmd_type)


def _config(args):
    from sttkb.config import load_config
    return load_config(getattr(args, "config", None))


def cmd_gadget_up(args) -> int:
    cfg = _config(args)
    gadget = factory.usb_gadget(cfg.usb)
    udc = gadget.up(args.udc or cfg.usb.udc)
    print(f"USB gadget {cfg.usb.gadget_name} up on {udc}")
    return 0


def cmd_gadget_down(args) -> int:
    cfg = _config(args)
    factory.usb_gadget(cfg.usb).down()
    print(f"USB gadget {cfg.usb.gadget_name} removed")
    return 0


def cmd_gadget_status(args) -> int:
    cfg = _config(args)
    print(factory.usb_gadget(cfg.usb).status().describe())
    return 0


def _read_text(parts: list[str]) -> str:
    if parts == ["-"]:
        return sys.stdin.read()
    return " ".join(parts)


def cmd_type(args) -> int:
    cfg = _config(args)
    keyboard = cfg.keyboard
    changes = {k: v for k, v in (("layout", args.layout), ("unmappable", args.unmappable),
                                 ("key_delay_ms", args.delay_ms)) if v is not None}
    keyboard = dataclasses.replace(keyboard, **changes)
    text = _read_text(args.text)
    keymap = get_keymap(keyboard.layout)
    if args.dry_run:
        plan = plan_text(text, keymap, unmappable=keyboard.unmappable, caps_lock=args.caps_lock)
        for change in plan.changes:
            print(f"sttkb: note: {change.describe()}", file=sys.stderr)
        for report in text_to_reports(text, keymap, unmappable=keyboard.unmappable, caps_lock=args.caps_lock):
            print(report.hex(" "))
        return 0
    overrides = args.layout or args.unmappable or args.delay_ms is not None
    if args.transport is None and not overrides:
        # One writer per keyboard: while the daemon runs it owns /dev/hidg0 and the Bluetooth link.
        from sttkb.cli.daemon import send_to_daemon
        reply = send_to_daemon("type", text=text, config_path=getattr(args, "config", None))
        if reply is not None:
            print("sttkb: handed to the running daemon (it types to the connected host)", file=sys.stderr)
            return 0
    if args.transport == "virtual":
        typist, transport = factory.virtual_typist(keyboard, caps_lock=args.caps_lock)
        with typist:
            typist.type_text(text)
            typist.wait_idle(60)
        sys.stdout.write(transport.text + ("" if transport.text.endswith("\n") else "\n"))
        return 0
    transport = factory.usb_transport(cfg.usb)
    if not transport.wait_ready(2.0):
        state = transport.udc_state() or "no USB controller"
        transport.close()
        raise HostDisconnected(f"no host has the USB keyboard configured (UDC state: {state}). Plug the box into "
                               f"a computer; run `sttkb gadget status` / `sttkb gadget up` if it is not set up",
                               reason="not-configured")
    typist = factory.typist_over(transport, keyboard)
    with typist:
        typist.type_text(text)
        budget = 10.0 + len(text) * 0.05
        if not typist.wait_idle(budget):
            rest = typist.cancel()
            raise Error(f"the host went away: {len(rest)} of {len(text)} characters were not typed "
                        f"(USB state: {transport.udc_state() or 'unknown'})")
    return 0

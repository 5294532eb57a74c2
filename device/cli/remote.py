"""``sttkb remote test [URL]``, ``sttkb remote discover`` and ``sttkb remote systemd-dropin``: check a speech
server; find Wyoming servers on the network; open the service's sandbox to the configured one.

``remote test`` sends the reference clip (device/models/data: synthetic speech, nothing private) to the server
of ``URL`` (default: ``[asr] engine``) with the config's remote settings (or the options given), and prints each
round trip, the words that came back and their word error rate against the clip's text.

``remote systemd-dropin`` is what the systemd generator ``sttkb-remote-generator`` runs at boot and at every
``systemctl daemon-reload``: with a remote engine configured it writes a drop-in for sttkb.service that lets the
daemon reach that server's address (and nothing else over IP); with ``engine = "local"`` it writes nothing and the
service keeps ``IPAddressDeny=any`` and no IP address families (docs/remote.md).

``remote discover`` lists the Wyoming servers that announce themselves over mDNS (``_wyoming._tcp``, as
wyoming-faster-whisper does with ``--zeroconf``).
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import logging
import socket
import sys
import time
from pathlib import Path

from sttkb.cli.generated import replace_text
from sttkb.errors import SttkbError

log = logging.getLogger(__name__)

DROPIN_NAME = "50-remote-engine.conf"
RESOLV_CONF = Path("/etc/resolv.conf")


def _remote_settings(args):
    """The config's [asr] settings with this command's URL and options in place, checked like the config."""
    from sttkb.config import load_config
    config = load_config(args.config)
    asr = config.asr
    changes = {}
    if args.url:
        changes["engine"] = args.url
    for option, key in (("api_key_file", "remote_api_key_file"), ("fingerprint", "remote_tls_fingerprint"),
                        ("ca_file", "remote_ca_file"), ("model", "remote_model")):
        value = getattr(args, option)
        if value is not None:
            changes[key] = value
    if args.allow_public_plain:
        changes["remote_allow_public_plain"] = True
    try:
        asr = dataclasses.replace(asr, **changes)
    except ValueError as e:
        raise SttkbError(f"asr.{e}") from e
    if asr.remote is None:
        raise SttkbError("no speech server to test: give its URL (sttkb remote test wyoming://HOST:10300, or "
                         "https://HOST/v1/audio/transcriptions), or set [asr] engine in the config")
    return asr


def cmd_test(args) -> int:
    import numpy as np

    from sttkb.asr.errors import RemoteError
    from sttkb.asr.fallback import build_client
    from sttkb.asr.remote import check_text
    from sttkb.audio.sources import read_audio
    from sttkb.models.validate import reference_clip
    from sttkb.models.wer import word_error_rate

    asr = _remote_settings(args)
    client = build_client(asr)
    if args.audio:
        audio_path, expected = Path(args.audio), args.text
        if not audio_path.is_file():
            raise SttkbError(f"{audio_path}: no such audio file for --audio")
    else:
        audio_path, expected = reference_clip()
    samples = np.asarray(read_audio(audio_path), np.float32)
    seconds = len(samples) / 16000
    print(f"{client.url}: sending {audio_path.name} ({seconds:.1f} s of audio) {args.repeats} time(s), "
          f"timeout {args.timeout:.0f} s each")
    if client.url.kind == "wyoming":
        try:
            programs = client.describe(timeout_s=args.timeout)
            print(f"  server offers: {'; '.join(programs) or '(no speech-to-text program)'}")
        except RemoteError as e:
            raise SttkbError(f"the server does not answer a Wyoming describe: {e}") from e
    text = ""
    for i in range(args.repeats):
        try:
            reply = client.transcribe(samples, "", timeout_s=args.timeout)
            text = check_text(reply.text, seconds, asr.tokens_per_second)
        except RemoteError as e:
            raise SttkbError(f"request {i + 1}: {e}") from e
        note = " (the first request may include loading the server's model)" if i == 0 and args.repeats > 1 else ""
        print(f"  round trip {i + 1}: {1000 * reply.rtt_s:.0f} ms{note}")
    print(f"  words: {text}")
    if expected:
        w = word_error_rate(expected, text)
        print(f"  word error rate against the clip's text: {w.wer:.1%} ({w.errors} of {w.reference_words} words)")
        if w.wer > args.max_wer:
            print(f"sttkb: the server's words differ from the clip's more than --max-wer {args.max_wer:.0%}",
                  file=sys.stderr)
            return 1
    return 0


# -- discovery --------------------------------------------------------------------------------------------------
WYOMING_SERVICE = "_wyoming._tcp.local."


def discover_wyoming(seconds: float) -> list[tuple[str, str]]:
    """Wyoming servers announcing themselves over mDNS (zeroconf) within ``seconds``: (URL, name), sorted."""
    from zeroconf import ServiceBrowser, ServiceStateChange, Zeroconf

    names: set[str] = set()

    def changed(zeroconf, service_type, name, state_change) -> None:
        if state_change is ServiceStateChange.Added:
            names.add(name)

    try:
        zc = Zeroconf()
    except OSError as e:
        raise SttkbError(f"cannot listen for mDNS announcements ({e.strerror or e}); give the server's URL instead") \
            from e
    try:
        ServiceBrowser(zc, WYOMING_SERVICE, handlers=[changed])
        time.sleep(seconds)
        found = []
        for name in sorted(names):
            info = zc.get_service_info(WYOMING_SERVICE, name, timeout=3000)
            if info is None or not info.port:
                continue
            label = name[:-len(WYOMING_SERVICE) - 1] if name.endswith("." + WYOMING_SERVICE) else name
            for addr in info.parsed_addresses():
                host = f"[{addr}]" if ":" in addr else addr
                found.append((f"wyoming://{host}:{info.port}", label))
        return sorted(set(found))
    finally:
        zc.close()


def cmd_discover(args) -> int:
    print(f"listening {args.seconds:.0f} s for Wyoming servers (mDNS {WYOMING_SERVICE}) ...", file=sys.stderr)
    found = discover_wyoming(args.seconds)
    for url, name in found:
        print(f"{url}\t{name}")
    if not found:
        print("none found: a server announces itself only when started with --zeroconf (wyoming-faster-whisper), "
              "and mDNS does not cross routers; give its URL to `sttkb remote test`", file=sys.stderr)
        return 1
    print("check one with `sttkb remote test URL`, then set [asr] engine = \"URL\"", file=sys.stderr)
    return 0


# -- the systemd drop-in ----------------------------------------------------------------------------------------
def nameservers(resolv_conf: Path = RESOLV_CONF) -> list[str]:
    """The DNS servers the daemon must reach to resolve the engine's name."""
    out = []
    try:
        lines = resolv_conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                out.append(str(ipaddress.ip_address(parts[1].split("%")[0])))
            except ValueError:
                continue
    return out


def dropin_text(asr, *, resolve=socket.getaddrinfo, resolv_conf: Path = RESOLV_CONF) -> str | None:
    """The drop-in that opens sttkb.service to the remote engine of ``asr``; None for a local engine.

    An engine given by address opens exactly that address. One given by name opens the addresses the name has
    now and the DNS servers of /etc/resolv.conf (the daemon resolves the name at each connection); if the name
    does not resolve yet (early boot, before the network), only the DNS servers: the daemon then says which
    address it was refused, and `systemctl daemon-reload && systemctl restart sttkb` once the network is up
    writes the addresses in."""
    url = asr.remote
    if url is None:
        return None
    lines = ["# Written by sttkb-remote-generator (`sttkb remote systemd-dropin`) from the config's [asr] engine:",
             f"# {url}. The daemon may reach this speech server over IP, and nothing else.",
             "[Service]",
             "RestrictAddressFamilies=AF_INET AF_INET6"]
    if url.address is not None:
        addresses = [str(url.address)]
    else:
        addresses = []
        try:
            for info in resolve(url.host, url.port, type=socket.SOCK_STREAM):
                addr = str(info[4][0]).split("%")[0]
                if addr not in addresses:
                    addresses.append(addr)
        except OSError as e:
            lines.append(f"# {url.host} did not resolve when this was written ({e}); only the DNS servers are open")
        for ns in nameservers(resolv_conf):
            if ns not in addresses:
                addresses.append(ns)
    if addresses:
        lines.append("IPAddressAllow=" + " ".join(addresses))
    if asr.remote_api_key_file:
        # The key file is root's alone: systemd hands a copy to the service (in $CREDENTIALS_DIRECTORY).
        from sttkb.asr.remote import CREDENTIAL_NAME
        lines.append(f"LoadCredential={CREDENTIAL_NAME}:{Path(asr.remote_api_key_file).expanduser()}")
    return "\n".join(lines) + "\n"


def cmd_systemd_dropin(args) -> int:
    from sttkb.config import load_config
    target = Path(args.output) / DROPIN_NAME if args.output else None
    try:
        text = dropin_text(load_config(args.config).asr)
    except SttkbError as e:
        # A broken config: open nothing (the daemon itself refuses to start on it and says why).
        print(f"sttkb remote systemd-dropin: {e}; the service stays closed to IP", file=sys.stderr)
        if target is not None:
            target.unlink(missing_ok=True)
        return 1
    if target is None:
        sys.stdout.write(text or "# [asr] engine is \"local\": no drop-in; the service stays closed to IP\n")
        return 0
    if text is None:
        target.unlink(missing_ok=True)
        return 0
    replace_text(target, text)
    return 0


def register(sub) -> None:
    """Add the ``remote`` command group to the `sttkb` subparsers."""
    parser = sub.add_parser("remote", help="check a speech server on your network (the remote engine)",
                            description="The remote engine ([asr] engine): a speech server on your network that "
                                        "decodes instead of the box's model. See docs/remote.md.")
    cmds = parser.add_subparsers(dest="remote_command", metavar="SUBCOMMAND")
    cmds.required = True
    test = cmds.add_parser("test", help="send the reference clip to a server; print the latency and the words",
                           description="Send the reference clip (or --audio FILE) to the server and print each "
                                       "round trip, the words and their error rate. Exit 1 if it fails.")
    test.add_argument("url", nargs="?", help="wyoming://HOST:PORT or https://HOST/v1/audio/transcriptions "
                                             "(default: [asr] engine)")
    test.add_argument("--api-key-file", help="file holding the API key (default: [asr] remote_api_key_file)")
    test.add_argument("--fingerprint", help="SHA-256 fingerprint the server's certificate must have")
    test.add_argument("--ca-file", help="PEM file of a certificate authority to trust")
    test.add_argument("--model", help="model name for an OpenAI-compatible server (default whisper-1)")
    test.add_argument("--allow-public-plain", action="store_true",
                      help="allow http:// or wyoming:// to a public address")
    test.add_argument("--audio", help="another audio file to send (with --text: its words)")
    test.add_argument("--text", default="", help="what --audio says (for the word error rate)")
    test.add_argument("--repeats", type=int, default=2, help="requests to send (default 2)")
    test.add_argument("--timeout", type=float, default=30.0, help="seconds each request may take (default 30)")
    test.add_argument("--max-wer", type=float, default=0.5,
                      help="exit 1 when the word error rate is above this (default 0.5)")
    test.set_defaults(func=cmd_test)
    disc = cmds.add_parser("discover", help="list the Wyoming servers that announce themselves on this network",
                           description="Listen for Wyoming speech servers announcing themselves over mDNS "
                                       "(zeroconf, _wyoming._tcp) and print their URLs. Exit 1 if none answers.")
    disc.add_argument("--seconds", type=float, default=3.0, help="how long to listen (default 3)")
    disc.set_defaults(func=cmd_discover)
    dropin = cmds.add_parser("systemd-dropin", help="write the drop-in that opens sttkb.service to the server",
                             description="With [asr] engine set to a server: write the sttkb.service drop-in "
                                         "that allows IP to that server only (its address; for a name, its "
                                         "addresses and the DNS servers). Run by sttkb-remote-generator.")
    dropin.add_argument("--output", help="directory to write it into, e.g. /run/systemd/generator/sttkb.service.d "
                                         "(default: print it)")
    dropin.set_defaults(func=cmd_systemd_dropin)

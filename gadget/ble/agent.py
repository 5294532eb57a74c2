"""The pairing agent (org.bluez.Agent1) of a box whose keys are its microphone.

What the agent offers depends on ``[bluetooth] pairing`` (:data:`CAPABILITY`):

* ``passkey`` (default) and ``passkey-only``: the KeyboardOnly IO capability. A host with a display then runs
  LE Secure Connections Passkey Entry: it shows six digits and BlueZ asks this agent for them
  (:meth:`PairingAgent.RequestPasskey`). The agent hands a :class:`sttkb.keyboard.PasskeyRequest` to the handler
  the daemon registered, which listens for the user saying the code, and answers BlueZ with those digits or
  refuses. The host gives up 30 s after its request (the SMP timeout), so the agent waits at most
  :data:`PASSKEY_TIMEOUT_S`. A host without a display gets Just Works instead, which BlueZ confirms with
  RequestAuthorization: accepted inside the window in ``passkey``, always refused in ``passkey-only``, which also
  refuses a passkey pairing that is not LE Secure Connections (``secure_connections()``, read from the SMP
  feature exchange by :mod:`sttkb.gadget.ble.smp_watch`: legacy pairing's code can be cracked by an eavesdropper).
* ``just-works``: NoInputNoOutput; every pairing is Just Works, accepted inside the window.

Nothing is accepted outside the pairing window (the adapter's Pairable, switched by the window, is the main gate
for new pairings; the agent is the second lock on the same door). The code itself is never logged or kept: it goes
from the request straight into the D-Bus reply. :attr:`PairingAgent.passkey_entered` remembers which devices were
answered with a code, so the peripheral can tell a passkey bond from a Just Works one once the host has bonded.

No ``from __future__ import annotations``: dbus-fast reads the D-Bus signatures from the annotations.
"""

import asyncio
import logging
from typing import Callable, Optional

from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, method

from sttkb.gadget.ble import defs
from sttkb.keyboard import PasskeyRequest

log = logging.getLogger(__name__)

MODES = ("passkey", "passkey-only", "just-works")

CAPABILITY = {"passkey": "KeyboardOnly", "passkey-only": "KeyboardOnly", "just-works": "NoInputNoOutput"}
"""The IO capability the agent registers with, by ``[bluetooth] pairing``."""

PASSKEY_TIMEOUT_S = 29.0
"""How long the agent waits for the spoken code: the host's SMP timeout is 30 s from its pairing request."""

PasskeyHandler = Callable[[PasskeyRequest], None]


class PairingAgent(ServiceInterface):
    """Accept pairing requests only while ``is_open()``; ``is_bonded(device_path)`` lets bonded hosts reconnect;
    ``describe(device_path)`` names a host for logs and the daemon (its name, else its address)."""

    def __init__(self, path: str, is_open: Callable[[], bool], is_bonded: Callable[[str], bool], *,
                 mode: str = "passkey", describe: Callable[[str], str] = str,
                 secure_connections: Callable[[], Optional[bool]] = lambda: None) -> None:
        super().__init__(defs.AGENT)
        if mode not in MODES:
            raise ValueError(f"pairing mode {mode!r}: choose one of {', '.join(MODES)}")
        self.path = path
        self.mode = mode
        self.capability = CAPABILITY[mode]
        self._is_open = is_open
        self._is_bonded = is_bonded
        self._describe = describe
        self._secure_connections = secure_connections
        self.passkey_handler: Optional[PasskeyHandler] = None
        self.passkey_entered: set = set()   # device paths answered with a code (the bond is authenticated)
        self._pending: list = []            # PasskeyRequests waiting for an answer
        self.requests: list = []            # (method, device, accepted): for status and tests; never the code

    def _decide(self, what: str, device: str) -> None:
        ok = self._is_open()
        self.requests.append((what, device, ok))
        if ok:
            log.info("pairing window open: accepting %s from %s", what, device)
            return
        log.warning("pairing window closed: rejecting %s from %s (press the button or run `sttkb bt pair` "
                    "to pair a new host)", what, device)
        raise DBusError(defs.ERR_REJECTED, "pairing window is closed")

    def _just_works(self, what: str, device: str) -> None:
        """A pairing without a code (the host has no display, or re-pairs over an old key)."""
        if self.mode == "passkey-only":
            self.requests.append((what, device, False))
            log.warning("refusing Just Works pairing from %s: [bluetooth] pairing = \"passkey-only\" accepts only "
                        "hosts that show a code (pair from a computer or phone with a screen, or set pairing = "
                        "\"passkey\")", self._describe(device))
            raise DBusError(defs.ERR_REJECTED, "this keyboard pairs only with a passkey")
        self._decide(what, device)
        self.passkey_entered.discard(device)

    def cancel_pending(self, why: str) -> None:
        for request in list(self._pending):
            request.cancel(why)

    @method()
    def Release(self):  # noqa: N802 (D-Bus names)
        log.info("BlueZ released the pairing agent")
        self.cancel_pending("agent released")

    @method()
    def RequestPinCode(self, device: "o") -> "s":  # noqa: N802
        raise DBusError(defs.ERR_REJECTED, "this keyboard has no PIN")

    @method()
    def DisplayPinCode(self, device: "o", pincode: "s"):  # noqa: N802
        raise DBusError(defs.ERR_REJECTED, "this keyboard has no display")

    @method()
    async def RequestPasskey(self, device: "o") -> "u":  # noqa: N802
        if self.mode == "just-works":
            raise DBusError(defs.ERR_REJECTED, "this keyboard does not enter passkeys ([bluetooth] pairing)")
        self._decide("RequestPasskey", device)
        if self.mode == "passkey-only" and self._secure_connections() is not True:
            self.requests[-1] = ("RequestPasskey", device, False)
            log.warning("refusing the pairing with %s: it is not LE Secure Connections (or that cannot be checked "
                        "here: the HCI monitor needs CAP_NET_RAW), and [bluetooth] pairing = \"passkey-only\" "
                        "refuses legacy pairing, whose code an eavesdropper can crack", self._describe(device))
            raise DBusError(defs.ERR_REJECTED, "this keyboard pairs only with LE Secure Connections")
        handler = self.passkey_handler
        if handler is None:
            self.requests[-1] = ("RequestPasskey", device, False)
            log.warning("%s shows a code to enter, but nothing here can listen for it (is the daemon running?): "
                        "refused", self._describe(device))
            raise DBusError(defs.ERR_REJECTED, "nothing can enter the passkey")
        request = PasskeyRequest(self._describe(device), PASSKEY_TIMEOUT_S)
        passkey = await self._ask(handler, request)
        if passkey is None:
            log.warning("no code for %s (%s): pairing refused; the window stays open to try again",
                        request.host, request.outcome)
            raise DBusError(defs.ERR_REJECTED if request.outcome == "refused" else defs.ERR_CANCELED,
                            "the passkey was not entered")
        self.passkey_entered.add(device)
        log.info("entered the code %s showed", request.host)
        return int(passkey)

    async def _ask(self, handler: PasskeyHandler, request: PasskeyRequest) -> Optional[str]:
        loop = asyncio.get_running_loop()
        ended = loop.create_future()
        request.add_done_callback(lambda: loop.call_soon_threadsafe(
            lambda: ended.done() or ended.set_result(None)))
        self._pending.append(request)
        try:
            try:
                handler(request)
            except Exception:  # noqa: BLE001 (the daemon's handler must not break the agent)
                log.exception("passkey handler failed")
                request.cancel("failed")
            try:
                await asyncio.wait_for(asyncio.shield(ended), PASSKEY_TIMEOUT_S)
            except asyncio.TimeoutError:
                request.cancel("timed out")
            return request.wait(0)
        finally:
            self._pending.remove(request)

    @method()
    def DisplayPasskey(self, device: "o", passkey: "u", entered: "q"):  # noqa: N802
        pass  # nothing to display on; never called for KeyboardOnly or NoInputNoOutput

    @method()
    def RequestConfirmation(self, device: "o", passkey: "u"):  # noqa: N802
        # Numeric comparison needs a display to compare on; this box has none, so a yes would be blind: Just Works.
        self._just_works("RequestConfirmation", device)

    @method()
    def RequestAuthorization(self, device: "o"):  # noqa: N802
        self._just_works("RequestAuthorization", device)

    @method()
    def AuthorizeService(self, device: "o", uuid: "s"):  # noqa: N802
        if self._is_bonded(device):
            return
        self._decide(f"AuthorizeService {uuid}", device)

    @method()
    def Cancel(self):  # noqa: N802
        log.info("pairing request canceled by BlueZ")
        self.cancel_pending("cancelled by the host")

"""The box's daemon: one state machine between the microphone chain and the keyboard.

Modules: ``state`` (the transition table), ``service`` (the daemon loop), ``button`` (gestures), ``led``
(patterns), ``journal`` (nothing said is lost), ``control`` (the unix control socket), ``notify`` (sd_notify).
Nothing here imports ``gadget``: keyboards come in through :class:`sttkb.keyboard.Keyboard`.
"""

from sttkb.errors import SttkbError


class Error(SttkbError):
    """Base of the daemon's expected errors."""

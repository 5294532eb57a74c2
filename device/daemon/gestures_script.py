"""Button gestures as text, for ``sttkb run --simulate --gestures SCRIPT|-``.

One gesture per line, times in seconds from the start of the run (``#`` starts a comment)::

    hold 0.0 12.5      # press at 0 s, release at 12.5 s (push-to-talk)
    tap 14             # one short press
    double 20          # double press (hands-free on/off)
    triple 40          # triple press (retype)
    long 50            # a hold past pair_hold_s (pairing, if nothing is said)
    press 60 / release 61

From stdin (``-``) the time may be left out: the gesture happens when the line is read.
"""

from __future__ import annotations

from sttkb.daemon import Error

TAP_DOWN_S = 0.08      # how long a scripted tap holds the button (seconds)
TAP_GAP_S = 0.15       # gap between the presses of a double/triple (seconds)


class GestureScriptError(Error, ValueError):
    """A line of the gesture script cannot be read."""


Edge = tuple[float, bool]  # (time in seconds, pressed)


def parse_line(line: str, *, now: float | None = None, pair_hold_s: float = 5.0, lineno: int = 0) -> list[Edge]:
    """The button edges one script line asks for; ``now`` = the time to use when the line gives none."""
    words = line.split("#", 1)[0].split()
    if not words:
        return []
    kind, nums = words[0].lower(), words[1:]
    where = f"gesture script line {lineno}: " if lineno else "gesture: "
    try:
        times = [float(n) for n in nums]
    except ValueError:
        raise GestureScriptError(f"{where}{line.strip()!r}: times must be numbers (seconds)") from None
    want = {"hold": 2, "tap": 1, "double": 1, "triple": 1, "long": 1, "press": 1, "release": 1}
    if kind not in want:
        raise GestureScriptError(f"{where}unknown gesture {kind!r}; use one of {', '.join(want)}")
    if len(times) == want[kind] - 1 and now is not None:
        times = [now] + times
    if len(times) != want[kind]:
        usage = "hold START END" if kind == "hold" else f"{kind} AT"
        raise GestureScriptError(f"{where}{line.strip()!r}: expected `{usage}` (seconds)")
    at = times[0]
    if at < 0 or (kind == "hold" and times[1] <= at):
        raise GestureScriptError(f"{where}{line.strip()!r}: times must be >= 0 and a hold must end after it starts")
    if kind == "hold":
        return [(at, True), (times[1], False)]
    if kind == "press":
        return [(at, True)]
    if kind == "release":
        return [(at, False)]
    if kind == "long":
        return [(at, True), (at + pair_hold_s + 0.5, False)]
    n = {"tap": 1, "double": 2, "triple": 3}[kind]
    edges: list[Edge] = []
    for i in range(n):
        t = at + i * (TAP_DOWN_S + TAP_GAP_S)
        edges += [(t, True), (t + TAP_DOWN_S, False)]
    return edges


def parse_script(text: str, *, pair_hold_s: float = 5.0) -> list[Edge]:
    """All edges of a script, in time order."""
    edges: list[Edge] = []
    for i, line in enumerate(text.splitlines(), 1):
        edges += parse_line(line, pair_hold_s=pair_hold_s, lineno=i)
    return sorted(edges, key=lambda e: e[0])

"""Render `sttkb bench --set split`: sentences that run across mid-sentence pauses of 0.8-2.0 s.

    .venv/bin/python scripts/make_split_bench_set.py [OUT_DIR]     (default: device/bench_data/split)

Needs espeak-ng (1.51 made the shipped files) and sox. A developer's tool, not part of the product: the rendered
files are committed, so the box and the development machine measure the same audio.

Each espeak-ng sentence is said in parts, each part rendered on its own and joined with a pause of quiet room
(-65 dBFS white noise, seeded). A part that does not end the sentence must not sound like a sentence end, so it
gets espeak-ng's non-final intonation:

- a part that ends at one of the sentence's commas is rendered with its comma: espeak-ng's comma intonation, a
  fall-rise that says "more is coming";
- a part that ends mid-clause (no punctuation there) is rendered as SSML (``-m``) ending in a ``<break/>``: a clause
  closed by a break gets espeak-ng's "no punctuation" intonation, level to the end, with no final fall;
- only the last part ends in . ? or ! and gets the falling (or question, exclamation) intonation.

(Measured while choosing: on "I was thinking that we could", en-us, the pitch of the last 250 ms falls from 111 to
84 Hz when the part is rendered as plain text, the end of a sentence; it stays at 98-110 Hz with the SSML break, and
falls to 80 then rises to 94 Hz with a comma.)

The real recording: the JFK clip of the main set with its two mid-sentence pauses (about 1.0 and 1.1 s long as the
VAD measures them) lengthened by repeating the quietest 0.2 s of each pause's own background, crossfaded.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
RATE = 16000
ROOM_DBFS = -65.0
EDGE_S = 0.15
"""Quiet room before the first and after the last part of each clip (seconds)."""

# name, espeak-ng voice, words per minute, the parts as said (joined with one space they are the transcript),
# the pauses between them (seconds).
SENTENCES: list[tuple[str, str, int, list[str], list[float]]] = [
    ("02-en-us-160", "en-us", 160,
     ["When the train arrives at the station,", "please stand behind the yellow line."], [1.2]),
    ("03-en-gb-150", "en-gb", 150,
     ["I was thinking that we could", "maybe paint the kitchen", "a lighter shade of blue."], [0.9, 1.6]),
    ("04-en-us-f3-165", "en-us+f3", 165,
     ["Do you think we could move the meeting", "to Thursday afternoon?"], [1.4]),
    ("05-en-gb-x-rp-150", "en-gb-x-rp", 150,
     ["My sister Margaret moved to Lisbon", "after she finished her degree in chemistry."], [1.8]),
    ("06-en-gb-scotland-140", "en-gb-scotland", 140,
     ["If the package has not arrived by Friday,", "call the post office", "and ask them to check."], [1.0, 2.0]),
    ("07-en-us-nyc-155", "en-us-nyc", 155,
     ["What a wonderful surprise", "to see you here tonight!"], [1.5]),
    ("08-en-029-145", "en-029", 145,
     ["The old bridge over the river", "was closed for repairs last summer."], [0.8]),
    ("09-en-gb-x-gbcwmd-150", "en-gb-x-gbcwmd", 150,
     ["Before you leave the house,", "make sure the windows are shut", "and the lights are off."], [1.3, 1.1]),
    ("10-en-gb-155", "en-gb", 155,
     ["Can you tell me", "where the nearest pharmacy is?"], [1.7]),
    ("11-en-us-150", "en-us", 150,
     ["We spent the whole weekend in Edinburgh,", "walking around the castle", "and eating far too much."],
     [0.9, 1.9]),
]

JFK_NAME = "01-jfk-longer-pauses"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
JFK_PAUSES = [(2.30, 2.95, 0.5), (4.30, 5.05, 0.8)]
"""In the JFK recording: each mid-sentence pause (from, to seconds) and how much longer it is made (seconds)."""


def room(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(round(seconds * RATE))) * 10 ** (ROOM_DBFS / 20)).astype(np.float32)


def render_part(text: str, voice: str, wpm: int, final: bool, tmp: Path) -> np.ndarray:
    """One part as 16 kHz float32, espeak-ng's silence before and after it trimmed."""
    wav, out = tmp / "part.wav", tmp / "part16.wav"
    if final or text.endswith(","):
        cmd = ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text]
    else:  # mid-clause: a clause closed by an SSML break keeps a level, non-final intonation
        cmd = ["espeak-ng", "-m", "-v", voice, "-s", str(wpm), "-w", str(wav),
               f'<speak>{escape(text)}<break time="200ms"/></speak>']
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["sox", str(wav), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True)
    audio, rate = soundfile.read(str(out), dtype="float32")
    assert rate == RATE
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[loud[0]:loud[-1] + 1]


def sentence(voice: str, wpm: int, parts: list[str], pauses: list[float], seed: int, tmp: Path) -> np.ndarray:
    assert len(pauses) == len(parts) - 1 and all(0.8 <= p <= 2.0 for p in pauses)
    assert parts[-1][-1] in ".?!" and all(p[-1] not in ".?!" for p in parts[:-1])
    out = [room(EDGE_S, seed)]
    for i, part in enumerate(parts):
        out.append(render_part(part, voice, wpm, i == len(parts) - 1, tmp))
        out.append(room(pauses[i] if i < len(pauses) else EDGE_S, seed + 1 + i))
    return np.concatenate(out)


def quietest(audio: np.ndarray, start_s: float, end_s: float, window_s: float = 0.2) -> int:
    """Sample index where the quietest ``window_s`` between ``start_s`` and ``end_s`` begins."""
    win, hop = int(window_s * RATE), RATE // 100
    starts = range(int(start_s * RATE), int(end_s * RATE) - win, hop)
    return min(starts, key=lambda i: float(np.mean(np.square(audio[i:i + win], dtype=np.float64))))


def longer_pauses(audio: np.ndarray) -> np.ndarray:
    """The JFK recording with each of ``JFK_PAUSES`` made longer by repeating its quietest 0.2 s, crossfaded."""
    fade = int(0.02 * RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out, at = [], 0
    for start_s, end_s, extra_s in JFK_PAUSES:
        i = quietest(audio, start_s, end_s)
        loop = audio[i:i + int(0.2 * RATE)]
        filler = np.tile(loop, int(np.ceil(extra_s / 0.2)) + 1)[:int(extra_s * RATE) + fade]
        head = audio[at:i + fade].copy()
        head[-fade:] = head[-fade:] * (1 - ramp) + filler[:fade] * ramp      # into the repeated background
        tail_start = filler[-fade:] * (1 - ramp) + audio[i:i + fade] * ramp  # and back into the recording
        out += [head, filler[fade:-fade], tail_start]
        at = i + fade
    out.append(audio[at:])
    return np.concatenate(out).astype(np.float32)


def write(folder: Path, name: str, audio: np.ndarray, text: str) -> None:
    soundfile.write(str(folder / f"{name}.flac"), np.clip(audio, -1.0, 1.0), RATE, subtype="PCM_16")
    (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    print(f"{name}: {len(audio) / RATE:.1f} s  {text}")


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else REPO / "device" / "bench_data" / "split"
    folder.mkdir(parents=True, exist_ok=True)
    jfk, rate = soundfile.read(str(REPO / "device" / "bench_data" / "01-jfk.wav"), dtype="float32")
    assert rate == RATE and jfk.ndim == 1
    write(folder, JFK_NAME, longer_pauses(jfk), JFK_TEXT)
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, voice, wpm, parts, pauses) in enumerate(SENTENCES):
            write(folder, name, sentence(voice, wpm, parts, pauses, 100 * (k + 1), Path(tmp)), " ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

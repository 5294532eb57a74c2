"""Run the real ``sttkb`` command line in this process, stopping at one stage of a model import so that a test
can send SIGINT at a point where the import provably has not committed yet.

    python -m tests.models.interrupt_child STAGE -- model import SRC --store DIR ...

STAGE is where the child prints ``stage STAGE`` on stdout and then waits (up to 60 s) for the signal:
  converting  after 20 tensors have been written to the temp file
  validating  as whisper.cpp starts on the reference clip (it keeps running; a wait right before the install
              makes sure the signal lands before the commit, inside whisper.cpp or after it)
  committing  validated, right before ``ModelStore.install`` renames anything

SIGINT is set to raise KeyboardInterrupt first, as for a command typed in a terminal: a test runner started in
the background of a non-interactive shell has SIGINT *ignored*, children inherit that, and the import then runs to
the end whatever the test sends (that is how the old test failed with exit 0 and the model installed).
"""

from __future__ import annotations

import signal
import sys
import time

import sttkb.models.ggml as ggml
import sttkb.models.validate as validate
from sttkb.cli import main
from sttkb.models.store import ModelStore

STAGES = ("converting", "validating", "committing")


def _announce(stage: str) -> None:
    print(f"stage {stage}", flush=True)


def _wait_for_the_signal() -> None:
    time.sleep(60)           # SIGINT interrupts the sleep with KeyboardInterrupt


def _stop_at(stage: str) -> None:
    real_install, real_write, real_transcribe = ModelStore.install, ggml.write_tensor, validate._transcribe
    written = []

    def write_tensor(*args, **kwargs):
        written.append(1)
        if len(written) == 20 and stage == "converting":
            _announce(stage)
            _wait_for_the_signal()
        return real_write(*args, **kwargs)

    def transcribe(*args, **kwargs):
        if stage == "validating":
            _announce(stage)
        return real_transcribe(*args, **kwargs)

    def install(self, *args, **kwargs):
        if stage == "committing":
            _announce(stage)
        if stage in ("validating", "committing"):
            _wait_for_the_signal()
        return real_install(self, *args, **kwargs)

    ggml.write_tensor, validate._transcribe, ModelStore.install = write_tensor, transcribe, install


if __name__ == "__main__":
    stage, sep, *argv = sys.argv[1:]
    assert stage in STAGES and sep == "--", sys.argv
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _stop_at(stage)
    sys.exit(main(argv))

"""sttkb: a box that listens, transcribes on the device and types what you say as a USB or Bluetooth keyboard.

This folder (device/) is the package ``sttkb``: the core both sides share (:mod:`sttkb.errors`, :mod:`sttkb.config`,
:mod:`sttkb.keyboard`), the speech side (audio, VAD, ASR, models, text; :mod:`sttkb.speech` builds it), the daemon
and the ``sttkb`` command (:mod:`sttkb.cli`, the composition root). The keyboard side is :mod:`sttkb.gadget`
(gadget/). Only ``sttkb.cli`` sees both sides; see docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"

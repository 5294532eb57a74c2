"""sttkb.gadget, the keyboard side: text -> keystrokes for the host's layout -> HID reports -> USB gadget or BLE HID.

Imports only the core (:mod:`sttkb.errors`, :mod:`sttkb.config`, :mod:`sttkb.keyboard`), never audio or ASR code.
USB and Bluetooth share one keymap and one typist; :mod:`sttkb.gadget.factory` builds every keyboard.
"""

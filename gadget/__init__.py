"""sttkb keyboard side: text -> keystrokes for the host's layout -> HID reports -> USB gadget or BLE HID.

Nothing in this package knows about audio. USB and Bluetooth share one keymap and one typist.
"""

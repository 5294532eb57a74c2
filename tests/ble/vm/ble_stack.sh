#!/bin/bash
# Inside the qemu guest: system D-Bus, two virtual LE controllers (btvirt -L -l2 -> hci0, hci1) and ONE real
# bluetoothd (Debian bluez 5.66) managing both, with the device's own settings (services/bluetooth/main.conf).
# Usage: ble_stack.sh [NOPLUGINS]   (default "input,hog": the test host on hci1 reads the HID service itself;
#        '' keeps every plugin, so the host side's hog plugin makes a kernel input device via uhid)
set -uo pipefail
noplugins=${1-input,hog}
log=$STTKB_VM_OUT

# Preload the crypto the Bluetooth core needs: loaded lazily during controller setup it made hci0 time out.
modprobe -a bluetooth hci_vhci algif_hash algif_skcipher cmac ecb ecdh_generic uhid hid_generic evdev || true
mkdir -p /run/dbus /var/lib/bluetooth
dbus-daemon --system --fork || { echo "ble_stack: dbus-daemon failed" >&2; exit 1; }

start_btvirt() {
    # STTKB_BTVIRT_ARGS: the Classic test uses dual-mode controllers ("-l2"); the BLE tests LE-only ones.
    # shellcheck disable=SC2086
    btvirt ${STTKB_BTVIRT_ARGS:--L -l2} >"$log/btvirt.log" 2>&1 &
    echo $! >/run/btvirt.pid
    for _ in $(seq 100); do [ -e /sys/class/bluetooth/hci1 ] && return 0; sleep 0.1; done
    return 1
}
healthy() {  # both controllers answered their init commands (a stuck one shows "events:0")
    for h in hci0 hci1; do
        hciconfig "$h" >/dev/null 2>&1 || return 1
        hciconfig "$h" | grep -q "events:0 " && return 1
    done
    return 0
}
for attempt in 1 2 3; do
    start_btvirt && sleep 1 && healthy && break
    echo "ble_stack: virtual controllers not healthy (attempt $attempt), restarting btvirt" >&2
    kill "$(cat /run/btvirt.pid)" 2>/dev/null; sleep 1
done
healthy || { hciconfig -a >&2; echo "ble_stack: no healthy controllers" >&2; exit 1; }
# bluetoothd stores keys under /var/lib/bluetooth/<controller address>/ but does not create that directory.
for h in hci0 hci1; do
    mkdir -p "/var/lib/bluetooth/$(hciconfig "$h" | sed -n 's/.*BD Address: \([0-9A-F:]*\).*/\1/p')"
done

conf=/run/sttkb-bluetooth-main.conf
# STTKB_BT_CONF: the settings bluetoothd runs on (the Classic test: what the box's generator wrote for its mode).
cp "${STTKB_BT_CONF:-services/bluetooth/main.conf}" "$conf"
# Experiments only: STTKB_BT_CONF_SED='s/^Privacy = device/Privacy = off/' edits the copy.
[ -n "${STTKB_BT_CONF_SED-}" ] && sed -i "$STTKB_BT_CONF_SED" "$conf"
# -E: experimental D-Bus API, only so the test host can read Device1.AdvertisingFlags (is it discoverable?).
args=(-n -E -f "$conf")
if [ -n "${STTKB_BT_DEBUG-}" ]; then
    args+=(-d)
    btmon -w "$log/btmon.snoop" >/dev/null 2>&1 &
fi
[ -n "$noplugins" ] && args+=(-P "$noplugins")
# STTKB_BT_BEFORE_BLUETOOTHD: a command to run first (the Classic test holds the box's HID PSMs with it).
if [ -n "${STTKB_BT_BEFORE_BLUETOOTHD-}" ]; then eval "$STTKB_BT_BEFORE_BLUETOOTHD" || exit 1; fi
/usr/libexec/bluetooth/bluetoothd "${args[@]}" >"$log/bluetoothd.log" 2>&1 &
echo $! >/run/bluetoothd.pid
for _ in $(seq 100); do
    [ "$(bluetoothctl list 2>/dev/null | grep -c Controller)" -ge 2 ] && exit 0
    sleep 0.2
done
echo "ble_stack: bluetoothd did not show two controllers" >&2
bluetoothctl list >&2
exit 1

"""The whole box, booted: the SD image that image-build makes (from a Debian bookworm arm64 stand-in for Raspberry
Pi OS Lite) runs on an emulated Pi 4 CPU (qemu-system-aarch64 -cpu cortex-a72, Debian's arm64 kernel, real systemd,
no network) the way a user's card would:

1. first boot is cut off mid-way (the VM is killed while it installs the .debs, like pulling the power);
2. the next boot resumes it and finishes offline; sttkb-gadget.service makes the USB keyboard on a UDC (dummy_hcd,
   which loops the gadget back to the guest's own USB host side); sttkb.service starts as Type=notify with every
   line of its hardening unchanged; the daemon hears a real recording through ALSA (snd-aloop: the recording is
   played into the loopback's other end) and types it; the text the guest's host side reads from /dev/input
   equals what was said. Listening is started and stopped through the control socket: Debian's arm64 kernel has
   no gpio-sim, so the button cannot be pressed here (gpiozero's MockFactory tests cover the gestures);
3. a reboot brings the daemon up again without first boot — configured, while the box was off, the way a user
   edits the card's config: a speech server on the LAN as its engine and Bluetooth Classic. The box's systemd runs
   the project's generators at boot: the daemon may reach that server only, bluetoothd gets BR/EDR settings; a
   dictation goes through the server; the config put back, one daemon-reload takes both drop-ins away.

Test scaffolding added to the image copy (and nothing else): /etc/modules-load.d/sttkb-vm-test.conf (dummy_hcd,
snd-aloop, 9p — hardware a Pi has or the test's own share), sttkb-vm-test.service, which mounts the test's 9p
share and runs the guest script, settings in /etc/sttkb/config.toml for the emulated CPU (CONFIG_CHANGES), and
for the reboot a unit giving the emulated NIC its address (a Pi gets its network from NetworkManager). Emulated
times are a trend figure only (TCG is 10-50x slower than a Pi).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from sttkb.models.wer import wer
from tests.box.conftest import EPOCH
from tests.conftest import REPO
from tests.vm.harness import emulator_lock

from sttkb_image import arm64_vm
from sttkb_image.ext4 import Batch, Ext4
from sttkb_image.partitions import read_layout

# The first test pays for the three boots (module fixture): tens of minutes under emulation.
pytestmark = [pytest.mark.vm, pytest.mark.box, pytest.mark.timeout(90 * 60)]

JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
SD_EXTRA = 1536 << 20     # the card is larger than the image; first boot grows the root into it
BOOT_TIMEOUT = 40 * 60

MODULES_CONF = "# test scaffolding: the UDC a Pi has (dwc2) and its microphone, emulated; the test's 9p share\n" \
               "dummy_hcd\nsnd_aloop\n9pnet_virtio\n9p\n"
# The box's own config, with settings for a CPU emulated 10-50x slower than a Pi (as in
# tests/daemon/test_run_vm.py): PortAudio's two-period capture buffer of 480 frames overruns on snd-aloop under
# emulation (40 % of the audio lost, and the mic taken for unplugged); 4096 frames (a 0.5 s buffer) still lost a
# buffer mid-recording when this machine was loaded (load 6 on 2 cores: the emulated CPUs then get a fraction of
# a core, and a 256 ms gap cost the typed text three words), so 8192 (a 1 s buffer; a callback every 0.5 s stays
# well inside the daemon's 2 s "microphone stalled" limit). A 2 s end-of-speech
# pause makes the recording one segment, so whisper.cpp runs once instead of three times (minutes each here), and
# no speculative decode in the recording's pauses: a Pi abandons one that speech interrupts within a fraction of
# a second, the emulated CPU only after its encoder pass (minutes), which the real decode then waits behind.
# qemu's virt machine has no GPIO at all (and Debian's arm64 kernel no gpio-sim), so the button and LED pins are
# left empty: the daemon then runs without them and says so (gpiozero's MockFactory tests cover the gestures).
CONFIG_CHANGES = (("frames_per_buffer = 480", "frames_per_buffer = 8192"),
                  ("end_silence_ms = 700", "end_silence_ms = 2000"), ("speculate_ms = 240", "speculate_ms = 0"),
                  ('pin = "GPIO17"', 'pin = ""'), ('pin = "GPIO27"', 'pin = ""'))
TEST_UNIT = """\
[Unit]
Description=whole-box VM check: test driver (test scaffolding, not part of the product)
After=sttkb.service sttkb-firstboot.service sttkb-gadget.service

[Service]
Type=simple
ExecStart=/bin/sh -c 'mkdir -p /run/vmtest && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmtest /run/vmtest && exec /bin/bash /run/vmtest/guest.sh'
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

WAIT_AND_RECORD = r"""#!/bin/bash
OUT=/run/vmtest
exec > $OUT/guest.log 2>&1
set -x
timeout 2400 systemctl is-system-running --wait > $OUT/system_state
set +x
for i in $(seq 900); do systemctl is-active -q sttkb.service && break; sleep 1; done   # (a slow start)
set -x
systemctl list-units --failed --no-legend --plain > $OUT/failed
systemd-analyze > $OUT/analyze 2>&1
for u in sttkb.service sttkb-gadget.service sttkb-firstboot.service; do
  systemctl show $u -p Id -p ActiveState -p SubState -p Result -p NRestarts -p WatchdogUSec -p UnitFileState \
    -p ConditionResult -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic \
    -p ActiveEnterTimestampMonotonic -p InactiveExitTimestampMonotonic
  echo
done > $OUT/units
ls /var/lib/sttkb > $OUT/state_dir
"""
DICTATE = r"""
w1=$(systemctl show sttkb.service -p WatchdogTimestampMonotonic --value)
ls /sys/class/udc > $OUT/udc
cat /sys/class/udc/*/state > $OUT/udc_state
stat -c '%G %a' /dev/hidg0 > $OUT/hidg0
/opt/sttkb/venv/bin/python $OUT/guest_dictation.py $OUT $OUT/jfk.wav
w2=$(systemctl show sttkb.service -p WatchdogTimestampMonotonic --value)
echo "$w1 $w2" > $OUT/watchdog
systemctl show sttkb.service -p IPAddressAllow -p IPAddressDeny -p RestrictAddressFamilies > $OUT/ip_local
journalctl -b --no-pager -o short-monotonic -p info > $OUT/journal_info
journalctl -b --no-pager -u sttkb.service -o cat > $OUT/journal_sttkb
journalctl -b --no-pager -u sttkb-firstboot.service -o short-monotonic > $OUT/journal_firstboot
"""
# The reboot (3.): the config the box boots with says engine = "wyoming://10.0.2.2:PORT" and mode = "classic"
# (_configure_while_off). qemu's user-mode network puts this machine's loopback at 10.0.2.2, where a real
# wyoming-faster-whisper listens (tests/remote/servers.py); the remote timeout is raised for the emulated CPU.
# The emulated board has no Bluetooth, so bluetoothd itself does not start: the unit as systemd loaded it is what
# is checked. Then the config is put back and one daemon-reload must take both drop-ins away.
REMOTE_AT_BOOT = r"""
systemctl show sttkb.service -p ActiveState -p IPAddressAllow -p IPAddressDeny -p RestrictAddressFamilies \
    -p DropInPaths > $OUT/ip_remote
systemctl show bluetooth.service -p ExecStart -p DropInPaths > $OUT/bt_classic
conf=$(systemctl show bluetooth.service -p ExecStart | sed -n 's/.* -f \([^ ;]*\) .*/\1/p')
grep '^ControllerMode' "$conf" > $OUT/bt_classic_mode
ip -br addr > $OUT/net
mkdir -p $OUT/remote
/opt/sttkb/venv/bin/python $OUT/guest_dictation.py $OUT/remote $OUT/jfk.wav
/usr/local/bin/sttkb status --json > $OUT/remote/status.json
journalctl -b --no-pager -u sttkb.service -o cat > $OUT/remote/journal_sttkb
cp /run/vmtest/config.toml /etc/sttkb/config.toml
systemctl daemon-reload
systemctl show bluetooth.service -p ExecStart -p DropInPaths > $OUT/bt_le
systemctl show sttkb.service -p IPAddressAllow -p DropInPaths > $OUT/ip_back
"""
NET_UNIT = """\
[Unit]
Description=whole-box VM check: the emulated NIC's address (test scaffolding, not part of the product)
Before=sttkb.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for i in $(seq 600); do ifc=$(ls /sys/class/net | grep -v "^lo$" | head -n1); [ -n "$ifc" ] && break; sleep 0.1; done; ip link set "$ifc" up && ip addr add 10.0.2.15/24 dev "$ifc"'

[Install]
WantedBy=multi-user.target
"""
POWEROFF = "\nsync\ntouch $OUT/finished\nsystemctl poweroff\n"


def _scaffold(image: Path, work: Path) -> None:
    """Add the test-only files to the image's root filesystem (debugfs; nothing mounted)."""
    layout = read_layout(image)
    fs = Ext4(image, layout.root.start)
    (work / "modules.conf").write_text(MODULES_CONF)
    (work / "test.service").write_text(TEST_UNIT)
    config = fs.read("/etc/sttkb/config.toml").decode()
    for default, emulated in CONFIG_CHANGES:
        assert config.count(default) == 1, default
        config = config.replace(default, emulated)
    (work / "config.toml").write_text(config)
    batch = Batch(fs, EPOCH)
    batch.write("/etc/sttkb/config.toml", work / "config.toml", replace=True)
    batch.write("/etc/modules-load.d/sttkb-vm-test.conf", work / "modules.conf")
    batch.write("/etc/systemd/system/sttkb-vm-test.service", work / "test.service")
    batch.symlink("/etc/systemd/system/multi-user.target.wants/sttkb-vm-test.service",
                  "/etc/systemd/system/sttkb-vm-test.service")
    batch.run()
    fs.fsck("after adding the test scaffolding")


def _configure_while_off(disk: Path, work: Path, port: int) -> None:
    """Before the reboot, as a user editing the card: a speech server on the LAN as the engine, Bluetooth Classic;
    and the test's NIC unit (which waits for the NIC to appear). The first boot's config stays in
    work/config.toml."""
    fs = Ext4(disk, read_layout(disk).root.start)
    config = fs.read("/etc/sttkb/config.toml").decode()
    for default, changed in (('engine = "local"', f'engine = "wyoming://10.0.2.2:{port}"'),
                             ("remote_timeout_ms = 2000", "remote_timeout_ms = 60000"),
                             ('mode = "le"', 'mode = "classic"')):
        assert config.count(default) == 1, default
        config = config.replace(default, changed)
    (work / "config-again.toml").write_text(config)
    (work / "net.service").write_text(NET_UNIT)
    batch = Batch(fs, EPOCH)
    batch.write("/etc/sttkb/config.toml", work / "config-again.toml", replace=True)
    batch.write("/etc/systemd/system/sttkb-vm-net.service", work / "net.service")
    batch.symlink("/etc/systemd/system/multi-user.target.wants/sttkb-vm-net.service",
                  "/etc/systemd/system/sttkb-vm-net.service")
    batch.run()
    fs.fsck("after configuring the reboot")


def _boot(box, disk: Path, share: Path, script: str, log: Path, **kw) -> arm64_vm.Run:
    (share / "guest.sh").write_text(script)
    with emulator_lock():   # never beside another emulated guest: the box's real-time audio would starve
        return arm64_vm.boot(box.kernel, box.initrd, box.cmdline + " panic=-1", drives=[disk],
                             shares={"vmtest": share}, timeout=kw.pop("timeout", BOOT_TIMEOUT), console_log=log, **kw)


def _units(text: str) -> dict[str, dict[str, str]]:
    units: dict[str, dict[str, str]] = {}
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        units[props["Id"]] = props
    return units


@pytest.fixture(scope="module")
def box_runs(box_image, tmp_path_factory):
    """Boot the image three times: power cut in first boot, first boot resumed + dictation, reboot."""
    work = tmp_path_factory.mktemp("boxrun")
    disk = work / "sd.img"
    shutil.copyfile(box_image.path, disk)
    _scaffold(disk, work)
    with open(disk, "r+b") as f:
        f.truncate(disk.stat().st_size + SD_EXTRA)
    runs = {}
    for name in ("cut", "first", "again"):
        share = work / f"share-{name}"
        share.mkdir()
    # 1. power cut while first boot installs the Debian packages
    cut = _boot(box_image, disk, work / "share-cut", "#!/bin/bash\nsleep 3600\n", work / "console-cut.log",
                cut_when=r"sttkb-firstboot: installing \d+ Debian packages", cut_after=8)
    runs["cut"] = (cut, work / "share-cut")
    # 2. first boot resumes and finishes; the daemon starts; a dictation through ALSA and the USB gadget
    share = work / "share-first"
    shutil.copyfile(REPO / "tests/data/jfk.wav", share / "jfk.wav")
    shutil.copyfile(Path(__file__).with_name("guest_dictation.py"), share / "guest_dictation.py")
    shutil.copyfile(Path(__file__).parents[1] / "xkb_host.py", share / "xkb_host.py")
    first = _boot(box_image, disk, share, WAIT_AND_RECORD + DICTATE + POWEROFF, work / "console-first.log")
    runs["first"] = (first, share)
    # 3. reboot, configured while off for a speech server on the LAN and Bluetooth Classic: no first boot, the
    # daemon comes up again, the generators' drop-ins are loaded, a dictation goes through the real server
    share = work / "share-again"
    for name in ("jfk.wav", "guest_dictation.py", "xkb_host.py"):
        shutil.copyfile(work / "share-first" / name, share / name)
    shutil.copyfile(work / "config.toml", share / "config.toml")       # put back at the end
    server = _speech_server(work)
    try:
        _configure_while_off(disk, work, server.port)
        script = WAIT_AND_RECORD + REMOTE_AT_BOOT + POWEROFF
        again = _boot(box_image, disk, share, script, work / "console-again.log", timeout=30 * 60, network=True)
    finally:
        server.kill()
    runs["again"] = (again, share)
    runs["server_log"] = server.log_tail(40)
    return runs


def _speech_server(work: Path):
    """wyoming-faster-whisper on this machine's 127.0.0.1 (the guest's 10.0.2.2), its model loaded."""
    from sttkb.asr.wyoming_client import WyomingClient
    from sttkb.config.engine_url import parse_engine_url
    from tests.remote import servers
    server = servers.Server("wyoming", servers.ensure_server_venv(), work)
    server.start()
    try:
        server.wait_listening()
        WyomingClient(parse_engine_url(f"wyoming://127.0.0.1:{server.port}")).probe(timeout_s=120)
    except Exception:
        server.kill()
        raise
    return server


def _done(runs, name: str) -> Path:
    run, share = runs[name]
    assert (share / "finished").exists(), (f"boot '{name}' did not finish ({run.seconds:.0f} s, timed out: "
                                           f"{run.timed_out}); guest log:\n"
                                           f"{(share / 'guest.log').read_text()[-2000:] if (share / 'guest.log').exists() else '-'}"
                                           f"\nconsole:\n{run.tail(5000)}")
    return share


def test_power_cut_during_first_boot_then_it_resumes_and_finishes(box_runs):
    cut, _ = box_runs["cut"]
    assert cut.cut, f"first boot never reached the .deb step:\n{cut.tail()}"
    first, _ = box_runs["first"]
    share = _done(box_runs, "first")
    units = _units((share / "units").read_text())
    fb = units["sttkb-firstboot.service"]
    assert (fb["Result"], fb["ActiveState"]) == ("success", "active"), fb
    log = (share / "journal_firstboot").read_text()
    assert "growing" not in log, "the grow step ran again although it had finished before the power cut"
    assert re.search(r"installing \d+ Debian packages", log), log
    assert "venv ready" in log and "done" in log, log
    assert "firstboot.pending" not in (share / "state_dir").read_text().split()


def test_services_start_with_their_hardening_and_nothing_fails(box_runs):
    share = _done(box_runs, "first")
    assert (share / "failed").read_text().strip() == "", (share / "failed").read_text()
    assert (share / "system_state").read_text().strip() == "running"
    units = _units((share / "units").read_text())
    daemon, gadget = units["sttkb.service"], units["sttkb-gadget.service"]
    assert (daemon["ActiveState"], daemon["SubState"], daemon["NRestarts"]) == ("active", "running", "0"), daemon
    assert (gadget["ActiveState"], gadget["Result"]) == ("active", "success"), gadget
    # Type=notify with a watchdog: the daemon pinged it across the dictation (minutes of decoding under emulation;
    # WatchdogSec=30; a kill for missing it would also lose the dictation's text, checked below)
    w1, w2 = (int(x) for x in (share / "watchdog").read_text().split())
    unit_watchdog = re.search(r"^WatchdogSec=(\d+)$", (REPO / "services/sttkb.service").read_text(), re.M).group(1)
    assert daemon["WatchdogUSec"] == f"{unit_watchdog}s" and 0 < w1 < w2, (daemon, (share / "watchdog").read_text())
    assert (share / "udc").read_text().strip() and (share / "udc_state").read_text().strip() == "configured"
    assert (share / "hidg0").read_text().split()[0] == "sttkb"
    # the unit that ran is the one in the repository, line for line
    assert "ProtectSystem=strict" in (REPO / "services/sttkb.service").read_text()


def test_a_dictation_heard_through_alsa_is_typed_through_the_usb_gadget(box_runs):
    share = _done(box_runs, "first")
    facts = json.loads((share / "dictation.json").read_text())
    assert facts["keys_before_listen"] == 0, facts
    assert facts["aplay"].startswith("rc=0"), facts
    typed = facts["text"]
    assert wer(JFK, typed) <= 0.15, f"typed {typed!r}; facts: {facts}"
    assert facts["keys_down_at_end"] == [], facts
    assert "\n" not in typed, typed


def test_the_journal_holds_no_transcript_above_debug(box_runs):
    share = _done(box_runs, "first")
    journal = (share / "journal_info").read_text().lower()
    for phrase in ("fellow americans", "your country", "ask not"):
        assert phrase not in journal, [x for x in journal.splitlines() if phrase in x][:3]


def test_after_a_reboot_the_daemon_comes_up_without_first_boot(box_runs):
    share = _done(box_runs, "again")
    units = _units((share / "units").read_text())
    fb, daemon = units["sttkb-firstboot.service"], units["sttkb.service"]
    assert fb["UnitFileState"] == "disabled" and fb["ActiveState"] == "inactive", fb
    assert (daemon["ActiveState"], daemon["SubState"]) == ("active", "running"), daemon
    assert (share / "failed").read_text().strip() == ""


def _props(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_a_remote_engine_opens_the_service_to_that_server_only(box_runs):
    """Issue #15: with a local engine (first boot) the daemon has no IP at all; booted with `[asr] engine =
    "wyoming://LAN-ADDRESS"`, systemd (the box's own PID 1, running the project's generator) loads the generator's
    drop-in: IP families allowed, and of all addresses only the server's; the config put back and systemd
    reloaded, the drop-in is gone."""
    local = _props(_done(box_runs, "first") / "ip_local")
    share = _done(box_runs, "again")
    remote, back = _props(share / "ip_remote"), _props(share / "ip_back")
    assert local["IPAddressAllow"] == "" and "AF_INET" not in local["RestrictAddressFamilies"], local
    assert remote["IPAddressAllow"].split() == ["10.0.2.2/32"], remote
    assert set(remote["IPAddressDeny"].split()) == set(local["IPAddressDeny"].split()) != set(), (local, remote)
    assert {"AF_INET", "AF_INET6", "AF_UNIX", "AF_BLUETOOTH"} <= set(remote["RestrictAddressFamilies"].split())
    assert "/run/systemd/generator/sttkb.service.d/" in remote["DropInPaths"], remote
    assert back["IPAddressAllow"] == "" and "/run/systemd/generator/sttkb.service.d/" not in back["DropInPaths"], back


def test_classic_mode_starts_bluetoothd_on_br_edr_settings(box_runs):
    """[bluetooth] mode = "classic": the box's systemd (at boot) loads the generator's drop-in after the shipped
    one, so bluetoothd would start on the written copy with ControllerMode = bredr and without the input and hog
    plugins; back to "le" (and a daemon-reload), the shipped LE settings again."""
    share = _done(box_runs, "again")
    classic, le = _props(share / "bt_classic"), _props(share / "bt_le")
    assert "/run/systemd/generator/bluetooth.service.d/60-sttkb-radio.conf" in classic["DropInPaths"], classic
    assert "-f /run/systemd/generator/sttkb-bluetoothd.conf --noplugin=input,hog" in classic["ExecStart"], classic
    assert classic["ExecStart"].count("argv[]=") == 1, "the shipped command is replaced, not run beside"
    assert (share / "bt_classic_mode").read_text().split() == ["ControllerMode", "=", "bredr"]
    assert "60-sttkb-radio.conf" not in le["DropInPaths"], le
    assert "-f /etc/sttkb/bluetooth/main.conf --noplugin=input,hog" in le["ExecStart"], le


def test_a_dictation_through_a_speech_server_on_the_lan(box_runs):
    """Issue #15 on the box itself: with `[asr] engine = "wyoming://10.0.2.2:PORT"` (a LAN address), the box's
    systemd opens the daemon to that server only, the daemon sends the recording it hears to the real
    wyoming-faster-whisper on this machine, and its text is typed through the USB gadget; `sttkb status` says
    the server typed it."""
    share = _done(box_runs, "again")
    unit = _props(share / "ip_remote")
    assert unit["ActiveState"] == "active" and unit["IPAddressAllow"].split() == ["10.0.2.2/32"], unit
    facts = json.loads((share / "remote" / "dictation.json").read_text())
    status = json.loads((share / "remote" / "status.json").read_text())["engine"]
    journal = (share / "remote" / "journal_sttkb").read_text()[-3000:]
    assert status["last_engine"] == "remote" and status["local_segments"] == 0, (status, journal,
                                                                                 box_runs["server_log"])
    assert status["remote_segments"] >= 1 and status["last_error"] is None, status
    assert wer(JFK, facts["text"]) <= 0.15, f"typed {facts['text']!r}; facts: {facts}"
    assert facts["keys_down_at_end"] == [] and "\n" not in facts["text"], facts


def test_print_emulated_times(box_runs, capsys):
    """Boot, first-boot and release → last-key times on the emulated Cortex-A72 (a trend figure only)."""
    share = _done(box_runs, "first")
    again = _done(box_runs, "again")
    units = _units((share / "units").read_text())
    fb = units["sttkb-firstboot.service"]
    first_boot_s = (int(fb["ExecMainExitTimestampMonotonic"]) - int(fb["ExecMainStartTimestampMonotonic"])) / 1e6
    facts = json.loads((share / "dictation.json").read_text())
    with capsys.disabled():
        print(f"\nwhole box, emulated cortex-a72 (TCG; trend only): boot {(again / 'analyze').read_text().strip()}; "
              f"first boot (resumed after the cut) {first_boot_s:.0f} s; "
              f"release -> last key {facts['stop_to_last_key']:.1f} s; "
              f"VM wall: cut {box_runs['cut'][0].seconds:.0f} s, first {box_runs['first'][0].seconds:.0f} s, "
              f"reboot {box_runs['again'][0].seconds:.0f} s")
    assert first_boot_s > 0

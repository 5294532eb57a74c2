"""The transcript journal on a real filesystem (tmp_path): fsync before return, crash recovery, torn lines,
rotation, privacy switch."""

from __future__ import annotations

import json
import logging
import os
import stat

from sttkb.daemon import journal as journal_mod
from sttkb.daemon.journal import CANCELLED, TYPED, UNTYPED, Journal, read_entries


def test_append_is_on_disk_and_fsynced_before_it_returns(tmp_path, monkeypatch):
    calls = []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(journal_mod.os, "write", lambda fd, b: calls.append(("write", b)) or real_write(fd, b))
    monkeypatch.setattr(journal_mod.os, "fsync", lambda fd: calls.append(("fsync", fd)) or real_fsync(fd))
    j = Journal(tmp_path / "j.jsonl")
    rid = j.append("hello world", session=1)
    # the last two calls: the record's bytes, then fsync of that file
    assert calls[-2][0] == "write" and b"hello world" in calls[-2][1]
    assert calls[-1][0] == "fsync"
    # another reader (as after a crash) sees it untyped
    (entry,) = read_entries(tmp_path / "j.jsonl")
    assert (entry.id, entry.text, entry.state, entry.session) == (rid, "hello world", UNTYPED, 1)


def test_marks_fold_into_the_entry_state(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    a = j.append("first", 1)
    b = j.append("second", 1)
    j.mark(a, TYPED)
    j.mark(b, CANCELLED, left="cond")
    states = {e.id: (e.state, e.left) for e in j.entries()}
    assert states == {a: (TYPED, ""), b: (CANCELLED, "cond")}


def test_after_a_crash_untyped_text_stays_untyped_and_ids_continue(tmp_path, caplog):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    typed = j.append("typed before the crash", 1)
    j.mark(typed, TYPED)
    lost = j.append("said but never typed", 2)
    del j  # crash: no close, no mark
    with caplog.at_level(logging.WARNING):
        j2 = Journal(path)
    assert "1 transcript(s)" in caplog.text and "sttkb retype" in caplog.text
    assert "said but never typed" not in caplog.text  # transcripts never in logs above DEBUG
    entries = {e.id: e.state for e in j2.entries()}
    assert entries == {typed: TYPED, lost: UNTYPED}
    assert j2.append("next", 3) == lost + 1


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_on_a_fresh_line(tmp_path, caplog):
    path = tmp_path / "j.jsonl"
    good = json.dumps({"id": 1, "t": 1.0, "session": 1, "text": "kept", "state": "typed"})
    path.write_text(good + "\n" + '{"id": 2, "t": 2.0, "session": 2, "text": "half wri')
    with caplog.at_level(logging.WARNING):
        j = Journal(path)
    assert [e.text for e in j.entries()] == ["kept"]
    assert "damaged" in caplog.text
    rid = j.append("after power came back", 3)
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["text"] == "after power came back"
    assert [e.text for e in j.entries()] == ["kept", "after power came back"]
    assert rid == 2


def test_rotation_caps_the_size_and_keeps_n_files(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path, max_bytes=2000, keep=2)
    ids = [j.append(f"sentence number {i} " + "x" * 80, i) for i in range(100)]
    for rid in ids:
        j.mark(rid, TYPED)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["j.jsonl", "j.jsonl.1", "j.jsonl.2"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    entries = j.entries()
    assert entries[-1].id == ids[-1] and entries[-1].state == TYPED
    assert len(entries) < 100  # the oldest ones were dropped with the oldest file
    assert [e.id for e in entries] == sorted(e.id for e in entries)


def test_rotation_with_keep_zero_keeps_only_the_current_file(tmp_path):
    j = Journal(tmp_path / "j.jsonl", max_bytes=500, keep=0)
    for i in range(30):
        j.append("y" * 60, i)
    assert [p.name for p in tmp_path.iterdir()] == ["j.jsonl"]


def test_disabled_journal_writes_nothing(tmp_path):
    j = Journal(tmp_path / "sub" / "j.jsonl", enabled=False)
    rid = j.append("private words", 1)
    j.mark(rid, TYPED)
    assert j.entries() == []
    assert not (tmp_path / "sub").exists()


def test_journal_file_is_private(tmp_path):
    j = Journal(tmp_path / "j.jsonl")
    j.append("a", 1)
    mode = stat.S_IMODE((tmp_path / "j.jsonl").stat().st_mode)
    assert mode & 0o007 == 0  # nobody but the sttkb user and group

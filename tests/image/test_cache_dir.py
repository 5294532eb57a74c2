"""Build caches (sttkb_image.cache_dir): an entry is there whole or not at all."""

from __future__ import annotations

import pytest

from sttkb_image.cache_dir import cached


def test_an_entry_is_filled_once_then_reused(tmp_path):
    calls = []

    def fill(tmp):
        calls.append(tmp)
        (tmp / "b.deb").write_text("b")
        (tmp / "a.deb").write_text("a")
        (tmp / "scratch").mkdir()                  # left by the fill, not part of the result
        return ["b.deb", "a.deb"]

    dest = tmp_path / "debs-1234"
    first = cached(dest, fill, "debs")
    again = cached(dest, fill, "debs")
    assert first == again == [dest / "b.deb", dest / "a.deb"]        # in the fill's order
    assert len(calls) == 1 and [p.read_text() for p in again] == ["b", "a"]
    assert not (tmp_path / "debs-1234.partial").exists()


def test_a_failed_fill_leaves_nothing_a_later_build_would_take(tmp_path):
    dest = tmp_path / "wheelhouse-x"

    def broken(tmp):
        (tmp / "half.whl").write_text("half")
        raise KeyboardInterrupt                     # Ctrl-C or a failed download in the middle

    with pytest.raises(KeyboardInterrupt):
        cached(dest, broken, "wheelhouse")
    assert list(tmp_path.iterdir()) == []          # no entry, and no half-filled directory left behind either

    def good(tmp):
        assert list(tmp.iterdir()) == []             # the next try starts from an empty directory
        (tmp / "whole.whl").write_text("whole")
        return ["whole.whl"]

    assert cached(dest, good, "wheelhouse") == [dest / "whole.whl"]


def test_an_incomplete_entry_is_built_again(tmp_path):
    """A directory without its .complete list (e.g. copied in by hand, or cut short by a crash of the machine before
    this scheme) is not a result."""
    dest = tmp_path / "cross-wheel-x"
    dest.mkdir()
    (dest / "old.whl").write_text("old")
    assert cached(dest, lambda tmp: (tmp / "new.whl").write_text("new") and ["new.whl"], "cross wheel") \
        == [dest / "new.whl"]
    assert not (dest / "old.whl").exists()


def test_a_fill_that_names_a_file_it_did_not_write_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.deb"):
        cached(tmp_path / "e", lambda tmp: ["nothing.deb"], "debs")
    assert list(tmp_path.iterdir()) == []

"""Write-behind: a file written in bulk is sent to disk a stretch at a time, as it grows."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from creditbook.store import writeback


def test_each_stretch_is_sent_as_the_file_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every CHUNK written starts its write-back; nothing is asked twice or left a gap."""
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(writeback, "CHUNK", 64 << 10)
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, advice: asked.append((off, n)))
    path = tmp_path / "copy.db"
    path.write_bytes(b"")
    with writeback.write_behind(str(path)), path.open("ab") as out:
        for _ in range(5):
            out.write(b"x" * (64 << 10))
            out.flush()
            deadline = time.monotonic() + 5
            while sum(n for _, n in asked) < out.tell() and time.monotonic() < deadline:
                time.sleep(0.005)
    assert asked and asked[0][0] == 0
    assert all(off == prev + n for (prev, n), (off, _) in zip(asked, asked[1:], strict=False))
    assert sum(n for _, n in asked) == 5 * (64 << 10)


def test_a_missing_file_is_no_error(tmp_path: Path) -> None:
    """Nothing to follow: the block runs and the helper ends."""
    with writeback.write_behind(str(tmp_path / "absent")):
        pass

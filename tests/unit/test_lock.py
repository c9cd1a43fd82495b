"""The account lock: one holder at a time, its pid in the file (OfflineIMAP's lock file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailtwin.errors import LockedError
from mailtwin.state.lock import AccountLock


def test_the_holder_writes_its_pid_over_the_last_one(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "work.lock").write_text("123456789012345\nleft over\n")
    with AccountLock(meta, "work"):
        assert (meta / "work.lock").read_text() == f"{os.getpid()}\n"
    assert (meta / "work.lock").read_text() == f"{os.getpid()}\n"  # left as OfflineIMAP does


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    first = AccountLock(tmp_path / "new", "work")  # the metadata folder is made when missing
    first.acquire()
    try:
        with pytest.raises(LockedError) as exc:
            AccountLock(tmp_path / "new", "work").acquire()
        assert exc.value.exit_code == 3 and "another process" in str(exc.value)
        with AccountLock(tmp_path / "new", "home"):  # another account: its own lock
            pass
    finally:
        first.release()
    with AccountLock(tmp_path / "new", "work"):  # released: free again
        pass
    first.release()  # twice is harmless

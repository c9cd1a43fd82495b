"""The account lock: the same file OfflineIMAP locks, so neither can run beside the other."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mailtwin.errors import LockedError


class AccountLock:
    """``<metadata>/<account>.lock``, held with both flock and lockf.

    OfflineIMAP takes a lockf (POSIX) lock on this file; other tools use flock. On Linux the two
    are independent, so taking both keeps out whichever kind another process uses.
    """

    def __init__(self, metadata: Path, account: str) -> None:
        self.path = metadata / f"{account}.lock"
        self.account = account
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise LockedError(
                f"account {self.account}: another process is syncing it (lock {self.path})",
                hint="wait for it to finish; mailtwin and OfflineIMAP cannot sync one account "
                "at the same time",
            ) from e
        # our pid, written over the last holder's and cut to length: truncating to zero first
        # makes ext4 flush the file when it is closed (its replace-by-truncate heuristic)
        pid = f"{os.getpid()}\n".encode()
        os.pwrite(fd, pid, 0)
        os.ftruncate(fd, len(pid))
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops both locks
            self._fd = None

    def __enter__(self) -> AccountLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

"""The account lock: the same file OfflineIMAP locks, so neither can run beside the other."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from mailtwin.errors import LockedError


class AccountLock:
    """``<metadata>/<account>.lock``, held with both flock and lockf.

    OfflineIMAP takes a lockf (POSIX) lock on this file; other tools use flock. On Linux the two
    are independent, so taking both keeps out whichever kind another process uses.
    """

    def __init__(self, metadata: Path, account: str) -> None:
        self.path = metadata / f"{account}.lock"
        self.account = account
        self._f: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            f.close()
            raise LockedError(
                f"account {self.account}: another process is syncing it (lock {self.path})",
                hint="wait for it to finish; mailtwin and OfflineIMAP cannot sync one account "
                "at the same time",
            ) from e
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._f = f

    def release(self) -> None:
        if self._f is not None:
            self._f.close()  # closing drops both locks
            self._f = None

    def __enter__(self) -> AccountLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

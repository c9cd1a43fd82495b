"""Files that hold secrets: the config file's permissions, and refresh token files."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path


def loose(path: Path) -> bool:
    """Group or others may read ``path``."""
    try:
        return bool(os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def warn_if_loose(path: Path, holders: list[str], warn: Callable[[str], None]) -> None:
    """One warning when a config file that holds secrets (``holders``: "[section] option")
    is readable by others."""
    if holders and loose(path):
        warn(
            f"{path} holds a secret ({', '.join(holders[:3])}) and others can read it: "
            f"chmod 600 {path}"
        )


def writable_by_others(path: Path) -> bool:
    """Group or others may write ``path``, or another user (not root) owns it."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)) or st.st_uid not in (0, os.getuid())


def warn_if_writable(path: Path, what: str, warn: Callable[[str], None]) -> None:
    """One warning when a file whose Python mailtwin runs (the config's expressions, a
    pythonfile) can be changed by someone else: that is running their code as you."""
    if writable_by_others(path):
        warn(
            f"{path} ({what}) can be changed by other users, and the Python in it runs as "
            f"you: chmod go-w {path}"
        )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only, also while it is written: the
    file is created 0600 (or an existing one is made so) before a byte of the secret lands."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_first_line(path: Path) -> str:
    """The first line, stripped (as OfflineIMAP reads remotepassfile); OSError if unreadable."""
    with path.open(encoding="utf-8") as f:
        return f.readline().strip()

"""What one invocation asks for, beside the config file: the command line's run options."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailtwin.model import Frozen, _set

if TYPE_CHECKING:
    from pathlib import Path


class RunOptions(Frozen):
    __match_args__ = (
        "accounts",
        "folders",
        "once",
        "single",
        "dry_run",
        "quick",
        "info",
        "ui",
        "logfile",
        "syslog",
        "debug",
        "restore",
        "allow_deletions",
    )
    __slots__ = __match_args__
    accounts: tuple[str, ...] | None  # -a: only these accounts (None: [general] accounts)
    folders: tuple[str, ...] | None  # -f: only these folders (names as on the remote side)
    once: bool  # -o: ignore autorefresh, sync once
    single: bool  # -1: one connection, one account at a time
    dry_run: bool  # --dry-run: print the plan, change nothing
    quick: bool  # -q
    info: bool  # --info: show repositories, capabilities and folders; sync nothing
    ui: str  # -u (quiet | basic; OfflineIMAP's other names are shown as basic)
    logfile: Path | None  # -l
    syslog: bool  # -s
    debug: frozenset[str]  # -d categories
    # a folder stopped for safety (mass deletion, folder or messages gone): the way out
    restore: bool  # --restore-missing: forget what is gone and copy it back
    allow_deletions: bool  # --allow-deletions: carry the deletions out

    def __init__(
        self,
        accounts: tuple[str, ...] | None = None,
        folders: tuple[str, ...] | None = None,
        once: bool = False,
        single: bool = False,
        dry_run: bool = False,
        quick: bool = False,
        info: bool = False,
        ui: str = "basic",
        logfile: Path | None = None,
        syslog: bool = False,
        debug: frozenset[str] = frozenset(),
        restore: bool = False,
        allow_deletions: bool = False,
    ) -> None:
        values = locals()
        for name in self.__match_args__:
            _set(self, name, values[name])

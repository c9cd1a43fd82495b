"""What one invocation asks for, beside the config file: the command line's run options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RunOptions:
    accounts: tuple[str, ...] | None = None  # -a: only these accounts (None: [general] accounts)
    folders: tuple[str, ...] | None = None  # -f: only these folders (names as on the remote side)
    once: bool = False  # -o: ignore autorefresh, sync once
    single: bool = False  # -1: one connection, one account at a time
    dry_run: bool = False  # --dry-run: print the plan, change nothing
    quick: bool = False  # -q
    info: bool = False  # --info: show repositories, capabilities and folders; sync nothing
    ui: str = "basic"  # -u (quiet | basic; OfflineIMAP's other names are shown as basic)
    logfile: Path | None = None  # -l
    syslog: bool = False  # -s
    debug: frozenset[str] = field(default_factory=frozenset)  # -d categories
    # a folder stopped for safety (mass deletion, folder or messages gone): the way out
    restore: bool = False  # --restore-missing: forget what is gone and copy it back
    allow_deletions: bool = False  # --allow-deletions: carry the deletions out

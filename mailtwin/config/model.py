"""The typed, validated config: frozen values built once by load.py, read by every other layer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailtwin.config.options import RepoType


@dataclass(frozen=True)
class GeneralConfig:
    accounts: tuple[str, ...]  # [general] accounts as written (-a picks from Config.accounts)
    metadata: Path  # ~ and $VARS expanded; not created here
    maxsyncaccounts: int
    ui: str | None  # OfflineIMAP's UI name as written (valid); None: unset
    socktimeout: float | None  # seconds; None: no timeout
    fsync: bool
    pythonfile: Path | None = None


@dataclass(frozen=True)
class RepositoryConfig:
    name: str  # the part after "Repository "
    type: RepoType
    localfolders: Path | None  # Maildir: ~ and $VARS expanded; IMAP: None
    sep: str  # Maildir's separator; IMAP repositories use the server's
    remotehost: str | None  # IMAP only, from here to maxconnections
    remoteport: int | None  # None: 993 with ssl, else 143
    remoteuser: str | None
    remotepass: str | None = field(repr=False)  # remotepass, else remotepassfile's first line
    ssl: bool
    starttls: bool
    readonly: bool
    sync_deletes: bool
    createfolders: bool
    folderfilter: Callable[[str], bool]  # on this side's names; raises ConfigError if it fails
    nametrans: Callable[[str], str]  # this side's name → the other side's
    folderincludes: tuple[str, ...]
    expunge: bool
    maxconnections: int
    sslcacertfile: Path | None = None  # IMAP: CA file to verify with; None: the system's

    @property
    def section(self) -> str:
        return f"Repository {self.name}"


@dataclass(frozen=True)
class AccountConfig:
    name: str
    local: RepositoryConfig  # Maildir or IMAP: Side.A
    remote: RepositoryConfig  # IMAP: Side.B
    autorefresh: float | None  # minutes; None: sync once
    quick: int  # 0: never, -1: always, n: n quick syncs between full ones
    max_deletes: int = 50  # a folder stops before deleting more than this on one side ...
    max_delete_share: int = 25  # ... when that is also more than this percent of it

    @property
    def section(self) -> str:
        return f"Account {self.name}"


@dataclass(frozen=True)
class Config:
    path: Path
    general: GeneralConfig
    accounts: Mapping[str, AccountConfig]  # the ones to sync: -a, else [general] accounts

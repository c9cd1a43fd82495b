"""Events: the only way the sync core talks to a user interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mailtwin.model import Side


@dataclass(frozen=True, slots=True)
class Event:
    account: str


@dataclass(frozen=True, slots=True)
class AccountStarted(Event):
    pass


@dataclass(frozen=True, slots=True)
class AccountDone(Event):
    ok: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class FolderCreated(Event):
    side: Side
    name: str  # as shown to people (decoded)
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class FolderPlanned(Event):
    folder: str  # as shown to people
    # what lands on each side: copies, flag changes, deletions
    copies: dict[Side, int]
    flags: dict[Side, int]
    deletions: dict[Side, int]
    details: tuple[str, ...] = ()  # one line per action, filled for --dry-run


@dataclass(frozen=True, slots=True)
class FolderDone(Event):
    folder: str
    copies: dict[Side, int]
    flags: dict[Side, int]
    deletions: dict[Side, int]
    failed: int = 0


@dataclass(frozen=True, slots=True)
class Warning(Event):
    text: str
    folder: str | None = None


@dataclass(frozen=True, slots=True)
class Failed(Event):
    text: str
    folder: str | None = None
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class Info(Event):
    """Lines of --info output."""

    lines: tuple[str, ...] = field(default_factory=tuple)


Emit = Callable[[Event], None]

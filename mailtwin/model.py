"""Frozen values shared by every layer: sides, flags, message infos, snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Side(Enum):
    """The two sides of an account: A is OfflineIMAP's local repository, B its remote one."""

    A = "a"
    B = "b"

    @property
    def other(self) -> Side:
        return Side.B if self is Side.A else Side.A


SIDE_NAME = {Side.A: "local", Side.B: "remote"}  # as OfflineIMAP's config names them


MessageId = int | str
"""An IMAP UID, or a Maildir key (the file's base name before ':')."""

Flags = frozenset[str]
"""IMAP flag names (``\\Seen``, ``\\Answered`` ... and keywords); Maildir letters are mapped."""

ContentKey = str
"""What re-matches one message's copies: Message-ID + CRLF size, or a header hash + CRLF size."""

SYSTEM_FLAGS: Flags = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
NO_FLAGS: Flags = frozenset()


@dataclass(frozen=True, slots=True)
class MessageInfo:
    id: MessageId
    flags: Flags
    size: int | None = None
    internal_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One folder as a store sees it at the start of a sync."""

    uidvalidity: int
    uidnext: int
    messages: Mapping[MessageId, MessageInfo]
    modseq: int | None = None
    # True: built from the last sync point and what changed since (see stores/since.py), not
    # listed in full; a message no status row named there may be missing
    derived: bool = False


@dataclass(frozen=True, slots=True)
class Since:
    """One side's last sync point, when the status vouches that its pair rows named every
    message of that side then (see sync/folder.py): a store with mod-sequences lists only what
    changed since, and ``known`` (each named id → its synced flags) stands for the rest."""

    uidvalidity: int
    uidnext: int
    modseq: int
    known: Mapping[MessageId, Flags]


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A folder as listed by a store: its name in that store, and the hierarchy separator."""

    name: str
    sep: str
    selectable: bool = True


@dataclass(frozen=True, slots=True)
class Delivered:
    """The result of copying one message: its id on the target (None: not known yet) and key."""

    id: MessageId | None
    key: ContentKey


@dataclass(frozen=True, slots=True)
class StoreCaps:
    """What a store can do, decided once at connect."""

    # flags the store can keep; None means any flag or keyword
    flags: Flags | None = None
    # True when append() reports the new ids (IMAP UIDPLUS, Maildir always)
    knows_new_ids: bool = True


@dataclass(frozen=True, slots=True)
class FolderStamp:
    """What a store tells of a folder without opening it. Equal stamps taken before two syncs
    mean the folder did not change in between, when ``complete``: IMAP (UIDVALIDITY, UIDNEXT,
    MESSAGES, HIGHESTMODSEQ); Maildir (st_mtime_ns of new/, of cur/). None: not known."""

    kind: str  # "imap" or "maildir": stamps of different kinds never match
    values: tuple[int | None, ...]

    @property
    def complete(self) -> bool:
        # without HIGHESTMODSEQ a flag change shows in no field of an IMAP stamp
        return bool(self.values) and None not in self.values

    def text(self) -> str:
        """The fixed text form kept in the status: ``imap 7 42 40 1093``, ``-`` for None."""
        return " ".join([self.kind, *("-" if v is None else str(v) for v in self.values)])

    @classmethod
    def parse(cls, text: str | None) -> FolderStamp | None:
        """The stamp of ``text()``; None for None or anything unreadable (that folder is then
        simply synced in full)."""
        if not text:
            return None
        kind, *rest = text.split()
        try:
            return cls(kind, tuple(None if v == "-" else int(v) for v in rest))
        except ValueError:
            return None

"""Frozen values shared by every layer: sides, flags, message infos, snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Side(Enum):
    """The two sides of an account: A is OfflineIMAP's local repository, B its remote one."""

    A = "a"
    B = "b"

    @property
    def other(self) -> Side:
        return Side.B if self is Side.A else Side.A


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
    extra: Mapping[str, bool] = field(default_factory=dict)

"""The Store / Folder interface every kind of store implements (Maildir, IMAP, memory).

Bodies move as streams: the source folder's ``fetch`` pushes each message's bytes, exactly as the
source holds them, into a ``BodySink`` that the target folder's ``receiver`` made. The target
converts line ends where its format needs it (CRLF on IMAP, LF in a Maildir) and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from mailtwin.model import (
    ContentKey,
    Delivered,
    Flags,
    FolderInfo,
    FolderStamp,
    Frozen,
    MessageId,
    MessageInfo,
    Since,
    Snapshot,
    StoreCaps,
    _set,
)

if TYPE_CHECKING:
    from datetime import datetime


class FlagChange(Frozen):
    __match_args__ = ("id", "add", "remove")
    __slots__ = __match_args__
    id: MessageId
    add: Flags
    remove: Flags

    def __init__(self, id: MessageId, add: Flags, remove: Flags) -> None:
        _set(self, "id", id)
        _set(self, "add", add)
        _set(self, "remove", remove)


class ReceiveResult:
    """What a receiver did: source id → where the copy landed; source id → why it failed."""

    __slots__ = ("delivered", "failed")

    def __init__(
        self,
        delivered: dict[MessageId, Delivered] | None = None,
        failed: dict[MessageId, str] | None = None,
    ) -> None:
        self.delivered: dict[MessageId, Delivered] = {} if delivered is None else delivered
        self.failed: dict[MessageId, str] = {} if failed is None else failed

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, ReceiveResult)
        return (self.delivered, self.failed) == (other.delivered, other.failed)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        return f"ReceiveResult(delivered={self.delivered!r}, failed={self.failed!r})"


class BodyWriter(Protocol):
    """One message on its way into a target folder."""

    async def write(self, chunk: bytes) -> None: ...

    async def finish(self, source_id: MessageId, internal_date: datetime | None) -> None:
        """The whole body was written; ``source_id`` names it (IMAP may send the UID last)."""
        ...

    async def abort(self) -> None:
        """Drop what was written (the transfer broke)."""
        ...


class BodySink(Protocol):
    """Where a source folder's ``fetch`` sends bodies. Made by the target's ``receiver``."""

    async def begin(self) -> BodyWriter: ...

    async def close(self) -> ReceiveResult:
        """Land everything still buffered; report every message begun and finished."""
        ...


class Folder(Protocol):
    """One open folder of a store."""

    @property
    def name(self) -> str: ...

    async def snapshot(self, since: Since | None = None) -> Snapshot:
        """uidvalidity, uidnext and every message's id and flags (size and date where cheap).

        With ``since``, a store that keeps mod-sequences may list only what changed after it
        and return a ``derived`` snapshot (see stores/since.py); any other store, or one whose
        folder no longer matches ``since``, lists the folder in full.
        """
        ...

    async def fetch(self, ids: Sequence[MessageId], sink: BodySink) -> None:
        """Stream the bodies of ``ids`` into ``sink``; ids no longer there are skipped."""
        ...

    async def keys(self, ids: Sequence[MessageId]) -> dict[MessageId, ContentKey]:
        """The content keys of ``ids`` (see content.py); ids no longer there are left out.

        Asked only for messages no status row pairs, when both sides have such messages: this
        is how a copy that landed before a crash, or a whole folder after a lost state, finds
        its twin instead of being copied again.
        """
        ...

    def receiver(self, meta: Mapping[MessageId, MessageInfo]) -> BodySink:
        """A sink that adds messages to this folder; ``meta`` gives each source id's flags."""
        ...

    async def store_flags(self, changes: Sequence[FlagChange]) -> None:
        """Add and remove flags (never set them absolutely); batched by the store."""
        ...

    async def delete(self, ids: Sequence[MessageId]) -> None:
        """Delete messages (IMAP: \\Deleted, then UID EXPUNGE when the repository expunges)."""
        ...

    async def close(self) -> None: ...


class Store(Protocol):
    """A repository: a Maildir root or an IMAP account."""

    @property
    def caps(self) -> StoreCaps: ...

    @property
    def capacity(self) -> int | None:
        """How many folders may use the store at once (IMAP: its connections, fewer once the
        server refused one); None: no limit (a Maildir)."""
        ...

    async def connect(self) -> None: ...

    async def list_folders(self) -> list[FolderInfo]:
        """Every folder by its name in this store: IMAP names stay in modified UTF-7 as the
        server sends them (OfflineIMAP names its Maildir folders so too); Maildir names use
        `sep`."""
        ...

    async def create_folder(self, name: str) -> None:
        """Create a folder (and its parents where the store needs them)."""
        ...

    def check_new_folder(self, name: str) -> None:
        """FolderError when create_folder would refuse ``name`` for its own reasons (a Maildir:
        a path outside the root, a Maildir's own subdirectory name); a dry run asks, and
        nothing is written. A server's refusal shows only when a real run asks it."""
        ...

    async def open_folder(self, name: str, readonly: bool) -> Folder: ...

    async def stamps(self, names: Sequence[str]) -> dict[str, FolderStamp | None]:
        """A stamp of each folder in ``names``, all at once and without opening any (IMAP: from
        the listing's LIST-STATUS, else one pipelined STATUS each). None where the store cannot
        vouch that a change would show: that folder is then synced in full."""
        ...

    async def close(self) -> None: ...

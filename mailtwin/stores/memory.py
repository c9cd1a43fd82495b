"""An in-memory store for the planner's and apply's tests, with fault injection.

It behaves like an IMAP account with UIDPLUS and QRESYNC: ids are integer UIDs, given in
increasing order; every change gets a mod-sequence, so a snapshot ``since`` a sync point lists
only what changed; and every write can be made to fail after a number of operations
(``fail_after``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mailtwin.content import KeyBuilder, content_key
from mailtwin.errors import FolderError, InternalError, MessageError, StoreError
from mailtwin.model import (
    ContentKey,
    Delivered,
    Flags,
    FolderInfo,
    FolderStamp,
    MessageId,
    MessageInfo,
    Since,
    Snapshot,
    StoreCaps,
)
from mailtwin.stores.base import BodySink, FlagChange, ReceiveResult
from mailtwin.stores.since import derive, usable


class InjectedFault(StoreError):
    """The fault a test asked for."""


@dataclass
class MemMessage:
    body: bytes
    flags: Flags
    internal_date: datetime | None = None


@dataclass
class MemFolderData:
    uidvalidity: int = 1
    uidnext: int = 1
    messages: dict[int, MemMessage] = field(default_factory=dict)
    # mod-sequences, given when a change is first observed (tests change messages directly):
    # the highest, each present uid's last change, each expunged uid's expunge
    modseq: int = 1
    changed_at: dict[int, int] = field(default_factory=dict)
    vanished_at: dict[int, int] = field(default_factory=dict)
    _seen: dict[int, Flags] = field(default_factory=dict)

    def observe(self) -> int:
        """Give every change since the last look its mod-sequence; the highest one."""
        for uid, m in self.messages.items():
            if self._seen.get(uid) != m.flags:
                self.modseq += 1
                self.changed_at[uid] = self.modseq
                self._seen[uid] = m.flags
        for uid in self._seen.keys() - self.messages.keys():
            self.modseq += 1
            self.vanished_at[uid] = self.modseq
            del self._seen[uid]
            del self.changed_at[uid]
        return self.modseq

    def renumber(self) -> None:
        """What a server does when a folder is deleted and made again: new UIDs, new
        UIDVALIDITY."""
        old = sorted(self.messages.items())
        self.uidvalidity += 1
        self.messages = {}
        self.uidnext = 1
        for _, m in old:
            self.add(m.body, m.flags, m.internal_date)

    def stamp(self) -> FolderStamp:
        """As an IMAP server with CONDSTORE would give it; a digest of every uid and its flags
        stands in for HIGHESTMODSEQ, so tests that change messages directly are seen too."""
        listing = repr(sorted((u, sorted(m.flags)) for u, m in self.messages.items()))
        digest = zlib.crc32(listing.encode())
        return FolderStamp("imap", (self.uidvalidity, self.uidnext, len(self.messages), digest))

    def add(self, body: bytes, flags: Flags = frozenset(), date: datetime | None = None) -> int:
        uid = self.uidnext
        self.uidnext += 1
        self.messages[uid] = MemMessage(body, frozenset(flags), date)
        # seen at once: deleted before the next look, it must still show as vanished
        self.modseq += 1
        self.changed_at[uid] = self.modseq
        self._seen[uid] = frozenset(flags)
        return uid


class MemoryStore:
    def __init__(self, sep: str = "/", readonly: bool = False, flags: Flags | None = None) -> None:
        self.sep = sep
        self.readonly = readonly
        self.folders: dict[str, MemFolderData] = {}
        self.writes = 0
        self.fail_after: int | None = None  # raise InjectedFault on the write after this many
        # True: the failing write is an upload that lands but is never reported (a crash
        # between the server's OK and our record of it)
        self.lose_report = False
        self.condstore = True  # False: list folders in full, as a server without CONDSTORE
        # uids whose body cannot be read: fetch skips them, then fails with MessageError (as a
        # server that cannot read one message), and the rest of the sync goes on
        self.unreadable: set[int] = set()
        self._caps = StoreCaps(flags=flags)

    @property
    def caps(self) -> StoreCaps:
        return self._caps

    @property
    def capacity(self) -> int | None:
        return None

    def count_write(self) -> None:
        if self.readonly:
            raise InternalError("write to a read-only memory store")
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise InjectedFault("injected fault")
        self.writes += 1

    async def connect(self) -> None:
        return None

    async def list_folders(self) -> list[FolderInfo]:
        return [FolderInfo(name, self.sep) for name in sorted(self.folders)]

    async def create_folder(self, name: str) -> None:
        self.count_write()
        self.folders.setdefault(name, MemFolderData())

    def check_new_folder(self, name: str) -> None:
        return None

    async def open_folder(self, name: str, readonly: bool) -> MemoryFolder:
        if name not in self.folders:
            raise FolderError(f"no folder {name!r}")
        return MemoryFolder(self, name, self.folders[name])

    async def stamps(self, names: Sequence[str]) -> dict[str, FolderStamp | None]:
        return {n: self.folders[n].stamp() if n in self.folders else None for n in names}

    async def close(self) -> None:
        return None


class MemoryFolder:
    def __init__(self, store: MemoryStore, name: str, data: MemFolderData) -> None:
        self.store = store
        self._name = name
        self.data = data

    @property
    def name(self) -> str:
        return self._name

    async def snapshot(self, since: Since | None = None) -> Snapshot:
        d = self.data
        if not self.store.condstore:
            since = None
        modseq = d.observe() if self.store.condstore else None
        if since is not None and usable(since, d.uidvalidity, d.uidnext, modseq):
            floor = since.modseq
            changed = {u for u, ms in d.changed_at.items() if ms > floor}
            vanished = [u for u, ms in d.vanished_at.items() if ms > floor]
            return derive(since, d.uidvalidity, d.uidnext, modseq, vanished, self._infos(changed))
        msgs = self._infos(d.messages)
        return Snapshot(d.uidvalidity, d.uidnext, msgs, modseq)

    def _infos(self, uids: Iterable[int]) -> dict[MessageId, MessageInfo]:
        ms = self.data.messages
        return {u: MessageInfo(u, ms[u].flags, len(ms[u].body), ms[u].internal_date) for u in uids}

    async def fetch(self, ids: Sequence[MessageId], sink: BodySink) -> None:
        skipped = []
        for mid in ids:
            m = self.data.messages.get(mid) if isinstance(mid, int) else None
            if m is None:
                continue
            if mid in self.store.unreadable:
                skipped.append(mid)
                continue
            w = await sink.begin()
            # two chunks: receivers must cope with bodies split anywhere
            half = len(m.body) // 2
            await w.write(m.body[:half])
            await w.write(m.body[half:])
            await w.finish(mid, m.internal_date)
        if skipped:
            raise MessageError(f"injected: cannot read {skipped}")

    async def keys(self, ids: Sequence[MessageId]) -> dict[MessageId, ContentKey]:
        out: dict[MessageId, ContentKey] = {}
        for mid in ids:
            m = self.data.messages.get(mid) if isinstance(mid, int) else None
            if m is not None:
                out[mid] = content_key(m.body)
        return out

    def receiver(self, meta: Mapping[MessageId, MessageInfo]) -> BodySink:
        return _MemSink(self, meta)

    async def store_flags(self, changes: Sequence[FlagChange]) -> None:
        try:
            for c in changes:
                self.store.count_write()
                m = self.data.messages.get(c.id) if isinstance(c.id, int) else None
                if m is not None:
                    m.flags = (m.flags | c.add) - c.remove
        finally:
            self._stamp_now()

    async def delete(self, ids: Sequence[MessageId]) -> None:
        try:
            for mid in ids:
                self.store.count_write()
                if isinstance(mid, int):
                    self.data.messages.pop(mid, None)
        finally:
            self._stamp_now()

    def _stamp_now(self) -> None:
        """Our own writes get their mod-sequences at once, as a CONDSTORE server gives them:
        a later change that undoes one (a test's direct edit) then still shows as a change."""
        if self.store.condstore:
            self.data.observe()

    async def close(self) -> None:
        return None


class _MemWriter:
    def __init__(self, sink: _MemSink) -> None:
        self.sink = sink
        self.buf = bytearray()

    async def write(self, chunk: bytes) -> None:
        self.buf += chunk

    async def finish(self, source_id: MessageId, internal_date: datetime | None) -> None:
        await self.sink.deliver(source_id, bytes(self.buf), internal_date)

    async def abort(self) -> None:
        self.buf.clear()


class _MemSink:
    def __init__(self, folder: MemoryFolder, meta: Mapping[MessageId, MessageInfo]) -> None:
        self.folder = folder
        self.meta = meta
        self.result = ReceiveResult()

    async def begin(self) -> _MemWriter:
        return _MemWriter(self)

    async def deliver(self, source_id: MessageId, body: bytes, date: datetime | None) -> None:
        kb = KeyBuilder()
        kb.feed(body)
        store = self.folder.store
        try:
            store.count_write()
        except InjectedFault as e:
            if store.lose_report:
                self.folder.data.add(body, self.meta[source_id].flags, date)
            self.result.failed[source_id] = str(e)
            raise
        uid = self.folder.data.add(body, self.meta[source_id].flags, date)
        self.result.delivered[source_id] = Delivered(uid, kb.key())

    async def close(self) -> ReceiveResult:
        return self.result

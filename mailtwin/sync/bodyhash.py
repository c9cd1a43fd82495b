"""Telling apart messages that share a content key, by a hash of their bodies."""

from __future__ import annotations

import hashlib
from datetime import datetime

from mailtwin.content import LfToCrlf
from mailtwin.model import MessageId
from mailtwin.stores.base import ReceiveResult


class BodyHashes:
    """A body sink that keeps only a hash of each message (CRLF line ends, so a server's copy
    and a Maildir's agree): how two messages with one content key are told apart."""

    def __init__(self) -> None:
        self.hashes: dict[MessageId, str] = {}

    async def begin(self) -> _HashWriter:
        return _HashWriter(self)

    async def close(self) -> ReceiveResult:
        return ReceiveResult()


class _HashWriter:
    def __init__(self, sink: BodyHashes) -> None:
        self.sink = sink
        self.hash = hashlib.sha256()
        self.crlf = LfToCrlf()

    async def write(self, chunk: bytes) -> None:
        self.hash.update(self.crlf.feed(chunk))

    async def finish(self, source_id: MessageId, internal_date: datetime | None) -> None:
        self.sink.hashes[source_id] = self.hash.hexdigest()[:32]

    async def abort(self) -> None:
        return None

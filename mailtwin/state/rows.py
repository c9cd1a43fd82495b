"""Status rows as plain values, shared by the planner and the status database."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailtwin.model import NO_FLAGS, ContentKey, Flags, MessageId, Side


@dataclass(frozen=True, slots=True)
class PairRow:
    """One synced message: its id on each side (None: kept alone on the other side), the flags
    last synced, and its content key. ``rowid`` is the database's handle (None: not stored yet).
    """

    a: MessageId | None
    b: MessageId | None
    flags: Flags = NO_FLAGS
    key: ContentKey | None = None
    rowid: int | None = None

    def id(self, side: Side) -> MessageId | None:
        return self.a if side is Side.A else self.b

    def without(self, side: Side) -> PairRow:
        return replace(self, a=None) if side is Side.A else replace(self, b=None)

    def with_flags(self, flags: Flags) -> PairRow:
        return replace(self, flags=flags)

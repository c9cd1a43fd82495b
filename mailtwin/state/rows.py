"""Status rows as plain values, shared by the planner and the status database."""

from __future__ import annotations

from typing import NamedTuple

from mailtwin.model import NO_FLAGS, ContentKey, Flags, MessageId, Side


class PairRow(NamedTuple):
    """One synced message: its id on each side (None: kept alone on the other side), the flags
    last synced, and its content key. ``rowid`` is the database's handle (None: not stored yet).

    A tuple, not a frozen dataclass: every sync reads every row of a folder, and a tuple is
    built several times faster (immutable and hashable all the same).
    """

    a: MessageId | None
    b: MessageId | None
    flags: Flags = NO_FLAGS
    key: ContentKey | None = None
    rowid: int | None = None

    def id(self, side: Side) -> MessageId | None:
        return self.a if side is Side.A else self.b

    def without(self, side: Side) -> PairRow:
        return self._replace(a=None) if side is Side.A else self._replace(b=None)

    def with_flags(self, flags: Flags) -> PairRow:
        return self._replace(flags=flags)

"""The planner: every rule of two-way sync, as a pure function from what is to what to do.

``plan(a, b, pairs, opts)`` reads two snapshots and the status rows of one folder pair and returns
a Plan: plain data that ``apply`` carries out and ``--dry-run`` prints. No I/O, no clock.

The rules, for a status row (a pair: the message's id on each side, the flags last synced):

| on A | on B | meaning             | action                                                |
|------|------|---------------------|-------------------------------------------------------|
| yes  | yes  | synced before       | merge flags three-way against the synced flags        |
| yes  | gone | deleted on B        | delete on A if B's deletions propagate, else keep the |
|      |      |                     | A copy alone (a tombstone row)                        |
| gone | yes  | deleted on A        | the same, mirrored                                    |
| gone | gone | deleted on both     | forget the row                                        |
| yes  | none | kept alone on A     | nothing                                               |
| none | yes  | kept alone on B     | nothing                                               |

A message on one side that no row names is new: it is copied to the other side, unless that side
is read-only or the message carries \\Deleted (it is on its way out; copying it would revive it).
Deletions are only ever planned from status rows, so a message never synced is never deleted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from mailtwin.model import (
    ContentKey,
    Flags,
    Frozen,
    MessageId,
    MessageInfo,
    Side,
    Snapshot,
    _set,
)
from mailtwin.state.rows import PairRow

DELETED = "\\Deleted"
EMPTY = Snapshot(uidvalidity=0, uidnext=0, messages={})  # a folder still to be created


class SyncOptions(Frozen):
    """Per side: may we write there; do deletions made there reach the other side."""

    __match_args__ = ("writable", "deletes_from", "flags", "unkept")
    __slots__ = __match_args__
    writable: Mapping[Side, bool]
    deletes_from: Mapping[Side, bool]
    flags: Flags | None  # the flags both sides can keep; None: any
    # keywords one side's server refused to store: left alone on both sides (never copied,
    # never compared), so they stay where they are and nothing is retried every run
    unkept: Flags

    def __init__(
        self,
        writable: Mapping[Side, bool],
        deletes_from: Mapping[Side, bool],
        flags: Flags | None = None,
        unkept: Flags = frozenset(),
    ) -> None:
        _set(self, "writable", writable)
        _set(self, "deletes_from", deletes_from)
        _set(self, "flags", flags)
        _set(self, "unkept", unkept)


# the plan's actions: tuples, as a big sync makes thousands of them
class Copy(NamedTuple):
    source: Side  # copied from this side to source.other
    id: MessageId
    flags: Flags


class SetFlags(NamedTuple):
    side: Side
    id: MessageId
    add: Flags
    remove: Flags


class Delete(NamedTuple):
    side: Side
    id: MessageId


class PairUpdate(NamedTuple):
    """A status-only change: ``old`` becomes ``new`` (None: the row is forgotten)."""

    old: PairRow
    new: PairRow | None


class Plan(Frozen):
    __match_args__ = (
        "copies",
        "flag_changes",
        "deletions",
        "updates",
        "after_delete",
        "after_flags",
        "matches",
    )
    __slots__ = __match_args__
    copies: tuple[Copy, ...]
    flag_changes: tuple[SetFlags, ...]
    deletions: tuple[Delete, ...]
    # rows to rewrite once the actions above have landed (flags merged, tombstones, forgets)
    updates: tuple[PairUpdate, ...]
    # a deletion that lands also forgets (or tombstones) its row: apply finds it here
    after_delete: Mapping[tuple[Side, MessageId], PairUpdate]
    # flag changes land together with their row's new synced flags
    after_flags: Mapping[PairRow, PairRow]
    # unpaired messages found to be copies of each other (same content key): new status rows,
    # recorded once their flag changes (in flag_changes) have landed
    matches: tuple[PairRow, ...]

    def __init__(
        self,
        copies: tuple[Copy, ...] = (),
        flag_changes: tuple[SetFlags, ...] = (),
        deletions: tuple[Delete, ...] = (),
        updates: tuple[PairUpdate, ...] = (),
        after_delete: Mapping[tuple[Side, MessageId], PairUpdate] | None = None,
        after_flags: Mapping[PairRow, PairRow] | None = None,
        matches: tuple[PairRow, ...] = (),
    ) -> None:
        _set(self, "copies", copies)
        _set(self, "flag_changes", flag_changes)
        _set(self, "deletions", deletions)
        _set(self, "updates", updates)
        _set(self, "after_delete", {} if after_delete is None else after_delete)
        _set(self, "after_flags", {} if after_flags is None else after_flags)
        _set(self, "matches", matches)

    def effects(self) -> int:
        """How many changes to either store this plan makes."""
        return len(self.copies) + len(self.flag_changes) + len(self.deletions)

    def is_empty(self) -> bool:
        return self.effects() == 0 and not self.updates and not self.matches

    def count(self, kind: type, side: Side) -> int:
        """Effects of one kind that land on ``side`` (a Copy lands on its source's other side)."""
        if kind is Copy:
            return sum(1 for c in self.copies if c.source.other is side)
        if kind is SetFlags:
            return sum(1 for f in self.flag_changes if f.side is side)
        if kind is Delete:
            return sum(1 for d in self.deletions if d.side is side)
        raise ValueError(kind)


def merge_flags(synced: Flags, a: Flags, b: Flags) -> Flags:
    """Three-way merge: a change on either side wins over no change; additions are united.

    A flag in the synced set stays only if neither side removed it; a flag not in it is added
    if either side added it. No flag can be both added and removed, so there is no conflict.
    """
    return (synced & a & b) | ((a | b) - synced)


def unpaired(a: Snapshot, b: Snapshot, pairs: Iterable[PairRow]) -> dict[Side, set[MessageId]]:
    """Messages on each side that no status row names."""
    named_a = {r.a for r in pairs if r.a is not None}
    named_b = {r.b for r in pairs if r.b is not None}
    return {Side.A: a.messages.keys() - named_a, Side.B: b.messages.keys() - named_b}


def plan(
    a: Snapshot,
    b: Snapshot,
    pairs: Iterable[PairRow],
    opts: SyncOptions,
    keys: Mapping[Side, Mapping[MessageId, ContentKey]] | None = None,
) -> Plan:
    """``keys``: content keys of (at least) the unpaired messages of both sides; given when
    both sides have some, so that copies of one message pair up instead of being copied."""
    snaps = {Side.A: a, Side.B: b}
    msgs: dict[Side, Mapping[MessageId, MessageInfo]] = {s: snaps[s].messages for s in Side}
    keep = opts.flags
    unkept = opts.unkept

    # a folder's messages share a handful of flag sets: filter each set once, so that copies
    # share the result instead of each holding a new one
    kept: dict[Flags, Flags] = {}
    filtering = keep is not None or bool(unkept)

    def filtered(f: Flags) -> Flags:
        """``f`` less the flags not synced (not kept by both sides, or refused)."""
        out = kept.get(f)
        if out is None:
            out = f if keep is None else f & keep
            out = kept[f] = out - unkept if unkept else out
        return out

    def flags_of(side: Side, mid: MessageId) -> Flags:
        return filtered(msgs[side][mid].flags)

    copies: list[Copy] = []
    flag_changes: list[SetFlags] = []
    deletions: list[Delete] = []
    updates: list[PairUpdate] = []
    after_delete: dict[tuple[Side, MessageId], PairUpdate] = {}
    after_flags: dict[PairRow, PairRow] = {}
    paired: dict[Side, set[MessageId]] = {Side.A: set(), Side.B: set()}

    msgs_a, msgs_b = a.messages, b.messages
    paired_a, paired_b = paired[Side.A], paired[Side.B]
    for row in pairs:
        ra, rb = row.a, row.b
        if ra is not None:
            assert ra not in paired_a, f"two status rows name a:{ra!r}"
            paired_a.add(ra)
        if rb is not None:
            assert rb not in paired_b, f"two status rows name b:{rb!r}"
            paired_b.add(rb)
        in_a = ra is not None and ra in msgs_a
        in_b = rb is not None and rb in msgs_b
        if in_a and in_b:
            fa, fb = msgs_a[ra].flags, msgs_b[rb].flags  # type: ignore[index]
            if filtering:
                fa, fb = filtered(fa), filtered(fb)
            if fa == fb == row.flags:
                continue  # the common case, kept cheap: nothing changed since the last sync
            changes, record = _merge_row(row, ra, rb, fa, fb, opts)
            if changes:
                flag_changes.extend(changes)
                after_flags[row] = row.with_flags(record)
            elif record != row.flags:
                updates.append(PairUpdate(row, row.with_flags(record)))
            continue
        ids = {Side.A: ra, Side.B: rb}
        present = {Side.A: in_a, Side.B: in_b}
        if in_a or in_b:
            here = Side.A if present[Side.A] else Side.B
            gone = here.other
            if ids[gone] is None:
                continue  # a tombstone: kept alone on purpose
            if opts.deletes_from[gone] and opts.writable[here]:
                mid = ids[here]
                assert mid is not None
                deletions.append(Delete(here, mid))
                after_delete[(here, mid)] = PairUpdate(row, None)
            else:
                updates.append(PairUpdate(row, row.without(gone)))
        else:
            updates.append(PairUpdate(row, None))

    matches: list[PairRow] = []
    if keys is not None:
        for ma, mb in _match(msgs[Side.A].keys() - paired_a, msgs[Side.B].keys() - paired_b, keys):
            paired_a.add(ma)
            paired_b.add(mb)
            fa, fb = flags_of(Side.A, ma), flags_of(Side.B, mb)
            # no history: what both have counts as synced, so each side's extra flags reach
            # the other (flags are united, none is taken away)
            row = PairRow(ma, mb, fa & fb, keys[Side.A][ma])
            changes, record = _merge_row(row, ma, mb, fa, fb, opts)
            flag_changes.extend(changes)
            matches.append(row.with_flags(record))

    for src in Side:
        if not opts.writable[src.other]:
            continue
        for mid in sorted(msgs[src].keys() - paired[src], key=_order):
            fl = flags_of(src, mid)
            if DELETED in msgs[src][mid].flags:
                continue
            copies.append(Copy(src, mid, fl))

    return Plan(
        copies=tuple(copies),
        flag_changes=tuple(flag_changes),
        deletions=tuple(deletions),
        updates=tuple(updates),
        after_delete=after_delete,
        after_flags=after_flags,
        matches=tuple(matches),
    )


def _match(
    ua: set[MessageId], ub: set[MessageId], keys: Mapping[Side, Mapping[MessageId, ContentKey]]
) -> list[tuple[MessageId, MessageId]]:
    """Pair unpaired messages with equal keys, counting: two copies on A and one on B make one
    pair and leave one to copy, so true duplicates stay as many as they are."""
    by_key: dict[ContentKey, list[MessageId]] = defaultdict(list)
    for mid in sorted(ub, key=_order):
        k = keys[Side.B].get(mid)
        if k is not None:
            by_key[k].append(mid)
    out = []
    for mid in sorted(ua, key=_order):
        k = keys[Side.A].get(mid)
        twins = by_key.get(k) if k is not None else None
        if twins:
            out.append((mid, twins.pop(0)))
    return out


def _merge_row(
    row: PairRow,
    id_a: MessageId | None,
    id_b: MessageId | None,
    fa: Flags,
    fb: Flags,
    opts: SyncOptions,
) -> tuple[list[SetFlags], Flags]:
    """The flag changes for one synced message (``fa``, ``fb``: its flags on each side now),
    and the flags to record as synced."""
    synced = row.flags if opts.flags is None else row.flags & opts.flags
    if opts.unkept:
        synced -= opts.unkept
    merged = merge_flags(synced, fa, fb)
    writable = opts.writable
    if writable[Side.A] and writable[Side.B]:
        # the usual case, without the general one's per-side mappings: both sides get merged
        changes = []
        if merged != fa:
            assert id_a is not None
            changes.append(SetFlags(Side.A, id_a, merged - fa, fa - merged))
        if merged != fb:
            assert id_b is not None
            changes.append(SetFlags(Side.B, id_b, merged - fb, fb - merged))
        return changes, merged
    ids = {Side.A: id_a, Side.B: id_b}
    cur = {Side.A: fa, Side.B: fb}
    target = {s: merged for s in Side}
    record = merged
    for s in Side:
        if not writable[s]:
            # a side we may not write keeps its flags, and we record what it has: its changes
            # still reach the other side, and the other side's own changes stay there
            target[s] = cur[s]
            record = cur[s] if writable[s.other] else synced
    changes = []
    for s in Side:
        add, remove = target[s] - cur[s], cur[s] - target[s]
        if add or remove:
            mid = ids[s]
            assert mid is not None
            changes.append(SetFlags(s, mid, add, remove))
    return changes, record


def _order(mid: MessageId) -> tuple[int, int, str]:
    """UIDs numerically, Maildir keys by name: copies go out in a stable, natural order."""
    if isinstance(mid, int):
        return (0, mid, "")
    return (1, 0, mid)

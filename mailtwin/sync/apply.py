"""Carry a Plan out: batched effects on both stores, each batch recorded as it lands.

Copies are journaled before they start and recorded batch by batch (see ``_copy_batch``). Flag
changes and deletions are recorded once all of them landed, in the run's last transaction,
together with what the caller records for a finished sync (``finish``): one commit per folder
instead of one per kind of change. A crash before it leaves them unrecorded, which is safe: the
sync point recorded before apply asks for full snapshots next time; a flag change that landed
merges again to the same flags (the three-way merge is idempotent), and a row whose message was
deleted on one side finds it gone on both and is forgotten.

Every commit blocks all folders (it runs on the event loop and fsyncs), so a changed folder
costs two: the caller's sync point (``begin``) lands with the first copy batch's journal (or,
without copies, alone before the first flag change or deletion): both are written before
anything changes. The last copy batch is recorded in the last transaction, not on its own: a
crash before it leaves that batch's journal pending, and the next run matches its copies by
content, as it does for a crash inside any batch. Earlier batches are recorded one by one,
which bounds what a crash leaves to match.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from mailtwin.errors import MessageError
from mailtwin.model import SIDE_NAME, Flags, MessageId, MessageInfo, Side, Snapshot
from mailtwin.state.rows import PairRow
from mailtwin.state.status import FolderState, StatusDB
from mailtwin.stores.base import BodySink, BodyWriter, FlagChange, Folder, ReceiveResult
from mailtwin.sync import crashpoint
from mailtwin.sync.plan import Copy, PairUpdate, Plan

COPY_BATCH = 250  # messages per recorded copy batch: bounds what a crash can leave unrecorded
WRITE_BATCH = 2000  # flag changes / deletions per store call


class Report:
    __slots__ = ("copies", "deletions", "failures", "flags", "notes")

    def __init__(self) -> None:
        self.copies = {Side.A: 0, Side.B: 0}
        self.flags = {Side.A: 0, Side.B: 0}
        self.deletions = {Side.A: 0, Side.B: 0}
        self.failures: list[str] = []  # messages that did not sync: exit 1
        self.notes: list[str] = []  # worth saying, not a failure


class _Landed:
    """Status changes whose store effects landed, to record in apply's last transaction."""

    def __init__(self) -> None:
        self.flags_done = False  # every flag change landed: record the merged flags, matches
        self.after_flags: Iterable[PairRow] = ()
        self.matches: Iterable[PairRow] = ()
        self.after_delete: list[PairUpdate] = []
        self.copied: list[PairRow] = []  # the last copy batch's rows
        self.journal: list[int] = []  # and its journal rows, to settle

    def __bool__(self) -> bool:
        return self.flags_done or bool(self.after_delete) or bool(self.journal)

    def record(self, db: StatusDB, fstate: FolderState, updates: Iterable[PairUpdate]) -> None:
        # copies first: the caller's finish looks at the pair rows
        db.insert_pairs(fstate, self.copied)
        db.settle_pending(self.journal)
        db.update_pairs(self.after_flags)
        db.insert_pairs(fstate, self.matches)
        ups = [*self.after_delete, *updates]
        db.delete_pairs(u.old for u in ups if u.new is None)
        db.update_pairs(u.new for u in ups if u.new is not None)


class _Recorder:
    """The folder's transactions during apply; the first one also runs the caller's ``begin``."""

    def __init__(
        self, db: StatusDB, fstate: FolderState, begin: Callable[[], FolderState] | None
    ) -> None:
        self.db = db
        self.fstate = fstate
        self.begin = begin

    @contextmanager
    def transaction(self) -> Iterator[FolderState]:
        with self.db.transaction():
            fstate = self.begin() if self.begin is not None else self.fstate
            yield fstate
        self.fstate, self.begin = fstate, None  # only once it committed

    def start(self) -> None:
        """Before a first effect: record ``begin`` if no transaction has yet."""
        if self.begin is not None:
            with self.transaction():
                pass


async def apply(
    plan: Plan,
    folders: Mapping[Side, Folder],
    db: StatusDB,
    fstate: FolderState,
    snaps: Mapping[Side, Snapshot] | None = None,
    finish: Callable[[Report], None] | None = None,
    begin: Callable[[], FolderState] | None = None,
) -> Report:
    """Carry ``plan`` out. ``begin`` runs in the first transaction, before any effect, and
    returns the folder state to record against (the caller's sync point); ``finish`` runs in
    the last transaction once every effect was tried and nothing raised (the caller's marks of
    a finished sync: they land with the records or not at all)."""
    report = Report()
    rec = _Recorder(db, fstate, begin)
    batches: list[tuple[Sequence[Copy], int | None]] = []
    for src in Side:
        copies = [c for c in plan.copies if c.source is src]
        uidnext = snaps[src.other].uidnext if snaps else None
        batches += [
            (copies[i : i + COPY_BATCH], uidnext) for i in range(0, len(copies), COPY_BATCH)
        ]
    landed = _Landed()
    try:
        for n, (batch, uidnext) in enumerate(batches):
            last = landed if n == len(batches) - 1 else None
            await _copy_batch(batch, folders, rec, report, uidnext, last)
        if plan.flag_changes or plan.deletions:
            rec.start()
        await _set_flags(plan, folders, report, landed)
        await _delete(plan, folders, report, landed)
    except BaseException:
        if landed:  # what landed before the fault is recorded all the same
            with rec.transaction() as fstate:
                landed.record(db, fstate, ())
        raise
    if landed or plan.updates or finish is not None or rec.begin is not None:
        with rec.transaction() as fstate:
            landed.record(db, fstate, plan.updates)
            if finish is not None:
                finish(report)
        crashpoint.step("changes recorded")
    return report


async def _copy_batch(
    batch: Sequence[Copy],
    folders: Mapping[Side, Folder],
    rec: _Recorder,
    report: Report,
    uidnext: int | None,
    defer: _Landed | None,
) -> None:
    """Copy one batch; with ``defer``, its record is left to apply's last transaction."""
    src = batch[0].source
    dst = src.other
    meta = {c.id: MessageInfo(c.id, c.flags) for c in batch}
    # intent first: a crash from here on leaves a journal the next run sees
    with rec.transaction() as fstate:
        handles = rec.db.add_pending(fstate, src, meta, uidnext)
    crashpoint.step("copy batch journaled")
    sink = folders[dst].receiver(meta)
    if crashpoint.ACTIVE:
        sink = _CrashingSink(sink)
    result: ReceiveResult | None = None
    skipped: MessageError | None = None
    try:
        await folders[src].fetch([c.id for c in batch], sink)
    except MessageError as e:  # some message could not be read; the rest of the batch went on
        skipped = e
    finally:
        # what landed before a fault is recorded all the same
        result = await sink.close()
        rows = []
        refused = unkept(folders[dst])  # keywords the target would not store: not synced
        for c in batch:
            d = result.delivered.get(c.id)
            if d is None or d.id is None:
                continue
            ids: dict[Side, MessageId] = {src: c.id, dst: d.id}
            rows.append(PairRow(ids[Side.A], ids[Side.B], c.flags - refused, d.key))
        crashpoint.step("copy batch landed")
        if defer is not None:
            defer.copied, defer.journal = rows, handles
        else:
            with rec.transaction() as fstate:
                rec.db.insert_pairs(fstate, rows)
                rec.db.settle_pending(handles)
            crashpoint.step("copy batch recorded")
        report.copies[dst] += len(rows)
    if skipped is not None:
        report.failures.append(f"a copy from the {SIDE_NAME[src]} side failed: {skipped}")
    for mid, why in result.failed.items():
        report.failures.append(f"copy of {SIDE_NAME[src]} message {mid} failed: {why}")
    for c in batch:
        d = result.delivered.get(c.id)
        if d is not None and d.id is None:
            report.notes.append(
                f"copy of {SIDE_NAME[src]} message {c.id} landed but its new id is unknown; "
                "it is matched by content on the next run"
            )


async def _set_flags(
    plan: Plan, folders: Mapping[Side, Folder], report: Report, landed: _Landed
) -> None:
    if not plan.flag_changes and not plan.matches:
        return
    by_side: dict[Side, list[FlagChange]] = defaultdict(list)
    for f in plan.flag_changes:
        by_side[f.side].append(FlagChange(f.id, f.add, f.remove))
    for side, changes in by_side.items():
        for i in range(0, len(changes), WRITE_BATCH):
            await folders[side].store_flags(changes[i : i + WRITE_BATCH])
            crashpoint.step(f"flags changed on {side.value}")
        report.flags[side] += len(changes)
    # both sides now hold the merged flags: record them (a fault above leaves the old synced
    # flags, and the next run merges again to the same result)
    refused = unkept(folders[Side.A]) | unkept(folders[Side.B])
    after: Iterable[PairRow] = plan.after_flags.values()
    if refused:  # a keyword one side would not store is not synced: not recorded as such
        after = [r.with_flags(r.flags - refused) for r in after]
    landed.after_flags = after
    landed.matches = plan.matches
    landed.flags_done = True


async def _delete(
    plan: Plan, folders: Mapping[Side, Folder], report: Report, landed: _Landed
) -> None:
    by_side: dict[Side, list[MessageId]] = defaultdict(list)
    for d in plan.deletions:
        by_side[d.side].append(d.id)
    for side, ids in by_side.items():
        for i in range(0, len(ids), WRITE_BATCH):
            chunk = ids[i : i + WRITE_BATCH]
            await folders[side].delete(chunk)
            crashpoint.step(f"deleted on {side.value}")
            landed.after_delete += [plan.after_delete[(side, mid)] for mid in chunk]
            report.deletions[side] += len(chunk)


class _CrashingSink:
    """Test-only: a crash step after each message a sink has taken in full."""

    def __init__(self, inner: BodySink) -> None:
        self.inner = inner

    async def begin(self) -> BodyWriter:
        return _CrashingWriter(await self.inner.begin())

    async def close(self) -> ReceiveResult:
        return await self.inner.close()


class _CrashingWriter:
    def __init__(self, inner: BodyWriter) -> None:
        self.inner = inner

    async def write(self, chunk: bytes) -> None:
        await self.inner.write(chunk)

    async def finish(self, source_id: MessageId, internal_date: datetime | None) -> None:
        await self.inner.finish(source_id, internal_date)
        crashpoint.step("message copied")

    async def abort(self) -> None:
        await self.inner.abort()


def unkept(folder: Folder) -> Flags:
    """Keywords the folder's server refused to store during this sync (IMAP; none elsewhere)."""
    return frozenset(getattr(folder, "unkept", ()))

"""When apply records what it did: the sync point with the first copy batch's journal, a copy
batch when it lands (the last one later), flag changes and deletions once all of them landed,
together with the last copy batch and the marks of a finished sync, in one transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mailtwin.model import FolderStamp, Side
from mailtwin.state.rows import PairRow
from mailtwin.state.status import FolderState, StatusDB
from mailtwin.stores.memory import InjectedFault, MemFolderData, MemoryStore
from mailtwin.sync import apply as apply_mod
from mailtwin.sync import crashpoint
from mailtwin.sync.folder import FolderResult, sync_folder
from mailtwin.sync.plan import SyncOptions

OPTS = SyncOptions(writable={Side.A: True, Side.B: True}, deletes_from={Side.A: True, Side.B: True})
SEEN = frozenset({"\\Seen"})
STAMPS = {Side.A: FolderStamp("maildir", (1, 2)), Side.B: FolderStamp("imap", (7, 8, 9, 10))}


class Rig:
    def __init__(self, tmp: Path) -> None:
        self.stores = {Side.A: MemoryStore(), Side.B: MemoryStore()}
        for s in Side:
            self.stores[s].folders["F"] = MemFolderData()
        self.db = StatusDB.open(tmp / "s.db", fsync=False)
        self.db.add_folder("F", "F")
        self.commits = 0

        def trace(sql: str) -> None:
            self.commits += sql == "COMMIT"

        self.db.con.set_trace_callback(trace)

    def data(self, side: Side) -> MemFolderData:
        return self.stores[side].folders["F"]

    @property
    def fstate(self) -> FolderState:
        f = self.db.folder("F", "F")
        assert f is not None
        return f

    def sync(self) -> FolderResult:
        folders = {s: asyncio.run(self.stores[s].open_folder("F", False)) for s in Side}
        self.commits = 0
        return asyncio.run(sync_folder(folders, self.db, self.fstate, OPTS, stamps=STAMPS))

    def synced_flags(self) -> dict[int, frozenset[str]]:
        return {r.b: r.flags for r in self.db.pairs(self.fstate) if isinstance(r.b, int)}


def mail(n: int) -> bytes:
    return f"Message-ID: <m{n}@test>\r\n\r\nbody {n}\r\n".encode()


def synced_rig(tmp: Path, n: int = 4) -> Rig:
    rig = Rig(tmp)
    for i in range(n):
        rig.data(Side.B).add(mail(i))
    rig.sync()
    rig.sync()  # the first sync changed A: the second one finds nothing to do
    return rig


def test_a_sync_with_every_kind_of_change_commits_twice(tmp_path: Path) -> None:
    rig = synced_rig(tmp_path)
    b = rig.data(Side.B)
    b.add(mail(10))
    b.messages[1].flags = SEEN
    del b.messages[2]
    res = rig.sync()
    r = res.report
    assert (r.copies[Side.A], r.flags[Side.A], r.deletions[Side.A]) == (1, 1, 1)
    # the sync point with the copy batch's journal; its result with the rest and the marks
    assert rig.commits == 2
    f = rig.fstate
    assert f.covered(Side.B) and f.stamp(Side.A) == STAMPS[Side.A]
    assert rig.synced_flags()[1] == SEEN and 2 not in rig.synced_flags()
    assert not rig.db.pending(f)


def test_flag_changes_and_deletions_alone_commit_twice(tmp_path: Path) -> None:
    rig = synced_rig(tmp_path)
    b = rig.data(Side.B)
    b.messages[1].flags = SEEN
    del b.messages[2]
    res = rig.sync()
    assert not res.plan.copies and res.report.deletions[Side.A] == 1
    assert rig.commits == 2  # the sync point before the first change; the rest with the marks
    assert rig.fstate.covered(Side.B) and rig.synced_flags()[1] == SEEN


def test_copy_batches_but_the_last_are_recorded_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(apply_mod, "COPY_BATCH", 1)
    rig = synced_rig(tmp_path)
    b = rig.data(Side.B)
    for n in (10, 11, 12):
        b.add(mail(n))
    b.messages[1].flags = SEEN
    res = rig.sync()
    assert res.report.copies[Side.A] == 3
    # the sync point with the first journal, its record, two journals, one record, the rest
    assert rig.commits == 6
    assert len(rig.synced_flags()) == 7 and not rig.db.pending(rig.fstate)
    assert rig.sync().plan.is_empty()


def test_a_failing_deletion_still_records_the_last_copy_batch(tmp_path: Path) -> None:
    rig = synced_rig(tmp_path)
    b = rig.data(Side.B)
    uid = b.add(mail(10))
    b.messages[1].flags = SEEN
    del b.messages[2]
    a = rig.stores[Side.A]
    a.fail_after = a.writes + 2  # the copy and the flag change land, the deletion fails
    with pytest.raises(InjectedFault):
        rig.sync()
    assert uid in rig.synced_flags() and rig.synced_flags()[1] == SEEN
    assert not rig.db.pending(rig.fstate)
    a.fail_after = None
    res = rig.sync()
    assert not res.plan.copies and res.report.deletions[Side.A] == 1
    assert len(rig.data(Side.A).messages) == len(b.messages) == 4


def test_a_fault_inside_the_last_copy_batch_records_what_landed(tmp_path: Path) -> None:
    rig = synced_rig(tmp_path)
    b = rig.data(Side.B)
    first = b.add(mail(10))
    b.add(mail(11))
    a = rig.stores[Side.A]
    a.fail_after = a.writes + 1  # the first copy lands, the second fails
    with pytest.raises(InjectedFault):
        rig.sync()
    assert first in rig.synced_flags() and not rig.db.pending(rig.fstate)
    a.fail_after = None
    res = rig.sync()
    assert res.report.copies[Side.A] == 1
    assert rig.sync().plan.is_empty()


class Crash(BaseException):
    pass


def test_a_crash_before_the_last_record_leaves_a_journal_the_next_run_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = synced_rig(tmp_path)
    b = rig.data(Side.B)
    uid = b.add(mail(10))
    b.messages[1].flags = SEEN
    del b.messages[2]
    real = rig.db.transaction
    dead = False

    def step(what: str) -> None:
        nonlocal dead
        if what == "flags changed on a":
            dead = True  # nothing reaches the disk from here on, as after a power cut
            raise Crash

    def transaction() -> Any:
        if dead:
            raise Crash
        return real()

    monkeypatch.setattr(crashpoint, "step", step)
    monkeypatch.setattr(rig.db, "transaction", transaction)
    with pytest.raises(Crash):
        rig.sync()
    monkeypatch.undo()
    f = rig.fstate
    assert rig.db.pending(f) == 1 and uid not in rig.synced_flags()
    assert not f.covered(Side.B)
    res = rig.sync()
    assert not res.plan.copies and res.report.deletions[Side.A] == 1
    assert not rig.db.pending(rig.fstate)
    assert len(rig.data(Side.A).messages) == len(b.messages) == 4
    assert rig.synced_flags()[1] == SEEN
    assert rig.sync().plan.is_empty()


def test_nothing_to_do_commits_once(tmp_path: Path) -> None:
    rig = synced_rig(tmp_path)
    with rig.db.transaction():
        rig.db.set_stamps(rig.fstate, {Side.A: None, Side.B: None})
    res = rig.sync()
    assert res.plan.is_empty()
    assert rig.commits == 1
    f = rig.fstate
    assert f.covered(Side.B) and f.stamp(Side.B) == STAMPS[Side.B]


def test_a_failing_deletion_still_records_the_flags_that_landed(tmp_path: Path) -> None:
    rig = synced_rig(tmp_path)
    b = rig.data(Side.B)
    b.messages[1].flags = SEEN
    b.messages[3].flags = SEEN
    del b.messages[2]
    a = rig.stores[Side.A]
    a.fail_after = a.writes + 2  # both flag changes land, the deletion fails
    with pytest.raises(InjectedFault):
        rig.sync()
    assert rig.synced_flags()[1] == SEEN and rig.synced_flags()[3] == SEEN
    assert 2 in rig.synced_flags()  # its deletion did not land: still paired
    f = rig.fstate
    assert not f.covered(Side.B) and f.stamp(Side.A) is None  # not a finished sync
    a.fail_after = None
    res = rig.sync()
    assert res.report.deletions[Side.A] == 1
    assert not res.plan.flag_changes
    assert rig.sync().plan.is_empty()


def test_a_failure_leaves_no_marks(tmp_path: Path) -> None:
    rig = synced_rig(tmp_path)
    uid = rig.data(Side.B).add(mail(20))
    rig.data(Side.B).messages[1].flags = SEEN
    rig.stores[Side.B].unreadable.add(uid)
    res = rig.sync()
    assert res.report.failures
    f = rig.fstate
    assert rig.synced_flags()[1] == SEEN  # what landed is recorded
    assert not f.covered(Side.B) and f.stamp(Side.A) is None and f.stamp(Side.B) is None


def test_pair_rows_read_back_as_written(tmp_path: Path) -> None:
    db = StatusDB.open(tmp_path / "s.db", fsync=False)
    f = db.add_folder("F", "F")
    rows = [
        PairRow("k1", 1, SEEN, "<a> 10"),
        PairRow("k2", 2, frozenset({"\\Seen", "$Work"}), None),
        PairRow(None, 3, SEEN),
        PairRow("k4", None, frozenset()),
    ]
    with db.transaction():
        db.insert_pairs(f, rows)
    got = sorted(db.pairs(f), key=lambda r: r.rowid or 0)
    assert [r._replace(rowid=None) for r in got] == rows
    assert got[0].flags is got[2].flags  # one parsed set per distinct text
    db.close()

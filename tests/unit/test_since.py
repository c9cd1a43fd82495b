"""Incremental snapshots: when a sync point may stand in for a full listing, how the changes
since it are read (IMAP answers as bytes), and the status marks that vouch for it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtwin.model import MessageId, MessageInfo, Side, Since, Snapshot
from mailtwin.state.db import MIGRATIONS
from mailtwin.state.rows import PairRow
from mailtwin.state.status import StatusDB
from mailtwin.stores.imap.changes import Changes, UidRanges, commands, uid_ranges
from mailtwin.stores.imap.wire import Untagged
from mailtwin.stores.memory import MemFolderData, MemoryStore
from mailtwin.stores.since import derive, usable
from mailtwin.sync.folder import trusted

SEEN = frozenset({"\\Seen"})
SINCE = Since(uidvalidity=7, uidnext=10, modseq=100, known={1: SEEN, 2: frozenset(), 5: SEEN})


@pytest.mark.parametrize(
    ("uidvalidity", "uidnext", "modseq", "ok"),
    [
        (7, 10, 100, True),
        (7, 12, 130, True),
        (8, 10, 100, False),  # renumbered
        (7, 9, 100, False),  # UIDNEXT went back: restored
        (7, 10, 99, False),  # HIGHESTMODSEQ went back: restored
        (7, 10, None, False),  # NOMODSEQ
        (7, None, 100, False),  # no UIDNEXT said
    ],
)
def test_usable(uidvalidity: int, uidnext: int | None, modseq: int | None, ok: bool) -> None:
    assert usable(SINCE, uidvalidity, uidnext, modseq) is ok


def test_derive_lays_changes_over_the_known() -> None:
    changed: dict[MessageId, MessageInfo] = {
        2: MessageInfo(2, SEEN),
        11: MessageInfo(11, frozenset()),
    }
    snap = derive(SINCE, 7, 11, 120, [5, 99], changed)
    assert snap.derived and snap.modseq == 120
    assert {m: i.flags for m, i in snap.messages.items()} == {1: SEEN, 2: SEEN, 11: frozenset()}
    assert snap.uidnext == 12  # a message newer than the SELECT's UIDNEXT


def u(line: bytes) -> Untagged:
    return Untagged((line,))


def test_uid_sets_stay_ranges() -> None:
    assert uid_ranges(b"2,4:7,9:8") == [(2, 2), (4, 7), (9, 8)]
    assert uid_ranges(b"") is None and uid_ranges(b"1,,2") is None and uid_ranges(b"1:*") is None
    r = UidRanges([(9, 8), (4, 7), (1, 1), (2, 2)])
    assert [x for x in range(12) if x in r] == [1, 2, 4, 5, 6, 7, 8, 9]
    assert 2**40 in UidRanges([(1, 2**41)])  # millions of UIDs in a few bytes: never expanded
    assert "3" not in r


@given(st.lists(st.tuples(st.integers(1, 60), st.integers(1, 60)), max_size=8))
def test_uid_ranges_membership(ranges: list[tuple[int, int]]) -> None:
    want = {x for a, b in ranges for x in range(min(a, b), max(a, b) + 1)}
    r = UidRanges(ranges)
    assert {x for x in range(70) if x in r} == want


def test_qresync_answers() -> None:
    ch = Changes()
    assert ch.take(u(b"* VANISHED (EARLIER) 3:5,9"))
    assert ch.take(u(b"* VANISHED 12"))  # one expunged meanwhile by another client
    assert not ch.take(u(b"* 3 FETCH (UID 7 MODSEQ (130) FLAGS (\\Seen))"))
    assert not ch.take(u(b"* 4 EXPUNGE"))
    assert not ch.doubt and ch.present is None
    assert ch.gone([1, 3, 4, 8, 9, 12]) == [3, 4, 9, 12]


@pytest.mark.parametrize(
    ("lines", "gone"),
    [
        ([b"* SEARCH 1 2 8"], [3, 9]),
        ([b"* SEARCH"], [1, 2, 3, 9]),
        ([b'* ESEARCH (TAG "M4") UID ALL 1:2,8'], [3, 9]),
        ([b'* ESEARCH (TAG "M4") UID'], [1, 2, 3, 9]),  # no ALL: nothing there
    ],
)
def test_condstore_answers(lines: list[bytes], gone: list[int]) -> None:
    ch = Changes()
    for line in lines:
        assert ch.take(u(line))
    assert not ch.doubt
    assert ch.gone([1, 2, 3, 9]) == gone


@pytest.mark.parametrize(
    "line",
    [b"* VANISHED (EARLIER) 3:x", b"* SEARCH 1 two", b'* ESEARCH (TAG "M4") UID ALL 1:'],
)
def test_unreadable_answers_cast_doubt(line: bytes) -> None:
    ch = Changes()
    assert ch.take(u(line))
    assert ch.doubt


def test_commands() -> None:
    assert commands(42, True, True) == [
        [b"UID", b"FETCH", b"1:*", b"(UID FLAGS)", b"(CHANGEDSINCE 42 VANISHED)"]
    ]
    fetch = [b"UID", b"FETCH", b"1:*", b"(UID FLAGS)", b"(CHANGEDSINCE 42)"]
    assert commands(42, False, True) == [fetch, [b"UID", b"SEARCH", b"RETURN", b"(ALL)", b"ALL"]]
    assert commands(42, False, False) == [fetch, [b"UID", b"SEARCH", b"ALL"]]


# ---- the memory store keeps mod-sequences --------------------------------------------------


def flags(snap: Snapshot) -> dict[MessageId, frozenset[str]]:
    return {m: i.flags for m, i in snap.messages.items()}


def test_memory_store_lists_changes_since() -> None:
    store = MemoryStore()
    data = store.folders["F"] = MemFolderData()
    for n in range(5):
        data.add(b"m%d" % n)
    f = asyncio.run(store.open_folder("F", False))
    base = asyncio.run(f.snapshot())
    assert base.modseq is not None and not base.derived
    since = Since(base.uidvalidity, base.uidnext, base.modseq, flags(base))
    data.messages[2].flags = SEEN  # changed directly, as tests do
    del data.messages[4]
    data.add(b"m5")
    snap = asyncio.run(f.snapshot(since))
    full = asyncio.run(f.snapshot())
    assert snap.derived and flags(snap) == flags(full)
    assert snap.modseq == full.modseq and snap.uidnext == full.uidnext
    store.condstore = False
    assert not asyncio.run(f.snapshot(since)).derived
    store.condstore = True
    data.renumber()
    assert not asyncio.run(f.snapshot(since)).derived


# ---- the status: covered marks --------------------------------------------------------------


def test_schema_3_migrates_and_covered_marks_follow_sync_points(tmp_path: Path) -> None:
    path = tmp_path / "mailtwin.db"
    con = sqlite3.connect(path, isolation_level=None)
    for i, m in enumerate(MIGRATIONS[:3]):
        con.executescript("BEGIN;" + m + f"PRAGMA user_version={i + 1};COMMIT;")
    con.execute("INSERT INTO folders (name_a, name_b) VALUES ('I', 'INBOX')")
    con.close()
    db = StatusDB.open(path)
    (f,) = db.folders()
    assert not f.covered(Side.A) and not f.covered(Side.B)
    snap = Snapshot(5, 10, {}, modseq=77)
    with db.transaction():
        f = db.set_sync_point(f, {Side.A: Snapshot(0, 0, {}), Side.B: snap})
        db.insert_pairs(f, [PairRow("k1", 3, SEEN), PairRow(None, 4), PairRow("k2", None)])
    assert trusted(f, Side.B, db.pairs(f)) is None  # not covered yet
    with db.transaction():
        db.set_covered(f, [Side.B])
    f2 = db.folder("I", "INBOX")
    assert f2 is not None and f2.covered(Side.B) and not f2.covered(Side.A)
    assert db.named(f2, Side.B) == {3, 4} and db.named(f2, Side.A) == {"k1", "k2"}
    since = trusted(f2, Side.B, db.pairs(f2))
    assert since == Since(5, 10, 77, {3: SEEN, 4: frozenset()})
    assert trusted(f2, Side.A, db.pairs(f2)) is None
    with db.transaction():
        db.forget_pairs(f2)  # the rows that vouched are gone
    f3 = db.folder("I", "INBOX")
    assert f3 is not None and not f3.covered(Side.B)
    with db.transaction():
        db.set_covered(f3, [Side.B])
        db.set_sync_point(f3, {Side.A: Snapshot(0, 0, {}), Side.B: snap})
    f4 = db.folder("I", "INBOX")
    assert f4 is not None and not f4.covered(Side.B)  # a sync point starts untrusted
    db.close()

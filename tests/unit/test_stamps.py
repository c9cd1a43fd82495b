"""Folder stamps: the skip decision, their text form, the stores' stamps, the status columns."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from mailtwin.model import FolderStamp, Side, Snapshot
from mailtwin.state.db import MIGRATIONS
from mailtwin.state.status import StatusDB
from mailtwin.stores.maildir import MaildirStore
from mailtwin.stores.memory import MemFolderData, MemoryStore
from mailtwin.sync.stamps import unchanged

IMAP = FolderStamp("imap", (7, 42, 40, 1093))
MAILDIR = FolderStamp("maildir", (1_700_000_000_000_000_000, 1_700_000_001_000_000_000))


def imap(**kw: int | None) -> FolderStamp:
    v = dict(zip(("uidvalidity", "uidnext", "messages", "modseq"), IMAP.values, strict=True))
    v.update(kw)
    return FolderStamp("imap", tuple(v.values()))


@pytest.mark.parametrize(
    ("recorded", "now", "skip"),
    [
        ((MAILDIR, IMAP), (MAILDIR, IMAP), True),
        ((MAILDIR, IMAP), (MAILDIR, imap(uidvalidity=8)), False),
        ((MAILDIR, IMAP), (MAILDIR, imap(uidnext=43)), False),
        ((MAILDIR, IMAP), (MAILDIR, imap(messages=39)), False),
        ((MAILDIR, IMAP), (MAILDIR, imap(modseq=1094)), False),  # a flag change only
        ((MAILDIR, IMAP), (FolderStamp("maildir", (MAILDIR.values[0], 1)), IMAP), False),
        ((MAILDIR, IMAP), (None, IMAP), False),  # too fresh to trust, or unreadable
        ((None, IMAP), (MAILDIR, IMAP), False),  # never recorded: a failed or first sync
        ((MAILDIR, None), (MAILDIR, IMAP), False),
        # no HIGHESTMODSEQ (no CONDSTORE): flag changes are invisible, never skip
        ((MAILDIR, imap(modseq=None)), (MAILDIR, imap(modseq=None)), False),
        ((MAILDIR, MAILDIR), (MAILDIR, IMAP), False),  # different kinds never match
    ],
)
def test_unchanged(
    recorded: tuple[FolderStamp | None, FolderStamp | None],
    now: tuple[FolderStamp | None, FolderStamp | None],
    skip: bool,
) -> None:
    assert (
        unchanged(dict(zip(Side, recorded, strict=True)), dict(zip(Side, now, strict=True))) is skip
    )


def test_text_form_round_trips() -> None:
    for st in (IMAP, MAILDIR, imap(modseq=None)):
        assert FolderStamp.parse(st.text()) == st
    assert IMAP.text() == "imap 7 42 40 1093"
    assert FolderStamp.parse(None) is None
    assert FolderStamp.parse("imap 7 x") is None


def test_memory_store_stamp_moves_with_every_change() -> None:
    store = MemoryStore()
    data = store.folders["F"] = MemFolderData()
    uid = data.add(b"Message-ID: <1@x>\r\n\r\nx\r\n")
    seen = [asyncio.run(store.stamps(["F"]))["F"]]
    data.messages[uid].flags = frozenset({"\\Seen"})
    seen.append(asyncio.run(store.stamps(["F"]))["F"])
    data.add(b"Message-ID: <2@x>\r\n\r\ny\r\n")
    seen.append(asyncio.run(store.stamps(["F"]))["F"])
    del data.messages[uid]
    seen.append(asyncio.run(store.stamps(["F"]))["F"])
    assert len(set(seen)) == 4 and all(s is not None and s.complete for s in seen)
    assert asyncio.run(store.stamps(["F", "G"]))["G"] is None


def test_maildir_stamp_not_trusted_when_fresh(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path, sep=".")
    asyncio.run(store.create_folder("F"))
    assert asyncio.run(store.stamps(["F", "missing"])) == {"F": None, "missing": None}
    old = time.time_ns() - 60_000_000_000
    for sub in ("new", "cur"):
        os.utime(tmp_path / "F" / sub, ns=(old, old))
    st = asyncio.run(store.stamps(["F"]))["F"]
    assert st == FolderStamp("maildir", (old, old))
    (tmp_path / "F" / "cur" / "1.x.host:2,").write_bytes(b"x")
    assert asyncio.run(store.stamps(["F"]))["F"] is None  # changed, and just now


def test_maildir_stamp_margin_follows_the_timestamp_granularity(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path, sep=".")
    asyncio.run(store.create_folder("F"))
    fine = time.time_ns() - 500_000_000 + 1234  # half a second ago, with a fraction
    for sub in ("new", "cur"):
        os.utime(tmp_path / "F" / sub, ns=(fine, fine))
    assert store.stamp("F") == FolderStamp("maildir", (fine, fine))
    # whole seconds: perhaps a file system that keeps no more; half a second is too recent
    coarse = (time.time_ns() // 1_000_000_000) * 1_000_000_000
    for sub in ("new", "cur"):
        os.utime(tmp_path / "F" / sub, ns=(coarse, coarse))
    assert store.stamp("F") is None


def test_schema_2_migrates_and_a_sync_point_clears_stamps(tmp_path: Path) -> None:
    path = tmp_path / "mailtwin.db"
    con = sqlite3.connect(path, isolation_level=None)
    for i, m in enumerate(MIGRATIONS[:2]):
        con.executescript("BEGIN;" + m + f"PRAGMA user_version={i + 1};COMMIT;")
    con.execute("INSERT INTO folders (name_a, name_b, uidvalidity_b) VALUES ('I', 'INBOX', 5)")
    con.close()
    db = StatusDB.open(path)
    (f,) = db.folders()
    assert f.uidvalidity_b == 5 and f.stamp(Side.A) is None and f.stamp(Side.B) is None
    with db.transaction():
        db.set_stamps(f, {Side.A: MAILDIR, Side.B: IMAP})
    f = db.folder("I", "INBOX")
    assert f is not None and (f.stamp(Side.A), f.stamp(Side.B)) == (MAILDIR, IMAP)
    snap = Snapshot(5, 10, {})
    with db.transaction():
        db.set_sync_point(f, {Side.A: snap, Side.B: snap})
    f = db.folder("I", "INBOX")
    assert f is not None and f.stamp_a is None and f.stamp_b is None
    db.close()

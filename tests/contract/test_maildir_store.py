"""MaildirStore on a temp root: folders, delivery, snapshot, flags, deletes, mail clients renaming
files under us, and names OfflineIMAP reads back."""

from __future__ import annotations

import asyncio
import errno
import itertools
import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Coroutine, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mailtwin.content import content_key
from mailtwin.errors import FolderError, InternalError
from mailtwin.model import NO_FLAGS, Flags, MessageId, MessageInfo
from mailtwin.stores.base import (
    BodyWriter,
    FlagChange,
    Folder,
    ReceiveResult,
    Store,
)
from mailtwin.stores.maildir import MaildirFolder, MaildirStore
from mailtwin.stores.maildir_names import folder_md5, offlineimap_uid

T = TypeVar("T")
SEEN = frozenset({"\\Seen"})
FLAGGED = frozenset({"\\Flagged"})


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class Collect:
    """A BodySink that keeps each body whole, for checking bytes."""

    def __init__(self) -> None:
        self.bodies: dict[MessageId, bytes] = {}
        self.dates: dict[MessageId, datetime | None] = {}
        self.begun = 0

    async def begin(self) -> BodyWriter:
        self.begun += 1
        return _CollectWriter(self)

    async def close(self) -> ReceiveResult:
        return ReceiveResult()


class _CollectWriter:
    def __init__(self, sink: Collect) -> None:
        self.sink = sink
        self.buf = bytearray()

    async def write(self, chunk: bytes) -> None:
        self.buf += chunk

    async def finish(self, source_id: MessageId, internal_date: datetime | None) -> None:
        self.sink.bodies[source_id] = bytes(self.buf)
        self.sink.dates[source_id] = internal_date

    async def abort(self) -> None:
        self.buf.clear()


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def deliver(
    folder: Folder,
    bodies: Mapping[MessageId, bytes],
    flags: Mapping[MessageId, Flags] | None = None,
    chunk: int = 4096,
    dates: Mapping[MessageId, datetime] | None = None,
) -> ReceiveResult:
    flags = flags or {}
    meta = {i: MessageInfo(i, flags.get(i, NO_FLAGS)) for i in bodies}
    sink = folder.receiver(meta)
    for sid, body in bodies.items():
        w = await sink.begin()
        for c in chunks(body, chunk):
            await w.write(c)
        await w.finish(sid, (dates or {}).get(sid))
    return await sink.close()


def files(folder_dir: Path) -> dict[str, str]:
    """Every message file: 'cur/<name>' → content as text (for small tests)."""
    out = {}
    for sub in ("cur", "new", "tmp"):
        for p in sorted((folder_dir / sub).iterdir()):
            out[f"{sub}/{p.name}"] = p.read_bytes().decode("utf-8", "replace")
    return out


def put(folder_dir: Path, rel: str, body: bytes = b"Subject: x\n\nbody\n") -> Path:
    """A message as a mail client or MDA leaves it."""
    p = folder_dir / rel
    p.write_bytes(body)
    return p


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "Mail"
    r.mkdir()
    return r


@pytest.fixture
def store(root: Path) -> MaildirStore:
    return MaildirStore(root, fsync=False)


@pytest.fixture
def inbox(store: MaildirStore) -> MaildirFolder:
    async def go() -> MaildirFolder:
        await store.create_folder("INBOX")
        return await store.open_folder("INBOX", readonly=False)

    return run(go())


def test_is_a_store(root: Path) -> None:
    s: Store = MaildirStore(root)
    assert s.caps.flags == frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
    assert s.caps.knows_new_ids


# -- folders


def test_flat_folders(root: Path, store: MaildirStore) -> None:
    names = ["INBOX", "Work.Projects", "Work", "&BCAEMAQxBD4EQgQw-", ".Trash"]

    async def go() -> list[str]:
        for n in names:
            await store.create_folder(n)
        await store.create_folder("INBOX")  # again: fine
        return [f.name for f in await store.list_folders()]

    assert run(go()) == sorted(names)
    assert (root / "Work.Projects" / "cur").is_dir()
    assert (root / "&BCAEMAQxBD4EQgQw-" / "tmp").is_dir()
    assert (root / "INBOX" / "new").stat().st_mode & 0o777 == 0o700
    assert all(f.sep == "." for f in run(store.list_folders()))


def test_nested_folders(root: Path) -> None:
    store = MaildirStore(root, sep="/", fsync=False)

    async def go() -> list[str]:
        await store.create_folder("Work/Projects/2024")  # parents need not exist first
        await store.create_folder("INBOX")
        await store.create_folder("INBOX/Sub")
        return [f.name for f in await store.list_folders()]

    # Work and Work/Projects are plain directories, not folders: as OfflineIMAP
    assert run(go()) == ["INBOX", "INBOX/Sub", "Work/Projects/2024"]
    assert (root / "Work" / "Projects" / "2024" / "cur").is_dir()
    assert (root / "Work").stat().st_mode & 0o777 == 0o700  # parents too, whatever the umask
    assert run(store.open_folder("Work/Projects/2024", readonly=True)).name == "Work/Projects/2024"


def test_listing_mirrors_offlineimap(root: Path) -> None:
    for d in ("A/cur", "A/new", "A/tmp", "A/B/cur", "A/B/new", "A/B/tmp", "NotMaildir/x"):
        (root / d).mkdir(parents=True)
    (root / "half" / "cur").mkdir(parents=True)
    (root / "file").write_text("x")
    # with sep '.' OfflineIMAP does not look below the root's own subdirectories
    assert [f.name for f in run(MaildirStore(root).list_folders())] == ["A"]
    assert [f.name for f in run(MaildirStore(root, sep="/").list_folders())] == ["A", "A/B"]


def test_listing_survives_symlink_loop(root: Path) -> None:
    store = MaildirStore(root, sep="/", fsync=False)
    run(store.create_folder("A/B"))
    (root / "A" / "B" / "loop").symlink_to(root / "A")
    # a directory already walked is not walked again through a link
    assert [f.name for f in run(store.list_folders())] == ["A/B"]


def test_missing_root_lists_empty_and_is_made_on_create(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "none" / "Mail", fsync=False)
    assert run(store.list_folders()) == []
    assert not (tmp_path / "none").exists()
    run(store.create_folder("INBOX"))
    assert [f.name for f in run(store.list_folders())] == ["INBOX"]


def test_root_that_is_a_maildir_warns(root: Path, store: MaildirStore) -> None:
    for d in ("cur", "new", "tmp"):
        (root / d).mkdir()
    run(store.create_folder("INBOX"))
    assert [f.name for f in run(store.list_folders())] == ["INBOX"]
    assert store.warnings


@pytest.mark.parametrize("sep", [".", "/"])
@pytest.mark.parametrize("name", ["..", "../x", "a/../../b", "/etc", "../../etc", "a\0b", ""])
def test_never_outside_root(tmp_path: Path, root: Path, sep: str, name: str) -> None:
    store = MaildirStore(root, sep=sep, fsync=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(FolderError) as e:
        run(store.create_folder(name))
    assert repr(name) in str(e.value)
    with pytest.raises(FolderError):
        run(store.open_folder(name, readonly=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # the others keep working
    run(store.create_folder("INBOX"))
    run(store.open_folder("INBOX", readonly=False))


def test_symlink_out_of_root(tmp_path: Path, root: Path, store: MaildirStore) -> None:
    outside = tmp_path / "outside"
    for d in ("cur", "new", "tmp"):
        (outside / d).mkdir(parents=True)
    (root / "Evil").symlink_to(outside)
    (root / "Fine").mkdir()
    (root / "Fine" / "cur").symlink_to(outside / "cur")
    (root / "Fine" / "new").mkdir()
    (root / "Fine" / "tmp").mkdir()
    for name in ("Evil", "Fine"):
        with pytest.raises(FolderError) as e:
            run(store.open_folder(name, readonly=False))
        assert repr(name) in str(e.value)
    with pytest.raises(FolderError):
        run(store.create_folder("Evil"))
    nested = MaildirStore(root, sep="/", fsync=False)
    with pytest.raises(FolderError):
        run(nested.create_folder("Evil/Sub"))
    assert sorted(p.name for p in outside.iterdir()) == ["cur", "new", "tmp"]
    assert not any((outside / "new").iterdir())


def test_symlink_inside_root_is_fine(root: Path, store: MaildirStore) -> None:
    run(store.create_folder("Real"))
    (root / "Alias").symlink_to(root / "Real")
    f = run(store.open_folder("Alias", readonly=False))
    run(deliver(f, {1: b"a\n"}))
    assert len(list((root / "Real" / "new").iterdir())) == 1


def test_open_missing_folder(store: MaildirStore) -> None:
    with pytest.raises(FolderError):
        run(store.open_folder("Nope", readonly=True))


# -- delivery


BODIES: dict[MessageId, bytes] = {
    1: b"Subject: crlf\r\nMessage-ID: <1@x>\r\n\r\nline one\r\nline two\r\n",
    2: b"Subject: lf\nMessage-ID: <2@x>\n\nbare LF\n",
    3: "Subject: 8bit\r\n\r\nGr\u00fc\u00dfe, \u00e9t\u00e9 \u2713\r\n".encode(),
    4: b"Subject: no final newline\r\n\r\nend",
    5: b"Subject: lone CR\r\n\r\na\rb\r\r\nc\r",
}


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4096])
def test_receive_bytes_exact(root: Path, inbox: MaildirFolder, chunk: int) -> None:
    res = run(deliver(inbox, BODIES, chunk=chunk))
    assert res.failed == {}
    assert set(res.delivered) == set(BODIES)
    for sid, body in BODIES.items():
        d = res.delivered[sid]
        assert isinstance(d.id, str)
        (path,) = [p for p in (root / "INBOX").glob("*/*") if p.name.split(":")[0] == d.id]
        assert path.read_bytes() == lf(body)
        assert d.key == content_key(body)
    assert not any((root / "INBOX" / "tmp").iterdir())


def test_receive_names_flags_and_dirs(root: Path, inbox: MaildirFolder) -> None:
    flags: dict[MessageId, Flags] = {
        1: frozenset({"\\Seen", "\\Flagged"}),
        2: frozenset({"\\Answered", "$Junk"}),
        3: NO_FLAGS,
        "a-key": frozenset({"\\Seen", "\\Draft", "\\Deleted"}),
    }
    bodies: dict[MessageId, bytes] = {k: b"x\n" for k in flags}
    res = run(deliver(inbox, bodies, flags))
    md5 = folder_md5("INBOX")
    names = {sid: files_of(root / "INBOX", d.id) for sid, d in res.delivered.items()}
    # seen → cur/, others → new/, letters sorted, keywords without a letter dropped
    assert names[1][0] == "cur" and names[1][1].endswith(",U=1,FMD5=" + md5 + ":2,FS")
    assert names[2][0] == "new" and names[2][1].endswith(",U=2,FMD5=" + md5 + ":2,R")
    assert names[3][0] == "new" and names[3][1].endswith(":2,")
    assert names["a-key"][0] == "cur" and names["a-key"][1].endswith(f",FMD5={md5}:2,DST")
    assert ",U=" not in names["a-key"][1]
    for sid, (_, name) in names.items():
        head = name.split(",")[0]
        when, rest = head.split("_", 1)
        seq, pid, host = rest.split(".", 2)
        assert when.isdigit() and seq.isdigit() and int(pid) == os.getpid()
        assert "/" not in host and ":" not in host
        assert offlineimap_uid(name, folder_md5("INBOX")) == (sid if isinstance(sid, int) else None)
    assert len({d.id for d in res.delivered.values()}) == 4


def files_of(folder_dir: Path, mid: MessageId | None) -> tuple[str, str]:
    (p,) = [p for p in folder_dir.glob("*/*") if p.name.split(":")[0] == mid]
    return p.parent.name, p.name


def test_receive_big_message_many_chunks(root: Path, inbox: MaildirFolder) -> None:
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    body = b"Subject: big\r\nMessage-ID: <big@x>\r\n\r\n" + line * (12 * 1024 * 1024 // len(line))
    assert len(body) > 12_000_000
    res = run(deliver(inbox, {9: body}, chunk=65_537))
    (d,) = res.delivered.values()
    sub, name = files_of(root / "INBOX", d.id)
    assert (root / "INBOX" / sub / name).read_bytes() == lf(body)
    assert d.key == content_key(body)
    # and back out, in chunks, to the same bytes
    run(inbox.snapshot())
    got = Collect()
    run(inbox.fetch([d.id] if d.id else [], got))
    assert got.bodies[d.id or ""] == lf(body)


def test_receive_sets_mtime_to_internal_date(root: Path, inbox: MaildirFolder) -> None:
    when = datetime(2020, 5, 17, 10, 30, tzinfo=UTC)
    res = run(deliver(inbox, {1: b"x\n"}, dates={1: when}))
    run(inbox.snapshot())
    got = Collect()
    mid = res.delivered[1].id
    assert isinstance(mid, str)
    run(inbox.fetch([mid], got))
    assert got.dates[mid] == when
    assert got.dates[mid].tzinfo is not None  # type: ignore[union-attr]


def test_receive_with_fsync(root: Path) -> None:
    store = MaildirStore(root, fsync=True)
    run(store.create_folder("INBOX"))
    f = run(store.open_folder("INBOX", readonly=False))
    res = run(deliver(f, {1: b"a\r\n", 2: b"b\r\n"}, {1: SEEN}))
    assert len(res.delivered) == 2


def test_receive_small_and_big_with_fsync(root: Path) -> None:
    """A small message goes to its file in one write, a big one (past WRITE_BUFFER) in several;
    with fsync on, both land byte for byte, with their dates, keys and nothing left in tmp/."""
    store = MaildirStore(root, fsync=True)
    run(store.create_folder("INBOX"))
    f = run(store.open_folder("INBOX", readonly=False))
    big = b"Message-ID: <big@x>\r\n\r\n" + b"0123456789abcdef\r\n" * 40_000
    bodies: dict[MessageId, bytes] = {1: BODIES[1], 2: big, 3: BODIES[5], 4: big + b"\r"}
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    res = run(deliver(f, bodies, chunk=100_003, dates=dict.fromkeys(bodies, when)))
    assert res.failed == {} and set(res.delivered) == set(bodies)
    for sid, body in bodies.items():
        d = res.delivered[sid]
        sub, name = files_of(root / "INBOX", d.id)
        path = root / "INBOX" / sub / name
        assert path.read_bytes() == lf(body)
        assert path.stat().st_mtime == when.timestamp()
        assert d.key == content_key(body)
    assert not any((root / "INBOX" / "tmp").iterdir())


def test_failed_fsync_fails_that_message_only(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are fsynced in groups by one worker job: a failed fsync is its own message's."""
    store = MaildirStore(root, fsync=True)
    run(store.create_folder("INBOX"))
    f = run(store.open_folder("INBOX", readonly=False))
    calls = itertools.count(1)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if next(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    res = run(deliver(f, {1: b"a\r\n", 2: b"b\r\n", 3: b"c\r\n"}))
    assert list(res.failed) == [2] and "cannot fsync" in res.failed[2]
    assert sorted(res.delivered) == [1, 3]
    assert len(files(root / "INBOX")) == 2  # and nothing left in tmp/


def test_abort_and_unfinished_leave_no_tmp(root: Path, inbox: MaildirFolder) -> None:
    async def go() -> ReceiveResult:
        sink = inbox.receiver({1: MessageInfo(1, NO_FLAGS)})
        w = await sink.begin()
        await w.write(b"half")
        await w.abort()
        w2 = await sink.begin()  # begun, never finished
        await w2.write(b"half")
        return await sink.close()

    res = run(go())
    assert res.delivered == {} and res.failed == {}
    assert files(root / "INBOX") == {}


@pytest.mark.parametrize("fsync", [False, True])
def test_files_created_ahead_are_used_or_removed(root: Path, fsync: bool) -> None:
    """tmp/ files are created ahead (AHEAD a job) for the messages ``meta`` announces: fewer
    coming leaves none behind, and every message gets a file of its own."""
    store = MaildirStore(root, fsync=fsync)
    run(store.create_folder("INBOX"))
    f = run(store.open_folder("INBOX", readonly=False))

    async def go(n: int, announced: int) -> ReceiveResult:
        sink = f.receiver({i: MessageInfo(i, NO_FLAGS) for i in range(1, announced + 1)})
        for i in range(1, n + 1):
            w = await sink.begin()
            await w.write(b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
            await w.finish(i, None)
        return await sink.close()

    res = run(go(3, 40))  # a fetch that found most messages gone
    assert sorted(res.delivered) == [1, 2, 3] and not any((root / "INBOX" / "tmp").iterdir())
    res = run(go(40, 40))
    assert sorted(res.delivered) == list(range(1, 41)) and not res.failed
    assert not any((root / "INBOX" / "tmp").iterdir())
    body = "Subject: {0}\n\nbody {0}\n".format
    assert sorted(files(root / "INBOX").values()) == sorted(
        [body(i) for i in (1, 2, 3)] + [body(i) for i in range(1, 41)]
    )


def test_receive_into_vanished_folder(root: Path, inbox: MaildirFolder) -> None:
    shutil.rmtree(root / "INBOX")
    with pytest.raises(FolderError):
        run(deliver(inbox, {1: b"x\n"}))


def test_failed_delivery_is_reported_and_cleaned(root: Path, inbox: MaildirFolder) -> None:
    async def go() -> ReceiveResult:
        sink = inbox.receiver({1: MessageInfo(1, NO_FLAGS), 2: MessageInfo(2, SEEN)})
        w = await sink.begin()
        await w.write(b"x\r\n")
        (root / "INBOX" / "new").rmdir()  # the rename into new/ will fail
        await w.finish(1, None)
        w = await sink.begin()
        await w.write(b"y\r\n")
        await w.finish(2, None)  # cur/ is fine: the batch goes on
        return await sink.close()

    res = run(go())
    assert list(res.failed) == [1] and list(res.delivered) == [2]
    assert not any((root / "INBOX" / "tmp").iterdir())


def test_same_source_twice_is_a_bug(inbox: MaildirFolder) -> None:
    with pytest.raises(InternalError):
        run(deliver_twice(inbox))


async def deliver_twice(folder: MaildirFolder) -> None:
    sink = folder.receiver({1: MessageInfo(1, NO_FLAGS)})
    for _ in range(2):
        w = await sink.begin()
        await w.write(b"x\n")
        await w.finish(1, None)


# -- snapshot


def test_snapshot(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "new/1000.M1P1.mda")
    put(d, "cur/1001.M2P1.mua:2,S")
    put(d, "cur/1002.M3P1.mua:2,FPRSa")
    put(d, "cur/1003.M4P1.dovecot,S=2048,W=2100:2,T")
    put(d, "cur/.hidden")
    (d / "cur" / "subdir").mkdir()
    put(d, "tmp/1004.in.flight")
    snap = run(inbox.snapshot())
    assert (snap.uidvalidity, snap.uidnext) == (0, 0)
    got = {m.id: (set(m.flags), m.size, m.internal_date) for m in snap.messages.values()}
    assert got == {
        "1000.M1P1.mda": (set(), None, None),
        "1001.M2P1.mua": ({"\\Seen"}, None, None),
        "1002.M3P1.mua": ({"\\Flagged", "\\Answered", "\\Seen"}, None, None),
        "1003.M4P1.dovecot,S=2048,W=2100": ({"\\Deleted"}, 2048, None),
    }
    assert inbox.warnings == []


def test_snapshot_sees_own_deliveries(inbox: MaildirFolder) -> None:
    res = run(deliver(inbox, {1: b"a\n", 2: b"b\n"}, {1: SEEN}))
    snap = run(inbox.snapshot())
    assert {m.id: m.flags for m in snap.messages.values()} == {
        res.delivered[1].id: SEEN,
        res.delivered[2].id: NO_FLAGS,
    }


def test_duplicate_ids(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "new/dup:2,", b"new copy\n")
    put(d, "cur/dup:2,S", b"cur copy\n")
    put(d, "cur/twice:2,F", b"one\n")
    put(d, "cur/twice:2,FS", b"two\n")
    snap = run(inbox.snapshot())
    assert set(snap.messages) == {"dup", "twice"}
    assert snap.messages["dup"].flags == SEEN  # cur/ wins
    assert snap.messages["twice"].flags == FLAGGED  # then the smaller name: stable
    assert len(inbox.warnings) == 2 and all("two files" in w for w in inbox.warnings)
    got = Collect()
    run(inbox.fetch(["dup"], got))
    assert got.bodies == {"dup": b"cur copy\n"}


# -- fetch, flags, delete, with a mail client renaming under us


def test_fetch(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "cur/a:2,S", b"A\n")
    put(d, "new/b", b"B\n")
    os.utime(d / "new" / "b", (1_600_000_000, 1_600_000_000))
    run(inbox.snapshot())
    got = Collect()
    run(inbox.fetch(["a", "b", "gone", 42], got))
    assert got.bodies == {"a": b"A\n", "b": b"B\n"}
    assert got.dates["b"] == datetime.fromtimestamp(1_600_000_000, UTC)
    assert got.begun == 2


class Broken(Collect):
    """A sink whose target fails mid-message."""

    async def begin(self) -> BodyWriter:
        w = _CollectWriter(self)

        async def write(chunk: bytes) -> None:
            raise ConnectionResetError("target went away")

        async def abort() -> None:
            self.begun = -1

        w.write = write  # type: ignore[method-assign]
        w.abort = abort  # type: ignore[method-assign]
        return w


def test_fetch_lets_sink_errors_through_and_aborts(root: Path, inbox: MaildirFolder) -> None:
    put(root / "INBOX", "cur/a:2,S", b"A\n")
    sink = Broken()
    with pytest.raises(ConnectionResetError):
        run(inbox.fetch(["a"], sink))
    assert sink.begun == -1 and sink.bodies == {}


def test_fetch_after_client_renamed(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "new/a", b"A\n")
    put(d, "cur/b:2,", b"B\n")
    put(d, "cur/c:2,S", b"C\n")
    run(inbox.snapshot())
    os.rename(d / "new/a", d / "cur/a:2,S")  # read in a mail client
    os.rename(d / "cur/b:2,", d / "cur/b:2,F")  # flagged
    os.unlink(d / "cur/c:2,S")  # deleted
    got = Collect()
    run(inbox.fetch(["a", "b", "c"], got))
    assert got.bodies == {"a": b"A\n", "b": b"B\n"}


def test_store_flags(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "new/a")
    put(d, "cur/b:2,PSa")
    put(d, "cur/c:2,")
    put(d, "new/d:2,F")
    run(inbox.snapshot())
    ino = (d / "cur/b:2,PSa").stat().st_ino
    run(
        inbox.store_flags(
            [
                FlagChange("a", SEEN, NO_FLAGS),  # gains \Seen: new/ → cur/
                FlagChange("b", FLAGGED, SEEN),  # P and keyword a kept; stays in cur/
                FlagChange("c", FLAGGED, NO_FLAGS),
                FlagChange("d", NO_FLAGS, FLAGGED),  # unseen stays in new/
            ]
        )
    )
    assert sorted(files(d)) == ["cur/a:2,S", "cur/b:2,FPa", "cur/c:2,F", "new/d:2,"]
    assert (d / "cur/b:2,FPa").stat().st_ino == ino
    snap = run(inbox.snapshot())
    assert snap.messages["b"].flags == FLAGGED


def test_store_flags_no_change_no_rename(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "cur/a:2,S")
    put(d, "new/b")  # no info: adding nothing keeps the name as the client wrote it
    run(inbox.snapshot())
    before = os.stat(d / "cur").st_mtime_ns, os.stat(d / "new").st_mtime_ns
    run(inbox.store_flags([FlagChange("a", SEEN, NO_FLAGS), FlagChange("b", NO_FLAGS, SEEN)]))
    assert sorted(files(d)) == ["cur/a:2,S", "new/b"]
    assert (os.stat(d / "cur").st_mtime_ns, os.stat(d / "new").st_mtime_ns) == before


def test_store_flags_on_own_delivery(root: Path, inbox: MaildirFolder) -> None:
    """A delivery is not added to the folder's id → path map (an initial sync would grow it by
    one entry per message); acting on it later finds it by a rescan."""
    known = dict(inbox._paths)
    res = run(deliver(inbox, {n: b"x\n" for n in range(5, 55)}))
    assert inbox._paths == known
    mid = res.delivered[5].id
    assert isinstance(mid, str)
    run(inbox.store_flags([FlagChange(mid, SEEN, NO_FLAGS)]))
    assert files_of(root / "INBOX", mid) == ("cur", f"{mid}:2,S")


def test_store_flags_after_client_renamed(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "new/a")
    put(d, "cur/b:2,S")
    put(d, "cur/c:2,")
    run(inbox.snapshot())
    os.rename(d / "new/a", d / "cur/a:2,")  # the client moved it new → cur
    os.rename(d / "cur/b:2,S", d / "cur/b:2,RS")  # and replied to this one
    os.unlink(d / "cur/c:2,")
    run(
        inbox.store_flags(
            [
                FlagChange("a", FLAGGED, NO_FLAGS),
                FlagChange("b", FLAGGED, NO_FLAGS),
                FlagChange("c", FLAGGED, NO_FLAGS),
            ]
        )
    )
    # nothing lost, nothing duplicated, the client's change kept
    assert sorted(files(d)) == ["cur/a:2,F", "cur/b:2,FRS"]


def test_store_flags_does_not_overwrite_a_duplicate(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "cur/x:2,", b"one\n")
    put(d, "cur/x:2,S", b"two\n")
    run(inbox.snapshot())  # x → cur/x:2, (the smaller name)
    run(inbox.store_flags([FlagChange("x", SEEN, NO_FLAGS)]))
    assert files(d) == {"cur/x:2,": "one\n", "cur/x:2,S": "two\n"}
    assert any("exists" in w for w in inbox.warnings)


def test_delete(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "new/a")
    put(d, "cur/b:2,S")
    put(d, "cur/c:2,S")
    put(d, "cur/keep:2,S")
    run(inbox.snapshot())
    os.rename(d / "cur/b:2,S", d / "cur/b:2,ST")  # the client marked it deleted meanwhile
    os.unlink(d / "cur/c:2,S")  # or deleted it already
    run(inbox.delete(["a", "b", "c", "never"]))
    assert sorted(files(d)) == ["cur/keep:2,S"]


def test_fetch_flag_delete_without_snapshot(root: Path, inbox: MaildirFolder) -> None:
    d = root / "INBOX"
    put(d, "new/a", b"A\n")
    got = Collect()
    run(inbox.fetch(["a"], got))
    run(inbox.store_flags([FlagChange("a", SEEN, NO_FLAGS)]))
    assert sorted(files(d)) == ["cur/a:2,S"]
    run(inbox.delete(["a"]))
    assert files(d) == {}
    assert got.bodies == {"a": b"A\n"}


def test_roundtrip_between_folders(root: Path, store: MaildirStore) -> None:
    async def go() -> tuple[MaildirFolder, MaildirFolder]:
        await store.create_folder("A")
        await store.create_folder("B")
        return await store.open_folder("A", False), await store.open_folder("B", False)

    a, b = run(go())
    when = datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC)
    # not BODIES[5]: its "\r\r\n" is stored as "\r\n", which a second LF target reads as a CRLF
    bodies = {k: v for k, v in BODIES.items() if b"\r\r\n" not in v}
    run(deliver(a, bodies, {1: SEEN}, dates=dict.fromkeys(bodies, when)))
    snap = run(a.snapshot())

    async def copy() -> ReceiveResult:
        sink = b.receiver(snap.messages)
        await a.fetch(list(snap.messages), sink)
        return await sink.close()

    res = run(copy())
    assert set(res.delivered) == set(snap.messages)
    back = run(b.snapshot())
    assert sorted(m.flags for m in back.messages.values()) == sorted(
        m.flags for m in snap.messages.values()
    )
    ga, gb = Collect(), Collect()
    run(a.fetch(list(snap.messages), ga))
    run(b.fetch(list(back.messages), gb))
    assert sorted(ga.bodies.values()) == sorted(gb.bodies.values())
    assert set(gb.dates.values()) == {when}
    # Maildir ids are not UIDs: no ,U= on a copy from another Maildir
    assert all(offlineimap_uid(str(m)) is None for m in back.messages)


# -- read-only


def test_readonly_guards(root: Path) -> None:
    rw = MaildirStore(root, fsync=False)
    run(rw.create_folder("INBOX"))
    ro = MaildirStore(root, readonly=True)
    with pytest.raises(InternalError):
        run(ro.create_folder("X"))
    for folder in (run(ro.open_folder("INBOX", False)), run(rw.open_folder("INBOX", True))):
        with pytest.raises(InternalError):
            folder.receiver({})
        with pytest.raises(InternalError):
            run(folder.store_flags([FlagChange("a", SEEN, NO_FLAGS)]))
        with pytest.raises(InternalError):
            run(folder.delete(["a"]))
        assert run(folder.snapshot()).messages == {}


def test_visible_name_sets_fmd5(root: Path) -> None:
    store = MaildirStore(root, fsync=False, visible_name=lambda n: "INBOX" if n == "inbox" else n)
    run(store.create_folder("inbox"))
    f = run(store.open_folder("inbox", False))
    assert f.fmd5 == folder_md5("INBOX")


# -- OfflineIMAP reads our names, we read its names (its own code, under the system Python)

OFFLINEIMAP = Path("/usr/share/offlineimap3")
SYSTEM_PYTHON = Path("/usr/bin/python3")

_OIMAP_SCRIPT = textwrap.dedent(
    r"""
    import json, re, sys
    sys.path.insert(0, sys.argv[1])
    from offlineimap.folder.Maildir import MaildirFolder
    args = json.loads(sys.stdin.read())
    f = MaildirFolder.__new__(MaildirFolder)
    f.infosep = ":"
    f.re_flagmatch = re.compile(r":2,(\w*)")
    f.re_prefixmatch = re.compile(r"([^:,]*)")
    f._foldermd5 = args["fmd5"]
    f.sep_subst = "-"
    parsed = [[uid, sorted(flags)] for _, uid, _, flags in map(f._parse_filename, args["names"])]
    made = f.new_message_filename(args["uid"], set(args["letters"]))
    print(json.dumps({"parsed": parsed, "made": made}))
    """
)


def test_offlineimap_agrees_on_names(root: Path, inbox: MaildirFolder) -> None:
    if not (OFFLINEIMAP / "offlineimap").is_dir() or not SYSTEM_PYTHON.exists():
        pytest.skip("OfflineIMAP 8 is not installed under /usr/share/offlineimap3")
    res = run(deliver(inbox, {7: b"x\n", 8: b"y\n"}, {7: frozenset({"\\Seen", "\\Flagged"})}))
    ours = [files_of(root / "INBOX", res.delivered[s].id)[1] for s in (7, 8)]
    fmd5 = folder_md5("INBOX")
    out = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", _OIMAP_SCRIPT, str(OFFLINEIMAP)],
        input=json.dumps({"names": ours, "fmd5": fmd5, "uid": 31, "letters": "RSb"}),
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        pytest.skip(f"cannot load OfflineIMAP's code: {out.stderr[-300:]}")
    got = json.loads(out.stdout)
    assert got["parsed"] == [[7, ["F", "S"]], [8, []]]
    theirs = got["made"]
    assert offlineimap_uid(theirs, fmd5) == 31
    (root / "INBOX" / "cur" / theirs).write_bytes(b"z\n")
    snap = run(inbox.snapshot())
    mid = theirs.split(":")[0]
    assert snap.messages[mid].flags == {"\\Answered", "\\Seen"}
    run(inbox.store_flags([FlagChange(mid, FLAGGED, NO_FLAGS)]))
    assert (root / "INBOX" / "cur" / f"{mid}:2,FRSb").exists()


def test_receiver_cleans_tmp_debris_of_a_dead_run(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path, fsync=False)
    asyncio.run(store.create_folder("INBOX"))
    folder = asyncio.run(store.open_folder("INBOX", False))
    tmp = tmp_path / "INBOX" / "tmp"
    fmd5 = folder.fmd5
    debris = tmp / f"1700000000_1.999999.host,FMD5={fmd5}"
    debris.write_bytes(b"half a message")
    other = tmp / "1700000000.M1P2.procmail"  # another program's, fresh: left alone
    other.write_bytes(b"being delivered")
    folder.receiver({})
    assert not debris.exists()
    assert other.exists()

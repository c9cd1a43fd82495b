"""OfflineIMAP's state read back: both LocalStatus formats, FolderValidity, file names, bad files.

The fixtures are written here by hand, the way OfflineIMAP 8 writes them (folder/LocalStatus.py,
folder/LocalStatusSQLite.py, folder/Base.py); tests/integration/test_offlineimap_carryover.py
checks the same reader on files the real OfflineIMAP wrote.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from mailtwin.model import MessageInfo, Snapshot
from mailtwin.state.offlineimap import (
    MAGIC,
    Adopted,
    adopt,
    folder_basename,
    read_plain_status,
    read_sqlite_status,
    read_validity,
    status_name,
    status_paths,
    validity_path,
)
from mailtwin.state.rows import PairRow
from mailtwin.stores.maildir_names import folder_md5

ACCOUNT, REMOTE, LOCAL = "Personal", "personal-remote", "personal-local"
UIDVALIDITY = 1700000000
FMD5 = folder_md5("INBOX")
SEEN, FLAGGED, ANSWERED = "\\Seen", "\\Flagged", "\\Answered"


def key(uid: int, fmd5: str = FMD5, n: int | None = None) -> str:
    """A Maildir id as OfflineIMAP names its files."""
    n = uid if n is None else n
    return f"1700000000_{n}.4242.host,U={uid},FMD5={fmd5}"


def snapshot(ids: Iterable[str | int], uidvalidity: int = 0) -> Snapshot:
    return Snapshot(uidvalidity, 0, {i: MessageInfo(i, frozenset()) for i in ids})


def write_sqlite(path: Path, rows: dict[int, str], version: int = 2) -> Path:
    """A LocalStatus database as OfflineIMAP creates it (version 1 lacks mtime and labels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    cols = "id INTEGER PRIMARY KEY, flags VARCHAR(50)"
    if version >= 2:
        cols += ", mtime INTEGER, labels VARCHAR(256)"
    con.executescript(
        f"""CREATE TABLE metadata (key VARCHAR(50) PRIMARY KEY, value VARCHAR(128));
        INSERT INTO metadata VALUES('db_version', '{version}');
        CREATE TABLE status ({cols});"""
    )
    if version >= 2:
        con.executemany(
            "INSERT INTO status (id, flags, mtime, labels) VALUES (?, ?, 0, '')", rows.items()
        )
    else:
        con.executemany("INSERT INTO status (id, flags) VALUES (?, ?)", rows.items())
    con.commit()
    con.close()
    return path


def write_plain(path: Path, rows: dict[int, str], version: int = 2) -> Path:
    """A plain-text LocalStatus as LocalStatusFolder.saveall (format 2) or its format 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [MAGIC % version]
    for uid, flags in rows.items():
        lines.append(f"{uid}|{flags}|0|" if version == 2 else f"{uid}:{flags}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_validity(meta: Path, repo: str, name: str, value: int | str) -> Path:
    p = validity_path(meta, repo, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"{value}\n")
    return p


def run_adopt(
    meta: Path,
    a: Snapshot,
    b: Snapshot,
    name_a: str = "INBOX",
    name_b: str = "INBOX",
    sep_a: str = ".",
    fmd5: str = FMD5,
) -> tuple[Adopted | None, list[str]]:
    notes: list[str] = []
    got = adopt(meta, ACCOUNT, REMOTE, LOCAL, name_a, name_b, sep_a, a, b, fmd5, warn=notes.append)
    return got, notes


def sqlite_status(meta: Path, rows: dict[int, str], name_a: str = "INBOX", sep: str = ".") -> Path:
    return write_sqlite(status_paths(meta, ACCOUNT, name_a, sep)[0], rows)


def plain_status(meta: Path, rows: dict[int, str], name_a: str = "INBOX", sep: str = ".") -> Path:
    return write_plain(status_paths(meta, ACCOUNT, name_a, sep)[1], rows)


# ---- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("INBOX", "INBOX"),
        ("Work/Projects", "Work.Projects"),  # no directories below FolderValidity/
        ("Work.Projects", "Work.Projects"),
        ("&BCAEMAQxBD4EQgQw-", "&BCAEMAQxBD4EQgQw-"),  # IMAP names stay modified UTF-7
        ("", "dot"),  # the root: '.' is no file name
        (".", "dot"),
        ("/", "dot"),
        ("a/.", "a.."),
        ("a b", "a b"),
    ],
)
def test_folder_basename_as_offlineimap(name: str, base: str) -> None:
    assert folder_basename(name) == base


@pytest.mark.parametrize(
    ("name_a", "sep_a", "name"),
    [
        ("INBOX", ".", "INBOX"),
        ("Work.Projects", ".", "Work.Projects"),  # remote Work/Projects, local sep '.'
        ("Work/Projects", "/", "Work.Projects"),  # the same with local sep '/'
        ("Archive/2023/Q1", "/", "Archive.2023.Q1"),
        ("&BCAEMAQxBD4EQgQw-.Sub", ".", "&BCAEMAQxBD4EQgQw-.Sub"),
    ],
)
def test_status_name_is_the_remote_visible_name_with_dots(
    name_a: str, sep_a: str, name: str
) -> None:
    assert status_name(name_a, sep_a) == name


def test_paths_are_offlineimaps(tmp_path: Path) -> None:
    sq, plain = status_paths(tmp_path, "Work", "Lists/dev", "/")
    assert sq == tmp_path / "Account-Work" / "LocalStatus-sqlite" / "Lists.dev"
    assert plain == tmp_path / "Account-Work" / "LocalStatus" / "Lists.dev"
    assert validity_path(tmp_path, "srv", "Lists/dev") == (
        tmp_path / "Repository-srv" / "FolderValidity" / "Lists.dev"
    )


# ---- both status formats -------------------------------------------------------------------
STATUS = {1: "", 2: "FS", 3: "RS", 4: "DFRST"}
WANT_FLAGS = {
    1: frozenset(),
    2: frozenset({FLAGGED, SEEN}),
    3: frozenset({ANSWERED, SEEN}),
    4: frozenset({"\\Draft", FLAGGED, ANSWERED, SEEN, "\\Deleted"}),
}


@pytest.mark.parametrize(
    "write",
    [
        lambda p, r: write_sqlite(p, r, 2),
        lambda p, r: write_sqlite(p, r, 1),
    ],
    ids=["sqlite-v2", "sqlite-v1"],
)
def test_sqlite_status_read(tmp_path: Path, write: Callable[[Path, dict[int, str]], Path]) -> None:
    path = write(tmp_path / "s", STATUS)
    assert read_sqlite_status(path) == STATUS


@pytest.mark.parametrize("version", [1, 2])
def test_plain_status_read(tmp_path: Path, version: int) -> None:
    path = write_plain(tmp_path / "p", STATUS, version)
    assert read_plain_status(path) == STATUS


def test_plain_status_tolerates_labels_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "p"
    p.write_bytes((MAGIC % 2).encode() + b"\r\n7|S|1700000000|work, caf\xe9|x\r\n\r\n7|FS|0|\r\n")
    assert read_plain_status(p) == {7: "FS"}  # the last line of a UID wins, as in OfflineIMAP


def test_empty_plain_status_is_an_empty_status(tmp_path: Path) -> None:
    plain = status_paths(tmp_path, ACCOUNT, "INBOX", ".")[1]
    plain.parent.mkdir(parents=True)
    plain.write_text("")
    got, notes = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1]))
    assert got == Adopted([], None, plain, 0)
    assert notes == []


@pytest.mark.parametrize("fmt", ["sqlite", "plain"])
def test_adopt_pairs_every_message_both_sides_hold(tmp_path: Path, fmt: str) -> None:
    src = (sqlite_status if fmt == "sqlite" else plain_status)(tmp_path, STATUS)
    write_validity(tmp_path, REMOTE, "INBOX", UIDVALIDITY)
    a = snapshot([key(u) for u in STATUS] + ["1700000009.local.host"])
    b = snapshot([*STATUS, 9], UIDVALIDITY)
    got, notes = run_adopt(tmp_path, a, b)
    assert got is not None and notes == []
    assert got.source == src and got.uidvalidity_b == UIDVALIDITY and got.known == 4
    assert got.rows == [PairRow(key(u), u, WANT_FLAGS[u]) for u in sorted(STATUS)]


def test_sqlite_wins_over_plain(tmp_path: Path) -> None:
    # OfflineIMAP 8 reads only the SQLite file; a plain one beside it is older
    src = sqlite_status(tmp_path, {1: "S"})
    plain_status(tmp_path, {1: "F", 2: ""})
    got, _ = run_adopt(tmp_path, snapshot([key(1), key(2)]), snapshot([1, 2]))
    assert got is not None and got.source == src
    assert got.rows == [PairRow(key(1), 1, frozenset({SEEN}))]


def test_no_status_is_none(tmp_path: Path) -> None:
    write_validity(tmp_path, REMOTE, "INBOX", UIDVALIDITY)  # a validity file alone is not status
    got, notes = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1], UIDVALIDITY))
    assert got is None and notes == []


def test_unknown_letters_are_left_out(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: "PSa"})  # P (passed) and keyword letters have no IMAP flag
    got, _ = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1]))
    assert got is not None and got.rows == [PairRow(key(1), 1, frozenset({SEEN}))]


def test_nested_and_non_ascii_folders(tmp_path: Path) -> None:
    for name_a, name_b, sep in (
        ("Work.Projects", "Work/Projects", "."),
        ("Work/Projects", "Work/Projects", "/"),
        ("&BCAEMAQxBD4EQgQw-", "&BCAEMAQxBD4EQgQw-", "."),
    ):
        meta = tmp_path / sep.replace("/", "slash") / name_a.replace("/", "_")
        sqlite_status(meta, {5: "S"}, name_a, sep)
        write_validity(meta, REMOTE, name_b, 77)
        fmd5 = folder_md5(name_a)
        got, notes = run_adopt(
            meta,
            snapshot([key(5, fmd5)]),
            snapshot([5], 77),
            name_a=name_a,
            name_b=name_b,
            sep_a=sep,
            fmd5=fmd5,
        )
        assert got is not None and notes == [], (name_a, sep)
        assert got.rows == [PairRow(key(5, fmd5), 5, frozenset({SEEN}))]


def test_metadata_path_needing_uri_quoting(tmp_path: Path) -> None:
    meta = tmp_path / "meta data?#%41&"
    sqlite_status(meta, {1: "S"})
    write_validity(meta, REMOTE, "INBOX", UIDVALIDITY)
    got, notes = run_adopt(meta, snapshot([key(1)]), snapshot([1], UIDVALIDITY))
    assert notes == [] and got is not None and len(got.rows) == 1


# ---- what is not adopted -------------------------------------------------------------------
def test_fmd5_of_another_folder_is_not_adopted(tmp_path: Path) -> None:
    # a mail client moved a file in from "Archive": its UID is Archive's, meaningless here
    sqlite_status(tmp_path, {1: "S", 2: "S", 3: "S"})
    other = folder_md5("Archive")
    a = snapshot([key(1), key(2, other), "1700000000_3.4242.host,U=3"])
    got, _ = run_adopt(tmp_path, a, snapshot([1, 2, 3]))
    assert got is not None and [r.a for r in got.rows] == [key(1)]


def test_messages_gone_from_one_side_are_not_adopted(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: "", 2: "", 3: "", 5: ""})
    a = snapshot([key(1), key(2), key(4)])  # 3 deleted locally; 4 unknown to the status
    b = snapshot([1, 3, 4])  # 2 expunged on the server; 5 gone from both
    got, _ = run_adopt(tmp_path, a, b)
    assert got is not None
    assert got.rows == [PairRow(key(1), 1, frozenset())]
    assert got.known == 4


def test_two_files_with_one_uid_adopt_one(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: "S"})
    write_validity(tmp_path, REMOTE, "INBOX", UIDVALIDITY)
    a = snapshot([key(1, n=2), key(1, n=1)])  # copied by hand: both names carry U=1
    got, notes = run_adopt(tmp_path, a, snapshot([1], UIDVALIDITY))
    assert got is not None and got.rows == [PairRow(key(1, n=1), 1, frozenset({SEEN}))]
    assert len(notes) == 1 and "1 Maildir file(s)" in notes[0]


# ---- FolderValidity --------------------------------------------------------------------------
def test_uidvalidity_changed_since_pairs_nothing(tmp_path: Path) -> None:
    src = sqlite_status(tmp_path, {1: "S", 2: ""})
    write_validity(tmp_path, REMOTE, "INBOX", UIDVALIDITY)
    got, notes = run_adopt(tmp_path, snapshot([key(1), key(2)]), snapshot([1, 2], UIDVALIDITY + 5))
    assert got == Adopted([], UIDVALIDITY, src, 2)
    assert len(notes) == 1 and "UIDVALIDITY" in notes[0] and str(UIDVALIDITY) in notes[0]


def test_validity_of_a_nested_remote_folder(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: ""}, "Work.Projects")
    p = write_validity(tmp_path, REMOTE, "Work/Projects", 3)
    assert p.name == "Work.Projects"
    got, _ = run_adopt(
        tmp_path,
        snapshot([key(1)]),
        snapshot([1], 4),
        name_a="Work.Projects",
        name_b="Work/Projects",
    )
    assert got is not None and got.rows == [] and got.uidvalidity_b == 3


def test_missing_validity_trusts_the_status_and_says_so(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: "S"})
    got, notes = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1], UIDVALIDITY))
    assert got is not None and got.uidvalidity_b is None and len(got.rows) == 1
    assert len(notes) == 1 and "kept no UIDVALIDITY" in notes[0]


def test_the_local_validity_file_is_not_needed(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: "S"})
    write_validity(tmp_path, REMOTE, "INBOX", UIDVALIDITY)
    write_validity(tmp_path, LOCAL, "INBOX", "garbage")  # a Maildir's holds 42; not read
    got, notes = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1], UIDVALIDITY))
    assert got is not None and len(got.rows) == 1 and notes == []


@pytest.mark.parametrize("text", ["", "\n", "abc\n", "0\n", "-5\n", "4294967296\n", "\xff"])
def test_corrupt_validity(tmp_path: Path, text: str) -> None:
    p = tmp_path / "v"
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError):
        read_validity(p)


def test_validity_read(tmp_path: Path) -> None:
    p = tmp_path / "v"
    p.write_text("1795990726\n")
    assert read_validity(p) == 1795990726
    assert read_validity(tmp_path / "none") is None


# ---- corrupt and unreadable files ----------------------------------------------------------
def _garbage_sqlite(meta: Path) -> Path:
    p = status_paths(meta, ACCOUNT, "INBOX", ".")[0]
    p.parent.mkdir(parents=True)
    p.write_bytes(b"this is not a database" * 100)
    return p


def _sqlite_without_status(meta: Path) -> Path:
    p = status_paths(meta, ACCOUNT, "INBOX", ".")[0]
    p.parent.mkdir(parents=True)
    sqlite3.connect(p).execute("CREATE TABLE other (x)").connection.commit()
    return p


def _sqlite_text_uid(meta: Path) -> Path:
    p = status_paths(meta, ACCOUNT, "INBOX", ".")[0]
    write_sqlite(p, {})
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE s2 (id TEXT, flags TEXT)")
    con.execute("DROP TABLE status")
    con.execute("ALTER TABLE s2 RENAME TO status")
    con.execute("INSERT INTO status VALUES ('x', 'S')")
    con.commit()
    con.close()
    return p


def _plain(text: bytes) -> Callable[[Path], Path]:
    def make(meta: Path) -> Path:
        p = status_paths(meta, ACCOUNT, "INBOX", ".")[1]
        p.parent.mkdir(parents=True)
        p.write_bytes(text)
        return p

    return make


M2 = (MAGIC % 2).encode()


@pytest.mark.parametrize(
    "make",
    [
        _garbage_sqlite,
        _sqlite_without_status,
        _sqlite_text_uid,
        _plain(b"OFFLINEIMAP LocalStatus CACHE DATA - DO NOT MODIFY - FORMAT 3\n1|S|0|\n"),
        _plain(b"some other file\n"),
        _plain(M2 + b"\n1|S\n"),  # too few fields
        _plain(M2 + b"\nx|S|0|\n"),
        _plain(M2 + b"\n1|S|later|\n"),
        _plain(M2 + b"\n-1|S|0|\n"),  # OfflineIMAP never stores its placeholder UIDs
        _plain((MAGIC % 1).encode() + b"\n1|S|0|\n"),  # format 2 lines under format 1's magic
        _plain((MAGIC % 1).encode() + b"\n1:S:x\n"),
    ],
    ids=[
        "sqlite-garbage",
        "sqlite-no-table",
        "sqlite-text-uid",
        "plain-format-3",
        "plain-no-magic",
        "plain-short-line",
        "plain-bad-uid",
        "plain-bad-mtime",
        "plain-negative-uid",
        "plain-v1-wrong-lines",
        "plain-v1-extra-colon",
    ],
)
def test_corrupt_status_is_none_with_a_reason(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path)
    got, notes = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1]))
    assert got is None
    assert len(notes) == 1 and str(path) in notes[0] and "by content" in notes[0]


def test_corrupt_validity_is_none_with_a_reason(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: "S"})
    p = write_validity(tmp_path, REMOTE, "INBOX", "not a number")
    got, notes = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1]))
    assert got is None
    assert len(notes) == 1 and str(p) in notes[0]


def test_unreadable_status_file(tmp_path: Path) -> None:
    p = status_paths(tmp_path, ACCOUNT, "INBOX", ".")[1]
    p.mkdir(parents=True)  # a directory where the file should be: is_file() is False
    got, notes = run_adopt(tmp_path, snapshot([key(1)]), snapshot([1]))
    assert got is None and notes == []
    with pytest.raises(ValueError):
        read_plain_status(p)


def test_no_warn_callback_is_fine(tmp_path: Path) -> None:
    _garbage_sqlite(tmp_path)
    a, b = snapshot([key(1)]), snapshot([1])
    assert adopt(tmp_path, ACCOUNT, REMOTE, LOCAL, "INBOX", "INBOX", ".", a, b, FMD5) is None


# ---- OfflineIMAP's files stay as they are ------------------------------------------------------
def test_nothing_written(tmp_path: Path) -> None:
    sqlite_status(tmp_path, {1: "S", 2: ""})
    plain_status(tmp_path, {1: "S"}, "Other")
    write_validity(tmp_path, REMOTE, "INBOX", UIDVALIDITY)

    def state() -> dict[str, tuple[bytes, int]]:
        return {
            str(p.relative_to(tmp_path)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(tmp_path.rglob("*"))
            if p.is_file()
        }

    before = state()
    run_adopt(tmp_path, snapshot([key(1), key(2)]), snapshot([1, 2], UIDVALIDITY))
    run_adopt(tmp_path, snapshot([key(1)]), snapshot([1]), name_a="Other", name_b="Other")
    assert state() == before  # no journal, no -wal, no upgraded schema either

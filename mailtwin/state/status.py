"""StatusDB: what was synced, per account: folder pairs, their sync points, and message pairs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from mailtwin.model import Flags, FolderStamp, Frozen, MessageId, Side, Snapshot, _set
from mailtwin.state.db import open_db, open_or_reset
from mailtwin.state.rows import PairRow


class FolderState(Frozen):
    __match_args__ = (
        "id",
        "name_a",
        "name_b",
        "uidvalidity_a",
        "uidvalidity_b",
        "uidnext_a",
        "uidnext_b",
        "modseq_a",
        "modseq_b",
        "stamp_a",
        "stamp_b",
        "covered_a",
        "covered_b",
        "unkept_a",
        "unkept_b",
    )
    __slots__ = __match_args__
    id: int
    name_a: str
    name_b: str
    uidvalidity_a: int | None
    uidvalidity_b: int | None
    uidnext_a: int | None
    uidnext_b: int | None
    modseq_a: int | None
    modseq_b: int | None
    stamp_a: str | None  # FolderStamp.text() as of the last sync without failure
    stamp_b: str | None
    # the pair rows name every message of that side as of the sync point (see db.py, v4)
    covered_a: bool | None
    covered_b: bool | None
    # keywords that side refused to store (db.py, v5)
    unkept_a: str | None
    unkept_b: str | None

    def __init__(
        self,
        id: int,
        name_a: str,
        name_b: str,
        uidvalidity_a: int | None = None,
        uidvalidity_b: int | None = None,
        uidnext_a: int | None = None,
        uidnext_b: int | None = None,
        modseq_a: int | None = None,
        modseq_b: int | None = None,
        stamp_a: str | None = None,
        stamp_b: str | None = None,
        covered_a: bool | None = None,
        covered_b: bool | None = None,
        unkept_a: str | None = None,
        unkept_b: str | None = None,
    ) -> None:
        values = locals()
        for name in self.__match_args__:
            _set(self, name, values[name])

    def name(self, side: Side) -> str:
        return self.name_a if side is Side.A else self.name_b

    def uidvalidity(self, side: Side) -> int | None:
        return self.uidvalidity_a if side is Side.A else self.uidvalidity_b

    def uidnext(self, side: Side) -> int | None:
        return self.uidnext_a if side is Side.A else self.uidnext_b

    def modseq(self, side: Side) -> int | None:
        return self.modseq_a if side is Side.A else self.modseq_b

    def stamp(self, side: Side) -> FolderStamp | None:
        return FolderStamp.parse(self.stamp_a if side is Side.A else self.stamp_b)

    def covered(self, side: Side) -> bool:
        return bool(self.covered_a if side is Side.A else self.covered_b)

    def unkept(self, side: Side) -> Flags:
        return flags_parse((self.unkept_a if side is Side.A else self.unkept_b) or "")


_FOLDER_COLS = (
    "id, name_a, name_b, uidvalidity_a, uidvalidity_b, uidnext_a, uidnext_b, modseq_a, modseq_b,"
    " stamp_a, stamp_b, covered_a, covered_b, unkept_a, unkept_b"
)


def flags_text(flags: Flags) -> str:
    return " ".join(sorted(flags))


def flags_parse(text: str) -> Flags:
    return frozenset(text.split())


class StatusDB:
    def __init__(self, con: sqlite3.Connection, path: Path) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(cls, path: Path, fsync: bool = True, check: bool = True) -> StatusDB:
        return cls(open_db(path, fsync, check), path)

    @classmethod
    def open_or_reset(cls, path: Path, fsync: bool = True) -> tuple[StatusDB, str | None]:
        """Open; a damaged or too new database is moved aside (see db.open_or_reset)."""
        con, warning = open_or_reset(path, fsync)
        return cls(con, path), warning

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One durable step: everything inside lands together or not at all."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # ---- folders -------------------------------------------------------------------------
    def folders(self) -> list[FolderState]:
        rows = self.con.execute(f"SELECT {_FOLDER_COLS} FROM folders ORDER BY id").fetchall()
        return [FolderState(*r) for r in rows]

    def folder(self, name_a: str, name_b: str) -> FolderState | None:
        r = self.con.execute(
            f"SELECT {_FOLDER_COLS} FROM folders WHERE name_a = ? AND name_b = ?",
            (name_a, name_b),
        ).fetchone()
        return FolderState(*r) if r else None

    def add_folder(self, name_a: str, name_b: str) -> FolderState:
        with self.transaction():
            cur = self.con.execute(
                "INSERT INTO folders (name_a, name_b) VALUES (?, ?)", (name_a, name_b)
            )
        fid = cur.lastrowid
        assert fid is not None
        return FolderState(fid, name_a, name_b)

    def set_sync_point(self, folder: FolderState, points: dict[Side, Snapshot]) -> FolderState:
        """Record each side's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ as of the last snapshot
        (inside a transaction or alone): the next run tells a renumbered or restored folder.
        The stamps and the covered marks go: a sync that starts changing things is trusted only
        once it finished."""
        a, b = points[Side.A], points[Side.B]
        self.con.execute(
            "UPDATE folders SET uidvalidity_a = ?, uidvalidity_b = ?, uidnext_a = ?,"
            " uidnext_b = ?, modseq_a = ?, modseq_b = ?, stamp_a = NULL, stamp_b = NULL,"
            " covered_a = NULL, covered_b = NULL WHERE id = ?",
            (a.uidvalidity, b.uidvalidity, a.uidnext, b.uidnext, a.modseq, b.modseq, folder.id),
        )
        return FolderState(
            folder.id,
            folder.name_a,
            folder.name_b,
            a.uidvalidity,
            b.uidvalidity,
            a.uidnext,
            b.uidnext,
            a.modseq,
            b.modseq,
        )

    def set_stamps(self, folder: FolderState, stamps: Mapping[Side, FolderStamp | None]) -> None:
        """Record the stamps taken before the snapshots of a sync that finished without a
        failure, never ones taken after it changed anything."""
        text = [st.text() if st is not None else None for st in (stamps[Side.A], stamps[Side.B])]
        self.con.execute(
            "UPDATE folders SET stamp_a = ?, stamp_b = ? WHERE id = ?", (*text, folder.id)
        )

    def set_covered(self, folder: FolderState, sides: Iterable[Side]) -> None:
        """Mark ``sides`` covered: the sync from the sync point on finished without a failure
        and the pair rows now name every message those sides held at the sync point."""
        on = set(sides)
        self.con.execute(
            "UPDATE folders SET covered_a = ?, covered_b = ? WHERE id = ?",
            (Side.A in on, Side.B in on, folder.id),
        )

    def add_unkept(self, folder: FolderState, side: Side, keywords: Flags) -> None:
        """Remember keywords ``side``'s server refused: never sent there again."""
        col = "unkept_a" if side is Side.A else "unkept_b"
        was = flags_parse(
            self.con.execute(f"SELECT {col} FROM folders WHERE id = ?", (folder.id,)).fetchone()[0]
            or ""
        )
        self.con.execute(
            f"UPDATE folders SET {col} = ? WHERE id = ?", (flags_text(was | keywords), folder.id)
        )

    def forget_pairs(self, folder: FolderState) -> None:
        """Forget every pair of the folder; the covered marks go with them."""
        self.con.execute("DELETE FROM pairs WHERE folder = ?", (folder.id,))
        self.con.execute(
            "UPDATE folders SET covered_a = NULL, covered_b = NULL WHERE id = ?", (folder.id,)
        )

    # ---- the journal ---------------------------------------------------------------------
    def add_pending(
        self, folder: FolderState, source: Side, ids: Iterable[MessageId], uidnext: int | None
    ) -> list[int]:
        """Journal a copy batch (inside a transaction); the handles settle it later."""
        handles = []
        for mid in ids:
            cur = self.con.execute(
                "INSERT INTO pending (folder, source, src, uidnext) VALUES (?, ?, ?, ?)",
                (folder.id, source.value, mid, uidnext),
            )
            assert cur.lastrowid is not None
            handles.append(cur.lastrowid)
        return handles

    def settle_pending(self, handles: Iterable[int]) -> None:
        self.con.executemany("DELETE FROM pending WHERE id = ?", [(h,) for h in handles])

    def pending(self, folder: FolderState) -> int:
        """How many journaled copies of this folder never settled (a run was cut short)."""
        return int(
            self.con.execute(
                "SELECT count(*) FROM pending WHERE folder = ?", (folder.id,)
            ).fetchone()[0]
        )

    def clear_pending(self, folder: FolderState) -> None:
        self.con.execute("DELETE FROM pending WHERE folder = ?", (folder.id,))

    # ---- pairs ---------------------------------------------------------------------------
    def pairs(self, folder: FolderState) -> list[PairRow]:
        # a folder's thousands of rows hold a handful of distinct flag sets: parse each once,
        # and equal sets are then one shared object
        parsed: dict[str, Flags] = {}
        out: list[PairRow] = []
        append = out.append
        for rid, a, b, f, k in self.con.execute(
            "SELECT id, a, b, flags, key FROM pairs WHERE folder = ?", (folder.id,)
        ):
            flags = parsed.get(f)
            if flags is None:
                flags = parsed[f] = flags_parse(f)
            append(PairRow(a, b, flags, k, rid))
        return out

    def named(self, folder: FolderState, side: Side) -> set[MessageId]:
        """The ids of ``side`` that some pair row names."""
        col = "a" if side is Side.A else "b"  # a column name, never user input
        rows = self.con.execute(
            f"SELECT {col} FROM pairs WHERE folder = ? AND {col} IS NOT NULL", (folder.id,)
        )
        return {r[0] for r in rows}

    def insert_pairs(self, folder: FolderState, rows: Iterable[PairRow]) -> None:
        self.con.executemany(
            "INSERT INTO pairs (folder, a, b, flags, key) VALUES (?, ?, ?, ?, ?)",
            [(folder.id, r.a, r.b, flags_text(r.flags), r.key) for r in rows],
        )

    def update_pairs(self, rows: Iterable[PairRow]) -> None:
        """Rewrite stored rows (matched by rowid) with their new ids and flags."""
        self.con.executemany(
            "UPDATE pairs SET a = ?, b = ?, flags = ?, key = ? WHERE id = ?",
            [(r.a, r.b, flags_text(r.flags), r.key, r.rowid) for r in rows],
        )

    def delete_pairs(self, rows: Iterable[PairRow]) -> None:
        self.con.executemany("DELETE FROM pairs WHERE id = ?", [(r.rowid,) for r in rows])

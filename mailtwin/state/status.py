"""StatusDB: what was synced, per account: folder pairs, their sync points, and message pairs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mailtwin.model import Flags, Side
from mailtwin.state.db import open_db
from mailtwin.state.rows import PairRow


@dataclass(frozen=True, slots=True)
class FolderState:
    id: int
    name_a: str
    name_b: str
    uidvalidity_a: int | None
    uidvalidity_b: int | None

    def name(self, side: Side) -> str:
        return self.name_a if side is Side.A else self.name_b

    def uidvalidity(self, side: Side) -> int | None:
        return self.uidvalidity_a if side is Side.A else self.uidvalidity_b


def flags_text(flags: Flags) -> str:
    return " ".join(sorted(flags))


def flags_parse(text: str) -> Flags:
    return frozenset(text.split())


class StatusDB:
    def __init__(self, con: sqlite3.Connection, path: Path) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(cls, path: Path, fsync: bool = True) -> StatusDB:
        return cls(open_db(path, fsync), path)

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
        rows = self.con.execute(
            "SELECT id, name_a, name_b, uidvalidity_a, uidvalidity_b FROM folders ORDER BY id"
        ).fetchall()
        return [FolderState(*r) for r in rows]

    def folder(self, name_a: str, name_b: str) -> FolderState | None:
        r = self.con.execute(
            "SELECT id, name_a, name_b, uidvalidity_a, uidvalidity_b FROM folders"
            " WHERE name_a = ? AND name_b = ?",
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
        return FolderState(fid, name_a, name_b, None, None)

    def set_uidvalidity(self, folder: FolderState, a: int, b: int) -> FolderState:
        """Record both sides' UIDVALIDITY (call inside a transaction or alone)."""
        self.con.execute(
            "UPDATE folders SET uidvalidity_a = ?, uidvalidity_b = ? WHERE id = ?",
            (a, b, folder.id),
        )
        return FolderState(folder.id, folder.name_a, folder.name_b, a, b)

    # ---- pairs ---------------------------------------------------------------------------
    def pairs(self, folder: FolderState) -> list[PairRow]:
        rows = self.con.execute(
            "SELECT id, a, b, flags, key FROM pairs WHERE folder = ?", (folder.id,)
        ).fetchall()
        return [PairRow(a, b, flags_parse(f), k, rid) for rid, a, b, f, k in rows]

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

    def count_pairs(self, folder: FolderState) -> int:
        return int(
            self.con.execute(
                "SELECT count(*) FROM pairs WHERE folder = ?", (folder.id,)
            ).fetchone()[0]
        )

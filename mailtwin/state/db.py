"""The status database file: open it (WAL), check and migrate its schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mailtwin.errors import StateError

SCHEMA_VERSION = 1

# Each entry migrates from version i to i + 1; index 0 creates the first schema.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE folders (
        id INTEGER PRIMARY KEY,
        name_a TEXT NOT NULL UNIQUE,
        name_b TEXT NOT NULL UNIQUE,
        uidvalidity_a INTEGER,
        uidvalidity_b INTEGER,
        uidnext_a INTEGER,
        uidnext_b INTEGER,
        modseq_a INTEGER,
        modseq_b INTEGER
    );
    -- a and b have no declared type on purpose: IMAP UIDs stay integers, Maildir keys text
    CREATE TABLE pairs (
        id INTEGER PRIMARY KEY,
        folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        a,
        b,
        flags TEXT NOT NULL,
        key TEXT
    );
    CREATE INDEX pairs_a ON pairs (folder, a);
    CREATE INDEX pairs_b ON pairs (folder, b);
    """,
)


def open_db(path: Path, fsync: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) and bring the schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        # FULL makes each committed batch durable; NORMAL (fsync = no) may lose the last batches
        # on power loss, which the next run re-matches by content
        con.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        con.execute("PRAGMA foreign_keys=ON")
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as e:
        raise StateError(
            f"status database {path} cannot be read: {e}",
            hint="move it aside to start over (mail is then re-matched by content)",
        ) from e
    if version > SCHEMA_VERSION:
        con.close()
        raise StateError(
            f"status database {path} is from a newer mailtwin (schema {version}, "
            f"this one knows {SCHEMA_VERSION})",
            hint="upgrade mailtwin, or move the file aside",
        )
    try:
        for v in range(version, SCHEMA_VERSION):
            con.executescript("BEGIN;" + MIGRATIONS[v] + f"PRAGMA user_version={v + 1};COMMIT;")
    except sqlite3.DatabaseError as e:
        raise StateError(f"status database {path}: migration failed: {e}") from e
    return con

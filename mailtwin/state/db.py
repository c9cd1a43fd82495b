"""The status database file: open it (WAL), check and migrate its schema."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from mailtwin.errors import StateError

SCHEMA_VERSION = 5

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
    # the journal: a copy batch's intent, written before its first message moves and removed
    # in the transaction that records its results
    """
    CREATE TABLE pending (
        id INTEGER PRIMARY KEY,
        folder INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        src,
        uidnext INTEGER
    );
    CREATE INDEX pending_folder ON pending (folder);
    """,
    # each side's FolderStamp (text form) taken before the last sync that finished without a
    # failure: equal stamps now skip the folder; NULL syncs it in full
    """
    ALTER TABLE folders ADD COLUMN stamp_a TEXT;
    ALTER TABLE folders ADD COLUMN stamp_b TEXT;
    """,
    # 1 when the sync from the sync point on finished without a failure and left every message
    # of that side (but those marked \Deleted) named by a pair row: the next snapshot of that
    # side may then list only what changed since (see sync/folder.py); 0 or NULL: list it all
    """
    ALTER TABLE folders ADD COLUMN covered_a INTEGER;
    ALTER TABLE folders ADD COLUMN covered_b INTEGER;
    """,
    # keywords that side's server refused to store (space-separated): from then on they are
    # neither copied there nor compared, so they stay on the other side and are not retried
    """
    ALTER TABLE folders ADD COLUMN unkept_a TEXT;
    ALTER TABLE folders ADD COLUMN unkept_b TEXT;
    """,
)


def open_or_reset(path: Path, fsync: bool = True) -> tuple[sqlite3.Connection, str | None]:
    """Open the status database; one that cannot be used is moved aside and a new one made.

    Losing the state costs a re-match by content (nothing is deleted, nothing copied twice), so
    a damaged file never stops mail from syncing and never needs repairing by hand. The second
    value is the warning to show when that happened.
    """
    try:
        return open_db(path, fsync), None
    except StateError as e:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.unreadable-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        warning = (
            f"{e}; moved it aside to {aside} and started a new one "
            "(messages are matched again by content)"
        )
        return open_db(path, fsync), warning


def open_db(path: Path, fsync: bool = True, check: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) and bring the schema up to date. ``check``: look for damage
    first (its cost grows with the file; a reader that changes nothing may skip it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size == 0:
        # SQLite would take an empty file for a new database: it is a truncated one
        raise StateError(f"status database {path} is empty (truncated)")
    try:
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        # FULL makes each committed batch durable; NORMAL (fsync = no) may lose the last batches
        # on power loss, which the next run re-matches by content
        con.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        con.execute("PRAGMA foreign_keys=ON")
        version = int(con.execute("PRAGMA user_version").fetchone()[0])
        found = con.execute("PRAGMA quick_check(1)").fetchone()[0] if check else "ok"
        if found != "ok":
            con.close()
            raise sqlite3.DatabaseError(found)
    except sqlite3.DatabaseError as e:
        raise StateError(f"status database {path} cannot be read ({e})") from e
    if version > SCHEMA_VERSION:
        con.close()
        raise StateError(
            f"status database {path} is from a newer mailtwin (schema {version}, "
            f"this one knows {SCHEMA_VERSION})"
        )
    try:
        for v in range(version, SCHEMA_VERSION):
            con.executescript("BEGIN;" + MIGRATIONS[v] + f"PRAGMA user_version={v + 1};COMMIT;")
    except sqlite3.DatabaseError as e:
        raise StateError(f"status database {path}: migration failed: {e}") from e
    return con

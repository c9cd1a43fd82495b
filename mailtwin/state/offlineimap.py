"""Carry over what OfflineIMAP knows of a folder pair, so its users switch without a re-download.

File reads only: OfflineIMAP's state is never written, so going back to it stays possible.
What OfflineIMAP 8 keeps under its ``metadata`` directory, per folder pair:

- ``Account-<account>/LocalStatus-sqlite/<name>``: SQLite, ``status(id, flags, mtime, labels)``:
  each remote UID it synced, with the flags last synced as Maildir letters (``"FS"``);
- ``Account-<account>/LocalStatus/<name>``: the older plain format: a magic first line, then
  ``uid|flags|mtime|labels`` (format 2) or ``uid:flags`` (format 1) per message. OfflineIMAP 8
  reads only the SQLite file (its plain → SQLite import never runs: ``isnewfolder()`` is asked
  before the database is opened), so the plain one counts only where no SQLite file exists;
- ``Repository-<remote>/FolderValidity/<name>``: the remote UIDVALIDITY its status is valid for
  (the local Maildir's file always holds 42).

``<name>`` is OfflineIMAP's ``getfolderbasename()``: for LocalStatus the remote folder's name
after the remote nametrans with the remote separator made '.'; for FolderValidity the remote
folder's own name. Both then have '/' made '.', and '' or '.' (the root) becomes ``dot``.
The Maildir side of a synced message is its file whose name carries ``,U=<uid>`` and this
folder's ``,FMD5=``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mailtwin.model import Snapshot
from mailtwin.state.rows import PairRow
from mailtwin.stores.maildir_names import letters_to_flags, offlineimap_uid

MAGIC = "OFFLINEIMAP LocalStatus CACHE DATA - DO NOT MODIFY - FORMAT %d"

Warn = Callable[[str], None]


class UnreadableState(ValueError):
    """An OfflineIMAP state file that exists but cannot be read as OfflineIMAP writes it."""


@dataclass(frozen=True)
class Adopted:
    """What OfflineIMAP's state gives one folder pair.

    ``rows``: one pair per message both sides still hold, with the flags OfflineIMAP last synced
    (empty when the remote UIDVALIDITY changed since). ``uidvalidity_b``: the remote UIDVALIDITY
    OfflineIMAP recorded (None: no record). ``source``: the status file read. ``known``: how many
    UIDs that status holds; those not in ``rows`` are left to matching by content.
    """

    rows: list[PairRow]
    uidvalidity_b: int | None
    source: Path
    known: int = 0


def folder_basename(name: str) -> str:
    """OfflineIMAP's file name for a folder's state (``BaseFolder.getfolderbasename``)."""
    if name == ".":
        name = ""  # a LocalStatus folder named as its separator '.' is the root
    base = name.replace("/", ".") if name else "."
    return "dot" if base == "." else base


def status_name(name_a: str, sep_a: str) -> str:
    """The LocalStatus file name of a folder pair, from its Maildir name.

    OfflineIMAP names it after the remote visible name with the remote separator made '.';
    mailtwin's Maildir name is that visible name with the remote separator made ``sep_a``.
    With ``sep_a`` '.' or '/' (and '/' becomes '.' anyway) the two agree exactly; with another
    ``sep_a`` they differ only for a visible name holding ``sep_a`` itself.
    """
    return folder_basename(name_a.replace(sep_a, ".") if sep_a else name_a)


def status_paths(metadata: Path, account: str, name_a: str, sep_a: str) -> tuple[Path, Path]:
    """(SQLite, plain) LocalStatus files of a folder pair."""
    acct = metadata / f"Account-{account}"
    name = status_name(name_a, sep_a)
    return acct / "LocalStatus-sqlite" / name, acct / "LocalStatus" / name


def validity_path(metadata: Path, repo: str, name: str) -> Path:
    return metadata / f"Repository-{repo}" / "FolderValidity" / folder_basename(name)


def read_sqlite_status(path: Path) -> dict[int, str]:
    """UID → Maildir flag letters from a SQLite LocalStatus (format 1 or 2)."""
    try:
        # read-only: OfflineIMAP's database is never changed, not even its journal
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise UnreadableState(f"{path}: {e}") from e
    try:
        rows = con.execute("SELECT id, flags FROM status").fetchall()
    except sqlite3.Error as e:
        raise UnreadableState(f"{path}: {e}") from e
    finally:
        con.close()
    out: dict[int, str] = {}
    for uid, flags in rows:
        if type(uid) is not int or uid <= 0 or not isinstance(flags, str | None):
            raise UnreadableState(f"{path}: a row holds UID {uid!r}, flags {flags!r}")
        out[uid] = flags or ""
    return out


def read_plain_status(path: Path) -> dict[int, str]:
    """UID → Maildir flag letters from a plain-text LocalStatus (format 1 or 2)."""
    try:
        # labels may hold any bytes OfflineIMAP's locale wrote; only UIDs and letters matter
        lines = path.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    except OSError as e:
        raise UnreadableState(f"{path}: {e.strerror}") from e
    if not lines:
        return {}  # OfflineIMAP reads an empty file as an empty status
    head = lines[0].strip()
    if head not in (MAGIC % 1, MAGIC % 2):
        raise UnreadableState(f"{path}: not an OfflineIMAP LocalStatus (first line {head[:60]!r})")
    out: dict[int, str] = {}
    for n, raw in enumerate(lines[1:], 2):
        line = raw.strip()
        if not line:
            continue
        try:
            if head == MAGIC % 2:
                uid_s, flags, mtime, _labels = line.split("|", 3)
                int(mtime)
            else:
                uid_s, flags = line.split(":")
            uid = int(uid_s)
        except ValueError:
            raise UnreadableState(f"{path}, line {n}: corrupt entry {line[:60]!r}") from None
        if uid <= 0:
            raise UnreadableState(f"{path}, line {n}: UID {uid} is not a server's UID")
        out[uid] = flags  # a UID listed twice: the last line wins, as in OfflineIMAP
    return out


def read_validity(path: Path) -> int | None:
    """The UIDVALIDITY in a FolderValidity file; None when there is no such file."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UnreadableState(f"{path}: {e.strerror}") from e
    except UnicodeError:
        raise UnreadableState(f"{path}: not a text file") from None
    try:
        value = int(text.splitlines()[0].strip()) if text else -1
    except ValueError:
        value = -1
    if not 0 < value < 2**32:
        raise UnreadableState(f"{path}: no UIDVALIDITY in it ({text[:30]!r})")
    return value


def read_status(
    metadata: Path, account: str, name_a: str, sep_a: str
) -> tuple[Path, dict[int, str]] | None:
    """The status file OfflineIMAP 8 would use for a folder pair and its contents; None when it
    has none. Raises UnreadableState."""
    sqlite_path, plain_path = status_paths(metadata, account, name_a, sep_a)
    if sqlite_path.is_file():
        return sqlite_path, read_sqlite_status(sqlite_path)
    if plain_path.is_file():
        return plain_path, read_plain_status(plain_path)
    return None


def pair_rows(
    status: Mapping[int, str], a: Snapshot, b: Snapshot, fmd5: str
) -> tuple[list[PairRow], int]:
    """Rows for the messages OfflineIMAP synced that both sides still hold, and how many Maildir
    files were left out because another file of this folder carries the same UID."""
    found: dict[int, str] = {}
    twins = 0
    # sorted: of two files carrying one UID (a copy made by hand), the same one wins every time
    for mid in sorted(m for m in a.messages if isinstance(m, str)):
        uid = offlineimap_uid(mid, fmd5)
        if uid is None or uid not in status or uid not in b.messages:
            continue
        if uid in found:
            twins += 1
            continue
        found[uid] = mid
    rows = [PairRow(mid, uid, letters_to_flags(status[uid])) for uid, mid in sorted(found.items())]
    return rows, twins


def adopt(
    metadata: Path,
    account: str,
    remote_repo: str,
    local_repo: str,
    name_a: str,
    name_b: str,
    sep_a: str,
    a: Snapshot,
    b: Snapshot,
    fmd5: str,
    *,
    warn: Warn | None = None,
) -> Adopted | None:
    """What OfflineIMAP synced of the folder pair ``name_a`` (Maildir, separator ``sep_a``,
    ``fmd5`` its FMD5) ↔ ``name_b`` (server, as listed), given both sides' snapshots.

    None when OfflineIMAP has no status for it, or its files cannot be read (``warn`` gets why).
    ``local_repo`` is not read: a Maildir's FolderValidity always holds 42.
    """
    del local_repo

    def note(text: str) -> None:
        if warn is not None:
            warn(text)

    try:
        found = read_status(metadata, account, name_a, sep_a)
        if found is None:
            return None
        source, status = found
        validity = read_validity(validity_path(metadata, remote_repo, name_b))
    except UnreadableState as e:
        note(f"OfflineIMAP's state is unreadable: {e}; matching messages by content instead")
        return None
    if validity is not None and validity != b.uidvalidity:
        # its UIDs name other messages now: pairing them would mix messages up
        note(
            f"the server's UIDVALIDITY changed since OfflineIMAP's last sync ({validity} → "
            f"{b.uidvalidity}): its status {source} is not used, messages are matched by content"
        )
        return Adopted([], validity, source, len(status))
    if validity is None and status:
        note(
            f"OfflineIMAP kept no UIDVALIDITY for this folder; its status {source} is trusted "
            "as OfflineIMAP trusts it"
        )
    rows, twins = pair_rows(status, a, b, fmd5)
    if twins:
        note(
            f"{twins} Maildir file(s) carry the UID of another file in this folder (copied by "
            "hand?); they are left to matching by content"
        )
    return Adopted(rows, validity, source, len(status))

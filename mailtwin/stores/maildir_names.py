"""Maildir file and folder names, as OfflineIMAP writes and reads them. Pure: no I/O.

A message file is ``<base>[<infosep>2,<letters>]``. The base is the message's id: mail clients
keep it when they change flags or move the file from new/ to cur/. OfflineIMAP's bases look like
``<time>_<n>.<pid>.<host>,U=<uid>,FMD5=<md5 of the folder's visible name>``; Dovecot adds
``,S=<size>``.
"""

from __future__ import annotations

import re

from mailtwin.errors import FolderError, shown
from mailtwin.model import Flags

INFOSEP = ":"  # OfflineIMAP's maildir-windows-compatible uses "!"

FLAG_LETTERS: dict[str, str] = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
LETTER_FLAGS: dict[str, str] = {v: k for k, v in FLAG_LETTERS.items()}

MAILDIR_SUBDIRS = ("cur", "new", "tmp")
NAME_MAX = 255  # bytes in one directory name (ext4, xfs, btrfs, APFS; NTFS counts UTF-16 units)
# bytes in a folder's whole name: with the root and a message's file name the path stays well
# below Linux's PATH_MAX (4096)
NAME_MAX_TOTAL = 1024
_CONTROL = re.compile("[\x00-\x1f\x7f]")

_SIZE = re.compile(r",S=(\d+)")
_UID = re.compile(r",U=(\d+)")


def split_name(filename: str, infosep: str = INFOSEP) -> tuple[str, str | None]:
    """(base, info) of a message file name; info is None when the name has no separator."""
    base, sep, info = filename.partition(infosep)
    return base, (info if sep else None)


def message_id(filename: str, infosep: str = INFOSEP) -> str:
    """A message's id: its file's base name before the first info separator."""
    return filename.partition(infosep)[0]


def info_letters(info: str | None) -> str:
    """The flag letters of an info part (``2,FS`` → ``FS``); other info kinds carry none."""
    if info is not None and info.startswith("2,"):
        return info[2:]
    return ""


def letters_to_flags(letters: str) -> Flags:
    """IMAP flags of Maildir letters; letters without an IMAP flag (P, keywords) are left out."""
    return frozenset(LETTER_FLAGS[c] for c in letters if c in LETTER_FLAGS)


def flags_to_letters(flags: Flags) -> str:
    """Sorted Maildir letters of IMAP flags; flags without a letter are left out."""
    return "".join(sorted(FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS))


def flags_of(filename: str, infosep: str = INFOSEP) -> Flags:
    return letters_to_flags(info_letters(split_name(filename, infosep)[1]))


def size_of(filename: str, infosep: str = INFOSEP) -> int | None:
    """The ``,S=<size>`` a delivery agent (Dovecot) put in the base name, if any."""
    m = _SIZE.search(message_id(filename, infosep))
    return int(m.group(1)) if m else None


def change_flags(filename: str, add: Flags, remove: Flags, infosep: str = INFOSEP) -> str:
    """The file name after adding and removing IMAP flags.

    Letters with no IMAP flag (``P``, lowercase keywords) are kept; letters come out sorted, as
    OfflineIMAP and the Maildir spec write them. An info part of another kind (``1,…``) carries no
    flags and is replaced.
    """
    base, info = split_name(filename, infosep)
    old = info_letters(info)
    drop = set(flags_to_letters(remove)) - set(flags_to_letters(add))
    letters = (set(old) - drop) | set(flags_to_letters(add))
    return f"{base}{infosep}2,{''.join(sorted(letters))}"


def folder_md5(visible_name: str) -> str:
    """OfflineIMAP's FMD5: the md5 of the folder's visible name (after the Maildir side's
    nametrans; '' when that name is the separator itself)."""
    import hashlib  # here: listing folders (a no-op run) does not need it

    return hashlib.md5(visible_name.encode("utf-8", "surrogateescape")).hexdigest()


def offlineimap_uid(filename: str, fmd5: str | None = None, infosep: str = INFOSEP) -> int | None:
    """The remote UID OfflineIMAP wrote into a file name as ``,U=<uid>``.

    Pass the folder's ``fmd5``: like OfflineIMAP, the UID then counts only when the name carries
    this folder's ``,FMD5=``; a file a mail client moved in from another folder keeps that folder's
    UID, which means nothing here.
    """
    base = message_id(filename, infosep)
    if fmd5 is not None and f",FMD5={fmd5}" not in base:
        return None
    m = _UID.search(base)
    return int(m.group(1)) if m else None


def safe_hostname(hostname: str, infosep: str = INFOSEP) -> str:
    """A host name fit for a file name: no path separator, no info separator, no comma.

    OfflineIMAP replaces only '/' (by '-'); a ':' or ',' would break every reader's parsing.
    """
    for c in {"/", "\0", ":", ",", infosep}:
        hostname = hostname.replace(c, "-")
    return hostname


def new_base(when: int, seq: int, pid: int, host: str, uid: int | None, fmd5: str) -> str:
    """The base name OfflineIMAP gives a message it delivers (``host`` already made safe)."""
    u = f",U={uid}" if uid is not None else ""
    return f"{when}_{seq}.{pid}.{host}{u},FMD5={fmd5}"


def folder_parts(name: str, sep: str) -> list[str]:
    """The path components of a folder below the root, or FolderError if the name could reach
    outside it or collide with the Maildir layout.

    With sep '/' a folder nests (``Work/Projects`` → ``Work/Projects/``); with any other sep the
    folder is one directory named as the folder (``Work.Projects``), as OfflineIMAP does.
    """

    def refuse(why: str) -> FolderError:
        return FolderError(
            f"folder {shown(name)}: {why}",
            hint="rename the folder, or exclude it with folderfilter/nametrans",
        )

    if not name:
        raise refuse("an empty name has no directory")
    if "\0" in name:
        raise refuse("the name contains a NUL byte")
    if _CONTROL.search(name):
        raise refuse("the name contains control characters")
    if name.startswith("/"):
        raise refuse("an absolute name would write outside the Maildir root")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX_TOTAL:
        raise refuse(f"names longer than {NAME_MAX_TOTAL} bytes are not stored")
    parts = name.split("/")
    if sep != "/" and len(parts) > 1:
        raise refuse(f"'/' in a name cannot be stored with sep {sep!r}")
    for part in parts:
        if part in ("", ".", ".."):
            raise refuse("empty, '.' and '..' path components are not allowed")
        if part in MAILDIR_SUBDIRS:
            raise refuse(f"{part!r} is a Maildir's own subdirectory")
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise refuse(f"a directory name longer than {NAME_MAX} bytes cannot be created")
    return parts


def case_key(parts: list[str]) -> str:
    """What a case-insensitive file system sees of a folder's path: two folders with the same
    key would share one directory there."""
    return "/".join(parts).casefold()

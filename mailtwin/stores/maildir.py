"""A Maildir root as a Store, laid out and named as OfflineIMAP does.

Listing is one os.scandir of new/ and cur/, never opening or stat-ing a message. Deliveries go
tmp/ → (fsync) → rename into new/ or cur/ → fsync of the directory once per batch. A message's id
is its file's base name; the file's current path is remembered, and looked up again by rescanning
when a mail client renamed or moved it in the meantime. Nothing is ever written outside the root.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncio import Future

from mailtwin.content import CrlfToLf, KeyBuilder
from mailtwin.errors import FolderError, InternalError, shown
from mailtwin.model import (
    NO_FLAGS,
    SYSTEM_FLAGS,
    ContentKey,
    Delivered,
    Flags,
    FolderInfo,
    FolderStamp,
    MessageId,
    MessageInfo,
    Since,
    Snapshot,
    StoreCaps,
)
from mailtwin.stores.base import BodySink, BodyWriter, FlagChange, ReceiveResult
from mailtwin.stores.maildir_names import (
    INFOSEP,
    MAILDIR_SUBDIRS,
    case_key,
    change_flags,
    flags_of,
    flags_to_letters,
    folder_md5,
    folder_parts,
    info_letters,
    letters_to_flags,
    new_base,
    offlineimap_uid,
    safe_hostname,
    size_of,
    split_name,
)

__all__ = ["MaildirFolder", "MaildirStore", "folder_md5", "offlineimap_uid"]

READ_CHUNK = 1 << 20
SCAN_ROUNDS = 3  # listings of a folder a mail client keeps changing, before taking the last
TMP_MAX_AGE = 36 * 3600  # seconds: the Maildir convention's limit for tmp/ files
MAX_PENDING = 256  # messages written and being fsynced before a batch lands
FSYNC_GROUP = 16  # files one worker-thread job fsyncs: fewer thread hand-offs, less system time
WRITE_BUFFER = 256 * 1024  # a message up to this size is written with one os.write
AHEAD = 16  # tmp/ files a worker-thread job creates ahead of the messages that fill them
RESOLVE_ROUNDS = 3  # rescans allowed for files a mail client keeps renaming under us
# a directory mtime this close to the moment it is read is no stamp: a change a moment later
# may leave the same mtime. How close depends on the file system's timestamps: 2 s where they
# may be whole seconds (FAT's are 2 s), else 0.1 s (well above the kernel clock tick that
# ext4, XFS, btrfs and tmpfs timestamps come from). A mtime with no fraction of a second is
# taken as a sign of the coarse kind.
STAMP_MARGIN_NS = 2_000_000_000
FINE_STAMP_MARGIN_NS = 100_000_000

CAPS = StoreCaps(flags=SYSTEM_FLAGS, knows_new_ids=True)
_MAILDIR = frozenset(MAILDIR_SUBDIRS)

# act(id, "cur/<file>") → False when the file is not there (any more)
_Act = Callable[[str, str], Awaitable[bool]]

# n in "<time>_<n>.<pid>.<host>": unique within this process, as OfflineIMAP's is
_delivery_seq = itertools.count()


def _within(path: str, root: str) -> bool:
    return path.startswith(root + os.sep) if root != os.sep else path.startswith(os.sep)


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_all(fds: Sequence[int]) -> list[OSError | None]:
    """fsync and close each file; what went wrong with each."""
    out: list[OSError | None] = []
    for fd in fds:
        try:
            _fsync_close(fd)
        except OSError as e:
            out.append(e)
        else:
            out.append(None)
    return out


# a tmp/ file created for a message: (path, fd, time, delivery number)
_Tmp = tuple[str, int, int, int]


def _create_tmp(tmp: str, base: Callable[[int, int, int | None], str]) -> _Tmp:
    """A new file in ``tmp`` named for a delivery (OSError if it cannot be created)."""
    when = int(time.time())
    while True:
        seq = next(_delivery_seq)
        path = os.path.join(tmp, base(when, seq, None))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # left by a dead process that had our pid: take the next number
        return path, fd, when, seq


def _create_tmps(tmp: str, base: Callable[[int, int, int | None], str], n: int) -> list[_Tmp]:
    """Up to ``n`` new files (fewer if one cannot be created: the next begin() tells why)."""
    out = []
    for _ in range(n):
        try:
            out.append(_create_tmp(tmp, base))
        except OSError:
            break
    return out


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MaildirStore:
    """A directory of Maildir folders. ``sep`` '/' nests folders as directories; any other sep
    names one flat directory per folder (``Work.Projects``)."""

    def __init__(
        self,
        root: Path,
        sep: str = ".",
        fsync: bool = True,
        readonly: bool = False,
        *,
        infosep: str = INFOSEP,
        visible_name: Callable[[str], str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.sep = sep
        self.fsync = fsync
        self.readonly = readonly
        self.infosep = infosep
        # OfflineIMAP's FMD5 hashes the folder name after this side's nametrans
        self.visible_name = visible_name
        self.warnings: list[str] = []
        self._nocase: bool | None = None  # the root's file system ignores case; None: not probed
        self._claims: dict[str, str] = {}  # case_key → the folder whose directory that is

    @property
    def caps(self) -> StoreCaps:
        return CAPS

    @property
    def capacity(self) -> int | None:
        return None

    async def connect(self) -> None:
        # the root is made by the first create_folder: a missing root (an unmounted disk) then
        # lists as empty, which the planner treats as "synced folders gone", not as new
        pass

    async def close(self) -> None:
        pass

    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def folder_path(self, name: str) -> str:
        """The directory of folder ``name``, or FolderError if it is (or resolves) outside the
        root. Symlinks inside the root are followed and must stay inside it."""
        parts = folder_parts(name, self.sep)
        root = self._real_root()
        path = os.path.join(root, *parts)
        if not _within(os.path.realpath(path), root):
            raise FolderError(
                f"folder {name!r}: {path} leads outside the Maildir root {root}",
                hint="remove the symlink, or exclude the folder with folderfilter",
            )
        return path

    def _ignores_case(self, root: str) -> bool:
        """Whether the root's file system ignores case (macOS, Windows shares, some mounts):
        probed once. An entry of the root whose ASCII name has letters answers without writing
        anything (its name with the case swapped is the same file only where case is ignored);
        an empty root is probed by creating a file. A root that is missing, or empty and
        read-only, counts as case-sensitive until it can be probed."""
        if self._nocase is not None:
            return self._nocase
        try:
            names = set(os.listdir(root))
        except OSError:
            names = set()
        for name in names:
            swapped = name.swapcase()
            if not name.isascii() or swapped == name or swapped in names:
                continue
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # gone meanwhile: ask another
            try:
                other = os.lstat(os.path.join(root, swapped))
            except FileNotFoundError:
                self._nocase = False
            except OSError:
                continue
            else:
                self._nocase = os.path.samestat(st, other)
            return self._nocase
        if self.readonly:
            return False  # nothing is created or written in it
        probe = os.path.join(root, f".mailtwin-case-probe-{os.getpid()}-{time.time_ns()}")
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            return False
        try:
            self._nocase = os.path.exists(os.path.join(root, os.path.basename(probe).swapcase()))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
        return self._nocase

    def _claim(self, name: str, root: str) -> None:
        """FolderError if, on a case-insensitive file system, ``name``'s directory is already
        another folder's (``Work`` and ``work`` would mix their mail in one Maildir)."""
        if not self._ignores_case(root):
            return
        other = self._claims.setdefault(case_key(folder_parts(name, self.sep)), name)
        if other != name:
            raise FolderError(
                f"folder {shown(name)}: the Maildir's file system ignores case, so it would "
                f"share a directory with folder {shown(other)}",
                hint="rename one of the folders on the server, or exclude one with folderfilter "
                "or map it elsewhere with nametrans",
            )

    async def list_folders(self) -> list[FolderInfo]:
        return self.listing()

    def listing(self) -> list[FolderInfo]:
        """Every directory holding cur/, new/ and tmp/, found as OfflineIMAP finds them: the
        root's subdirectories, and with sep '/' their subdirectories too. (Blocking, and cheap:
        the pre-flight check of a run calls it before any event loop exists.)"""
        self.warnings = []
        root = self._real_root()
        found: list[FolderInfo] = []
        children = self._subdirs(root)
        if children >= _MAILDIR:
            # OfflineIMAP lists the root itself as folder ''; no IMAP folder can pair with it
            self.warnings.append(f"{root} is itself a Maildir; its messages are not synced")
        st = os.stat(root) if children else None
        seen = {(st.st_dev, st.st_ino)} if st else set()
        self._walk(root, root, children, "", found, seen)
        found.sort(key=lambda f: f.name)
        if found and self._ignores_case(root):
            for f in found:  # what is on disk owns its directory
                with contextlib.suppress(FolderError):
                    self._claims.setdefault(case_key(folder_parts(f.name, self.sep)), f.name)
        return found

    def _subdirs(self, path: str) -> set[str]:
        try:
            with os.scandir(path) as it:
                return {e.name for e in it if e.is_dir()}
        except OSError as e:
            if os.path.isdir(path):
                self.warnings.append(f"cannot list {path}: {e.strerror}")
            return set()

    def _walk(
        self,
        root: str,
        path: str,
        children: set[str],
        prefix: str,
        found: list[FolderInfo],
        seen: set[tuple[int, int]],
    ) -> None:
        for d in sorted(children - _MAILDIR):
            full = os.path.join(path, d)
            name = prefix + d
            sub = self._subdirs(full)
            if sub >= _MAILDIR:
                # listed even when a symlink leads outside: open_folder then names the problem
                found.append(FolderInfo(name, self.sep))
            if self.sep != "/" or not sub - _MAILDIR:
                continue
            real = os.path.realpath(full)
            try:
                st = os.stat(real)
            except OSError:
                continue
            # symlink loops, and trees outside the root, are not walked
            if (st.st_dev, st.st_ino) in seen or not _within(real, root):
                continue
            seen.add((st.st_dev, st.st_ino))
            self._walk(root, full, sub, name + "/", found, seen)

    def check_new_folder(self, name: str) -> None:
        self.folder_path(name)  # the checks create_folder makes before its first mkdir

    async def create_folder(self, name: str) -> None:
        if self.readonly:
            raise InternalError(f"create_folder({name!r}) on a read-only Maildir store")
        path = self.folder_path(name)  # every check of the name comes before any mkdir
        try:
            # level by level: makedirs would give the parents the umask's mode, not 0700
            level = self._real_root()
            os.makedirs(level, 0o700, exist_ok=True)
            self._claim(name, level)
            for part in folder_parts(name, self.sep):
                level = os.path.join(level, part)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(level, 0o700)
            # a symlink made meanwhile could have led us elsewhere: check before writing inside
            self.folder_path(name)
            for sub in MAILDIR_SUBDIRS:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(os.path.join(path, sub), 0o700)
        except OSError as e:
            raise FolderError(f"cannot create folder {name!r} at {path}: {e.strerror}") from e
        self._check_subdirs(name, path)

    def _check_subdirs(self, name: str, path: str) -> None:
        root = self._real_root()
        for sub in MAILDIR_SUBDIRS:
            full = os.path.join(path, sub)
            if not os.path.isdir(full):
                raise FolderError(f"folder {name!r} is not a Maildir: {full} is missing")
            if not _within(os.path.realpath(full), root):
                raise FolderError(
                    f"folder {name!r}: {full} leads outside the Maildir root {root}",
                    hint="remove the symlink, or exclude the folder with folderfilter",
                )

    async def stamps(self, names: Sequence[str]) -> dict[str, FolderStamp | None]:
        """The mtimes of each folder's new/ and cur/: adding, deleting or renaming a file (a
        flag change) changes its directory's mtime."""
        return {name: self.stamp(name) for name in names}

    def stamp(self, name: str) -> FolderStamp | None:
        try:
            path = self.folder_path(name)
            mtimes = [os.stat(os.path.join(path, sub)).st_mtime_ns for sub in ("new", "cur")]
        except (FolderError, OSError):
            return None  # opening it names the problem
        now = time.time_ns()
        coarse = any(m % 1_000_000_000 == 0 for m in mtimes)
        margin = STAMP_MARGIN_NS if coarse else FINE_STAMP_MARGIN_NS
        if any(abs(now - m) < margin for m in mtimes):
            return None
        return FolderStamp("maildir", tuple(mtimes))

    async def open_folder(self, name: str, readonly: bool) -> MaildirFolder:
        path = self.folder_path(name)
        self._claim(name, self._real_root())
        self._check_subdirs(name, path)
        visible = self.visible_name(name) if self.visible_name else name
        if visible == self.sep:
            visible = ""  # as OfflineIMAP
        return MaildirFolder(
            name,
            path,
            fmd5=folder_md5(visible),
            fsync=self.fsync,
            readonly=readonly or self.readonly,
            infosep=self.infosep,
        )


class MaildirFolder:
    """One Maildir folder. ``warnings`` collects what a scan found odd (duplicate ids, unreadable
    files); each snapshot starts it afresh."""

    caps = CAPS

    def __init__(
        self,
        name: str,
        path: str,
        *,
        fmd5: str,
        fsync: bool = True,
        readonly: bool = False,
        infosep: str = INFOSEP,
    ) -> None:
        self._name = name
        self.path = path
        self.fmd5 = fmd5
        self.fsync = fsync
        self.readonly = readonly
        self.infosep = infosep
        self.warnings: list[str] = []
        self._tmp_cleaned = False
        # id → "cur/<file name>" or "new/<file name>", as of the last scan or our own renames
        self._paths: dict[str, str] = {}

    @property
    def name(self) -> str:
        return self._name

    # -- reading

    def _scan(self, infos: dict[MessageId, MessageInfo] | None = None) -> None:
        """Rebuild the id → path map from new/ and cur/ (and fill ``infos`` when given)."""
        paths: dict[str, str] = {}
        sep = self.infosep
        # the same info suffix repeats across thousands of files: parse each kind once
        flag_cache: dict[str, Flags] = {}
        listed = self._list_stable()
        for sub in ("cur", "new"):  # cur/ first: of two copies, the one a client has seen wins
            names = listed[sub]
            prefix = sub + "/"
            for fname in names:
                mid, _, info = fname.partition(sep)
                rel = prefix + fname
                other = paths.get(mid)
                if other is not None:
                    # keep one, the same one on every scan: cur/ first, then the smaller name
                    keep, drop = (rel, other) if other[:3] == sub and rel < other else (other, rel)
                    if infos is not None:
                        self.warnings.append(
                            f"folder {self._name!r}: message {mid!r} has two files, {keep} and "
                            f"{drop}; using {keep}"
                        )
                    if keep == other:
                        continue
                paths[mid] = rel
                if infos is not None:
                    flags = flag_cache.get(info)
                    if flags is None:
                        flags = flag_cache[info] = letters_to_flags(info_letters(info))
                    size = size_of(mid, sep) if ",S=" in mid else None
                    infos[mid] = MessageInfo(mid, flags, size)
        self._paths = paths

    def _list_stable(self) -> dict[str, list[str]]:
        """The file names in new/ and cur/, listed so that a mail client's renames cannot hide
        a message: new/ before cur/ (a message moved new/ → cur/ meanwhile is then seen at
        least once), and again while either directory changed during the listing."""
        dirs = {sub: os.path.join(self.path, sub) for sub in ("new", "cur")}
        listed: dict[str, list[str]] = {}
        for _ in range(SCAN_ROUNDS):
            try:
                before = [os.stat(d).st_mtime_ns for d in dirs.values()]
                for sub, d in dirs.items():
                    with os.scandir(d) as it:
                        # d_type answers is_dir() without a stat on every common file system
                        listed[sub] = [
                            e.name
                            for e in it
                            if not e.name.startswith(".") and not e.is_dir(follow_symlinks=False)
                        ]
                after = [os.stat(d).st_mtime_ns for d in dirs.values()]
            except OSError as e:
                raise FolderError(
                    f"folder {self._name!r}: cannot list {e.filename}: {e.strerror}",
                    hint="check that the folder still exists and is readable",
                ) from e
            if before == after:
                break
        return listed

    async def snapshot(self, since: Since | None = None) -> Snapshot:
        """Every message's id and flags (size only where the name holds it). A Maildir has no
        UIDVALIDITY or UIDNEXT: both are 0. ``since`` is not used: a scan is always whole."""
        self.warnings = []
        infos: dict[MessageId, MessageInfo] = {}
        self._scan(infos)
        return Snapshot(uidvalidity=0, uidnext=0, messages=infos)

    async def _each(self, ids: Sequence[MessageId], act: _Act) -> None:
        """Run ``act(id, path)`` on each message; where the file is no longer at its path (a mail
        client renamed or moved it, or deleted it), rescan once for all of them and retry."""
        pending = [m for m in ids if isinstance(m, str)]  # a UID is never a Maildir id
        for _ in range(RESOLVE_ROUNDS):
            missed: list[str] = []
            for mid in pending:
                rel = self._paths.get(mid)
                if rel is None or not await act(mid, rel):
                    missed.append(mid)
            if not missed:
                return
            self._scan()
            pending = [m for m in missed if m in self._paths]
            if not pending:
                return  # the rest is gone

    async def fetch(self, ids: Sequence[MessageId], sink: BodySink) -> None:
        """Stream each file as it is stored (LF line ends); internal date = the file's mtime.
        Messages no longer there are skipped."""

        async def send(mid: str, rel: str) -> bool:
            try:
                f = open(os.path.join(self.path, rel), "rb", buffering=0)  # noqa: SIM115
            except FileNotFoundError:
                return False
            except OSError as e:
                self.warnings.append(f"folder {self._name!r}: cannot read {rel}: {e.strerror}")
                return True
            with f:
                mtime = os.fstat(f.fileno()).st_mtime
                w = await sink.begin()
                sent = False
                try:
                    while True:
                        try:
                            chunk = f.read(READ_CHUNK)
                        except OSError as e:  # only our read: the sink's errors go up
                            self.warnings.append(
                                f"folder {self._name!r}: cannot read {rel}: {e.strerror}"
                            )
                            break
                        if not chunk:
                            sent = True
                            break
                        await w.write(chunk)
                finally:
                    if not sent:
                        await w.abort()
            if sent:
                await w.finish(mid, datetime.fromtimestamp(mtime, UTC))
            return True

        await self._each(ids, send)

    async def keys(self, ids: Sequence[MessageId]) -> dict[MessageId, ContentKey]:
        """Read each file once through a KeyBuilder (the CRLF size needs every line end)."""
        out: dict[MessageId, ContentKey] = {}

        async def key(mid: str, rel: str) -> bool:
            kb = KeyBuilder()
            try:
                with open(os.path.join(self.path, rel), "rb", buffering=0) as f:
                    while chunk := f.read(READ_CHUNK):
                        kb.feed(chunk)
            except FileNotFoundError:
                return False
            except OSError as e:
                self.warnings.append(f"folder {self._name!r}: cannot read {rel}: {e.strerror}")
                return True
            out[mid] = kb.key()
            return True

        await self._each(ids, key)
        return out

    # -- writing

    def _guard(self, what: str) -> None:
        if self.readonly:
            raise InternalError(f"{what} on read-only Maildir folder {self._name!r}")

    def receiver(self, meta: Mapping[MessageId, MessageInfo]) -> BodySink:
        self._guard("receiver()")
        if not self._tmp_cleaned:
            self._clean_tmp()
            self._tmp_cleaned = True
        return _Sink(self, meta)

    def _clean_tmp(self) -> None:
        """Remove what an interrupted delivery left in tmp/: files named as ours (this folder's
        FMD5) by another process, which the account lock says is gone; and, as the Maildir
        convention asks, any file untouched for 36 hours."""
        tmp = os.path.join(self.path, "tmp")
        ours = f",FMD5={self.fmd5}"
        mine = f".{os.getpid()}."
        old = time.time() - TMP_MAX_AGE
        try:
            entries = list(os.scandir(tmp))
        except OSError:
            return
        for e in entries:
            try:
                stale = (ours in e.name and mine not in e.name) or e.stat().st_mtime < old
                if stale and e.is_file(follow_symlinks=False):
                    os.unlink(e.path)
            except OSError:
                continue  # gone already, or not ours to remove: leave it

    async def store_flags(self, changes: Sequence[FlagChange]) -> None:
        """Rename each file to its new ``:2,`` suffix (unknown letters kept); a file that gains
        \\Seen moves to cur/, as OfflineIMAP does. Messages no longer there are skipped."""
        self._guard("store_flags()")
        by_id = {c.id: c for c in changes}

        async def rename(mid: str, rel: str) -> bool:
            ch = by_id[mid]
            sub, fname = rel.split("/", 1)
            new_name = change_flags(fname, ch.add, ch.remove, self.infosep)
            new_sub = "cur" if "\\Seen" in flags_of(new_name, self.infosep) else sub
            if new_sub == sub and sorted(self._letters(new_name)) == sorted(self._letters(fname)):
                return True  # no change, or a mail client made it already: no rename
            new_rel = f"{new_sub}/{new_name}"
            dst = os.path.join(self.path, new_rel)
            if os.path.lexists(dst):
                # another file with this id (a duplicate): renaming would overwrite it
                self.warnings.append(f"folder {self._name!r}: not renaming {rel}: {new_rel} exists")
                return True
            try:
                os.rename(os.path.join(self.path, rel), dst)
            except FileNotFoundError:
                return False
            except OSError as e:
                raise FolderError(
                    f"folder {self._name!r}: cannot rename {rel} to {new_rel}: {e.strerror}"
                ) from e
            self._paths[mid] = new_rel
            return True

        await self._each(list(by_id), rename)

    def _letters(self, fname: str) -> str:
        return info_letters(split_name(fname, self.infosep)[1])

    async def delete(self, ids: Sequence[MessageId]) -> None:
        """Unlink each message's file; one already gone is fine."""
        self._guard("delete()")

        async def unlink(mid: str, rel: str) -> bool:
            try:
                os.unlink(os.path.join(self.path, rel))
            except FileNotFoundError:
                return False
            except OSError as e:
                raise FolderError(
                    f"folder {self._name!r}: cannot delete {rel}: {e.strerror}"
                ) from e
            del self._paths[mid]
            return True

        await self._each(ids, unlink)

    async def close(self) -> None:
        pass


class _Sink:
    """Delivers into one folder.

    With fsync on, a finished message is not renamed into place at once: its fsync is done in a
    worker thread (FSYNC_GROUP files a job) while the next messages stream in, and the batch
    lands together (fsync done, rename, one directory fsync) when it grows past MAX_PENDING or
    at close(). Speed then does not pay for safety: the disk works while the network does.
    (Writing and renaming in the worker thread too, or a job per file, measured slower: more
    GIL hand-offs, more system time.)

    The tmp/ files are created ahead too, AHEAD at a time by a worker-thread job, never more
    than the messages still expected (``meta``): creating a file is a metadata operation that
    may block for long (a round trip on NFS, an inode search on a busy ext4), and the event
    loop goes on reading meanwhile. Files left unused are removed at close().
    """

    def __init__(self, folder: MaildirFolder, meta: Mapping[MessageId, MessageInfo]) -> None:
        self.folder = folder
        self.meta = meta
        self.result = ReceiveResult()
        self.host = safe_hostname(socket.gethostname(), folder.infosep)
        self.pid = os.getpid()
        self.tmp = os.path.join(folder.path, "tmp")
        self.dirty: set[str] = set()
        self.open: set[_Writer] = set()
        self.pending: list[tuple[_Writer, MessageId, _FsyncGroup, int]] = []
        self.pending_ids: set[MessageId] = set()
        self.group: _FsyncGroup | None = None  # files waiting for their fsync job to start
        self.expected = len(meta)  # messages still to begin (fewer may come)
        self.spare: list[_Tmp] = []  # tmp/ files created ahead, the next one last
        self.ahead: Future[list[_Tmp]] | None = None  # the job creating more

    def base(self, when: int, seq: int, uid: int | None) -> str:
        return new_base(when, seq, self.pid, self.host, uid, self.folder.fmd5)

    async def begin(self) -> BodyWriter:
        self.expected -= 1
        if not self.spare and self.ahead is not None:
            job, self.ahead = self.ahead, None
            self.spare = (await job)[::-1]
        if self.spare:
            path, fd, when, seq = self.spare.pop()
        else:
            try:
                path, fd, when, seq = _create_tmp(self.tmp, self.base)
            except OSError as e:
                raise FolderError(
                    f"folder {self.folder.name!r}: cannot create a file in {self.tmp}: "
                    f"{e.strerror}",
                    hint="check that the folder still exists and the disk is writable",
                ) from e
        if self.ahead is None and len(self.spare) <= AHEAD // 2:
            n = min(AHEAD, self.expected - len(self.spare))
            if n > 0:
                import asyncio  # here, not at the top: listing a Maildir must not import it

                loop = asyncio.get_running_loop()
                self.ahead = loop.run_in_executor(None, _create_tmps, self.tmp, self.base, n)
        w = _Writer(self, path, fd, when, seq)
        self.open.add(w)
        return w

    async def _drop_spare(self) -> None:
        """Remove the tmp/ files created ahead and not used."""
        if self.ahead is not None:
            job, self.ahead = self.ahead, None
            self.spare += await job
        spare, self.spare = self.spare, []
        for path, fd, _, _ in spare:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)

    def sync_later(self, w: _Writer, source_id: MessageId, fd: int) -> None:
        """fsync (and close) ``fd`` in a worker thread, with the next files of its group."""
        g = self.group
        if g is None:
            g = self.group = _FsyncGroup()
        g.fds.append(fd)
        self.pending.append((w, source_id, g, len(g.fds) - 1))
        self.pending_ids.add(source_id)
        if len(g.fds) >= FSYNC_GROUP:
            self._start_group()

    def _start_group(self) -> None:
        import asyncio  # here, not at the top: listing a Maildir must not import it

        g, self.group = self.group, None
        if g is not None:
            g.job = asyncio.get_running_loop().run_in_executor(None, _fsync_all, g.fds)

    async def land_pending(self) -> None:
        """Wait for the fsyncs, then rename each message into place."""
        self._start_group()
        pending, self.pending = self.pending, []
        self.pending_ids.clear()
        for w, source_id, g, i in pending:
            assert g.job is not None
            err = (await g.job)[i]
            if err is not None:
                w.error = f"cannot fsync {w.tmp_path}: {err.strerror}"
            w.land(source_id)
        if self.folder.fsync:
            import asyncio  # here, not at the top: listing a Maildir must not import it

            for sub in sorted(self.dirty):
                await asyncio.to_thread(_fsync_dir, os.path.join(self.folder.path, sub))
        self.dirty.clear()

    async def close(self) -> ReceiveResult:
        await self._drop_spare()
        for w in list(self.open):  # begun and never finished: nothing to report, drop the file
            await w.abort()
        await self.land_pending()
        return self.result


class _FsyncGroup:
    """Files fsynced one after another by one worker-thread job, started once the group is
    full or the batch lands."""

    __slots__ = ("fds", "job")

    def __init__(self) -> None:
        self.fds: list[int] = []
        self.job: Future[list[OSError | None]] | None = None


class _Writer:
    """One message into its tmp/ file: converted to LF and keyed in one pass over each chunk,
    written with plain os.write (a buffered file object costs an allocation per message) once
    WRITE_BUFFER is reached and at finish(): one write for most messages."""

    def __init__(self, sink: _Sink, tmp_path: str, fd: int, when: int, seq: int) -> None:
        self.sink = sink
        self.tmp_path = tmp_path
        self.fd: int | None = fd  # None once closed, or handed to the fsync thread
        self.when = when
        self.seq = seq
        self.lf = CrlfToLf()
        self.key = KeyBuilder()
        self.out: list[bytes] = []  # converted, not written yet
        self.buffered = 0
        self.error: str | None = None  # a failed write, reported at finish as this message's

    async def write(self, chunk: bytes) -> None:
        if not self.key.header_done:
            self.key.see_header(chunk)
        out = self.lf.feed(chunk)  # counts the CRLF size as it goes
        if self.error is None and out:
            self.out.append(out)
            self.buffered += len(out)
            if self.buffered >= WRITE_BUFFER:
                self._write_out()

    def _write_out(self) -> None:
        out, self.out, self.buffered = self.out, [], 0
        if self.error is not None or self.fd is None:
            return
        try:
            _write_all(self.fd, b"".join(out))
        except OSError as e:
            self.error = f"cannot write {self.tmp_path}: {e.strerror}"

    async def finish(self, source_id: MessageId, internal_date: datetime | None) -> None:
        sink = self.sink
        sink.open.discard(self)
        if source_id in sink.result.delivered or source_id in sink.pending_ids:
            self._drop()
            raise InternalError(f"source message {source_id!r} delivered twice in one batch")
        self.out.append(self.lf.flush())
        self._write_out()
        if self.error is None and internal_date is not None and self.fd is not None:
            # the mtime is the message's internal date when it goes back to IMAP (Dovecot's too)
            with contextlib.suppress(OverflowError, ValueError):  # a date no file can have
                ts = internal_date.timestamp()
                try:
                    os.utime(self.fd, (ts, ts))
                except OSError as e:
                    self.error = f"cannot write {self.tmp_path}: {e.strerror}"
        if self.error is None and self.fd is not None and sink.folder.fsync:
            fd, self.fd = self.fd, None  # the fsync thread closes it
            sink.sync_later(self, source_id, fd)
            if len(sink.pending) >= MAX_PENDING:
                await sink.land_pending()
            return
        self.land(source_id)

    def _close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def land(self, source_id: MessageId) -> None:
        """Rename the written (and synced) tmp file into new/ or cur/, and record it."""
        sink = self.sink
        rel: str | None = None
        if self.error is None:
            try:
                self._close()
                to = self.target(source_id)
                os.rename(self.tmp_path, os.path.join(sink.folder.path, to))
                rel = to
            except OSError as e:
                self.error = f"cannot deliver {self.tmp_path}: {e.strerror}"
        if rel is None:
            self._drop()
            sink.result.failed[source_id] = self.error or "not delivered"
            return
        sub, _, fname = rel.partition("/")
        base = fname.partition(sink.folder.infosep)[0]
        # not added to the folder's id → path map: a sync never acts again on a message it
        # just delivered, and an initial sync's map would grow by one entry per message (a
        # later lookup rescans the folder)
        sink.dirty.add(sub)
        sink.result.delivered[source_id] = Delivered(base, self.key.key(self.lf.crlf_size))

    def target(self, source_id: MessageId) -> str:
        """Where the message goes: "cur/<name>" or "new/<name>"."""
        meta = self.sink.meta.get(source_id)
        letters = flags_to_letters(meta.flags if meta else NO_FLAGS)
        # as OfflineIMAP: seen messages go to cur/, others to new/, both with a ":2," suffix
        sub = "cur" if "S" in letters else "new"
        uid = source_id if type(source_id) is int and source_id > 0 else None
        name = self.sink.base(self.when, self.seq, uid)
        return f"{sub}/{name}{self.sink.folder.infosep}2,{letters}"

    def _drop(self) -> None:
        self.out, self.buffered = [], 0
        with contextlib.suppress(OSError):
            self._close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)

    async def abort(self) -> None:
        self.sink.open.discard(self)
        self._drop()


def _write_all(fd: int, data: bytes) -> None:
    """os.write until all of ``data`` is written (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

"""ImapStore: an IMAP account as a Store. Capabilities pick the strategies once, at connect.

Every command is batched by UID sets and pipelined; bodies stream from the socket to the sink
(fetch) and from memory or a spool file to the socket (receiver). Folder names stay in modified
UTF-7.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import IO

from mailtwin.content import HEADER_CAP, KeyBuilder, LfToCrlf, key_of, message_id
from mailtwin.errors import (
    ConnectionFailed,
    FolderError,
    InternalError,
    MessageError,
    ResponseFlood,
    cut,
)
from mailtwin.model import (
    ContentKey,
    Delivered,
    Flags,
    FolderInfo,
    FolderStamp,
    Frozen,
    MessageId,
    MessageInfo,
    Since,
    Snapshot,
    StoreCaps,
    _set,
)
from mailtwin.stores.base import BodySink, BodyWriter, FlagChange, ReceiveResult
from mailtwin.stores.imap import parse, wire
from mailtwin.stores.imap.changes import Changes
from mailtwin.stores.imap.changes import commands as changes_commands
from mailtwin.stores.imap.parse import SelectInfo
from mailtwin.stores.imap.probe import MAX_FOLDERS, STAMP_ARG, folder_name, stamp
from mailtwin.stores.imap.sasl import Secrets
from mailtwin.stores.imap.tls import TlsPolicy
from mailtwin.stores.imap.transport import Connection, Done
from mailtwin.stores.imap.wire import (
    Arg,
    BodyChunk,
    BodyEnd,
    BodyStart,
    Event,
    Literal,
    Untagged,
)
from mailtwin.stores.since import derive, usable

FETCH_BATCH = 200  # messages per UID FETCH command (all batches are pipelined)
MAX_UNREADABLE = 10  # messages a server may hang up on in one fetch before we give up
KEY_BATCH = 2000  # messages per UID FETCH of headers for content keys
SPOOL_MEMORY = 1024 * 1024  # an upload bigger than this spools to disk; smaller ones stay bytes
# uploads sent as one batch (one MULTIAPPEND). One batch is sent while the next is received, so
# a few MB each: the source server streams the next while the target stores this one
APPEND_BATCH_BYTES = 4 * 1024 * 1024
APPEND_BATCH_COUNT = 1000
# a flag IMAP can carry: an atom (printable ASCII but ( ) { % * " \ ]), perhaps after one
# backslash. Spelled as the characters allowed: the complement of a class reaching to U+10FFFF
# costs 2.5 ms to compile, on every run
_FLAG = re.compile(r"\\?[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+\Z")


class ImapSettings(Frozen):
    """One IMAP repository's connection settings (the password and secrets never in repr)."""

    __match_args__ = (
        "host",
        "port",
        "user",
        "password",
        "ssl",
        "starttls",
        "timeout",
        "readonly",
        "expunge",
        "maxconnections",
        "debug",
        "tls",
        "ignore_caps",
        "secrets",
        "mechanisms",
        "authzid",
    )
    __slots__ = __match_args__
    _hidden = frozenset({"password", "secrets"})
    host: str
    port: int | None  # None: 993 with ssl, else 143
    user: str
    password: str
    ssl: bool
    starttls: bool
    timeout: float | None
    readonly: bool
    expunge: bool
    maxconnections: int
    debug: Callable[[str], None] | None
    # trust, pins, client certificate, lowest TLS version
    tls: TlsPolicy
    ignore_caps: frozenset[str]  # act as if the server lacked these (tests, quirks)
    # where the password / OAuth2 token come from when they are asked for (at login); None:
    # ``password`` as given
    secrets: Secrets | None
    # the user's order (auth_mechanisms); the default is what the store did before the option,
    # the config passes OfflineIMAP's default list
    mechanisms: tuple[str, ...]
    authzid: str  # remote_identity: the SASL PLAIN authorization identity

    def __init__(
        self,
        host: str,
        port: int | None,
        user: str,
        password: str,
        ssl: bool,
        starttls: bool,
        timeout: float | None,
        readonly: bool,
        expunge: bool,
        maxconnections: int = 1,
        debug: Callable[[str], None] | None = None,
        tls: TlsPolicy | None = None,
        ignore_caps: frozenset[str] = frozenset(),
        secrets: Secrets | None = None,
        mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN"),
        authzid: str = "",
    ) -> None:
        _set(self, "host", host)
        _set(self, "port", port)
        _set(self, "user", user)
        _set(self, "password", password)
        _set(self, "ssl", ssl)
        _set(self, "starttls", starttls)
        _set(self, "timeout", timeout)
        _set(self, "readonly", readonly)
        _set(self, "expunge", expunge)
        _set(self, "maxconnections", maxconnections)
        _set(self, "debug", debug)
        _set(self, "tls", TlsPolicy() if tls is None else tls)
        _set(self, "ignore_caps", ignore_caps)
        _set(self, "secrets", secrets)
        _set(self, "mechanisms", mechanisms)
        _set(self, "authzid", authzid)

    @property
    def real_port(self) -> int:
        return self.port if self.port is not None else 993 if self.ssl else 143


class _Session:
    """One connection, its lock and what it has selected."""

    __slots__ = ("conn", "fresh", "info", "lock", "readonly", "selected")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()
        self.selected: str | None = None
        self.readonly = True
        self.info = SelectInfo()
        self.fresh = False  # selected and no snapshot taken since


class _Pool:
    """Up to ``size`` connections, opened on demand. A folder keeps to the connection that has
    it selected, even when that one is busy, and a connection whose folder is open elsewhere
    is taken only when no other will do: folders synced side by side each stay on their own
    connection instead of selecting one another's away (a SELECT of a big folder costs the
    server tens of milliseconds). When the server refuses an extra connection (a per-user
    limit, e.g. Dovecot's ``[LIMIT]``), the pool keeps to those it has: ``size`` shrinks."""

    def __init__(
        self,
        opener: Callable[[], Awaitable[Connection]],
        size: int,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self._open = opener
        self._size = max(1, size)
        self._say = say
        self._opening = 0
        self.sessions: list[_Session] = []
        self.dropped: list[_Session] = []  # broken, left to close with the store
        self.open: Counter[str] = Counter()  # folders open (ImapFolder) by name

    @property
    def size(self) -> int:
        return self._size

    async def first(self) -> _Session:
        self._drop_broken()
        if not self.sessions:
            self.sessions.append(_Session(await self._open()))
        return self.sessions[0]

    @asynccontextmanager
    async def lease(
        self, folder: str | None = None, session: _Session | None = None, context: str | None = None
    ) -> AsyncIterator[_Session]:
        """A session to use alone; ``context`` (e.g. "folder 'INBOX'") names in errors what the
        connection was used for. A given ``session`` that broke is replaced by another."""
        s = session if session is not None and not session.conn.broken else None
        s = s or await self._pick(folder)
        async with s.lock:
            s.conn.context = context
            try:
                yield s
            finally:
                s.conn.context = None

    def _drop_broken(self) -> None:
        """Forget connections that failed: the next lease opens a new one (and selects again)."""
        keep = [s for s in self.sessions if not s.conn.broken or s.lock.locked()]
        if len(keep) < len(self.sessions):
            self.dropped += [s for s in self.sessions if s not in keep]
            self.sessions = keep

    async def _pick(self, folder: str | None) -> _Session:
        self._drop_broken()
        idle = [s for s in self.sessions if not s.lock.locked()]
        for s in idle:
            if s.selected == folder:
                return s
        if folder is not None:
            for s in self.sessions:
                if s.selected == folder:
                    return s  # busy: wait for it rather than select the folder a second time
        for s in idle:
            if s.selected is None or not self.open[s.selected]:
                return s
        if len(self.sessions) + self._opening < self._size:
            self._opening += 1
            try:
                s = _Session(await self._open())
            except ConnectionFailed as e:
                if not self.sessions:
                    raise  # nothing to fall back on: the caller reports it
                # an extra connection is a luxury: go on with the ones that work
                self._size = max(1, len(self.sessions) + self._opening - 1)
                if self._say is not None:
                    self._say(f"extra connection refused ({e}); going on with {self._size}")
            else:
                self.sessions.append(s)
                return s
            finally:
                self._opening -= 1
        if idle:
            return idle[0]
        return await self.first()


class ImapStore:
    """An IMAP account (see ``ImapSettings``)."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self._pool = _Pool(self._connection, settings.maxconnections, self._say)
        self._caps = StoreCaps(flags=None, knows_new_ids=False)
        self.server_caps: frozenset[str] = frozenset()
        self._listed: dict[str, FolderStamp | None] = {}  # stamps the listing's LIST-STATUS gave
        self._qresync: weakref.WeakSet[Connection] = weakref.WeakSet()  # ENABLEd on these

    @property
    def caps(self) -> StoreCaps:
        return self._caps

    @property
    def capacity(self) -> int | None:
        """How many connections this store may use: fewer than ``maxconnections`` once the
        server refused one."""
        return self._pool.size

    def _say(self, line: str) -> None:
        if self.settings.debug is not None:
            self.settings.debug(line)

    async def _connection(self) -> Connection:
        st = self.settings
        conn = Connection(
            st.host,
            st.real_port,
            tls=st.ssl,
            starttls=st.starttls,
            timeout=st.timeout,
            tls_policy=st.tls,
            debug=st.debug,
            ignore_caps=st.ignore_caps,
        )
        ok = False
        try:
            await conn.open()
            secrets = st.secrets if st.secrets is not None else st.password
            await conn.login(st.user, secrets, st.mechanisms, st.authzid)
            await self._enable(conn)
            ok = True
        finally:
            if not ok:
                await conn.close()
        return conn

    async def _enable(self, conn: Connection) -> None:
        """ENABLE QRESYNC where offered (once per connection, after login): a snapshot since a
        sync point then learns the expunged UIDs with the changes (see changes.py)."""
        if not {"QRESYNC", "ENABLE"} <= conn.caps:
            return
        enabled = False

        async def on(ev: Event) -> None:
            nonlocal enabled
            if isinstance(ev, Untagged) and ev.head() == (None, b"ENABLED"):
                enabled = enabled or b"QRESYNC" in ev.parts[0].upper().split()[2:]

        done = await conn.run([b"ENABLE", b"QRESYNC"], on)
        if done.ok and enabled:
            self._qresync.add(conn)

    def qresync(self, conn: Connection) -> bool:
        """Whether QRESYNC is enabled on ``conn``."""
        return conn in self._qresync

    async def connect(self) -> None:
        caps = (await self._pool.first()).conn.caps
        self.server_caps = caps
        self._caps = StoreCaps(
            flags=None,
            knows_new_ids="UIDPLUS" in caps,
        )

    async def close(self) -> None:
        sessions, self._pool.sessions = self._pool.sessions, []
        sessions += self._pool.dropped
        self._pool.dropped = []
        await asyncio.gather(*(s.conn.logout() for s in sessions))

    async def list_folders(self) -> list[FolderInfo]:
        """LIST; with LIST-STATUS and CONDSTORE the same command brings every folder's stamp
        (RFC 5819), so an unchanged account costs this one round trip."""
        entries: list[parse.ListEntry] = []
        listed: dict[str, FolderStamp | None] = {}

        async def on(ev: Event) -> None:
            if not isinstance(ev, Untagged):
                return
            word = ev.parts[0][2:9].upper()
            if word.startswith(b"LIST "):
                if len(entries) >= MAX_FOLDERS:
                    raise ResponseFlood(f"the server lists more than {MAX_FOLDERS:,} folders")
                entries.append(parse.list_entry(ev))
            elif word == b"STATUS ":
                name, items = parse.status_items(ev)
                listed[folder_name(name)] = stamp(items)
                if len(listed) > MAX_FOLDERS:
                    raise ResponseFlood(f"the server lists more than {MAX_FOLDERS:,} folders")

        async with self._pool.lease() as s:
            cmd: list[Arg] = [b"LIST", b'""', b"*"]
            if {"LIST-STATUS", "CONDSTORE"} <= s.conn.caps:
                done = await s.conn.run([*cmd, b"RETURN", b"(STATUS " + STAMP_ARG + b")"], on)
                if not done.ok:  # a server that offers it but fails at it: list plainly
                    entries.clear()
                    listed.clear()
                    done = await s.conn.run(cmd, on)
            else:
                done = await s.conn.run(cmd, on)
        if not done.ok:
            raise FolderError(f"{s.conn.where}: cannot list folders: {cut(done.text)}")
        self._listed = listed
        out = []
        for e in entries:
            selectable = not e.attributes & {"\\noselect", "\\nonexistent"}
            out.append(FolderInfo(folder_name(e.name), e.sep, selectable))
        return out

    async def stamps(self, names: Sequence[str]) -> dict[str, FolderStamp | None]:
        """From the last listing where it had them (taken earlier is as safe: the stamp only
        has to predate the snapshot), else one pipelined STATUS per folder."""
        if "CONDSTORE" not in self.server_caps:
            return dict.fromkeys(names)  # no HIGHESTMODSEQ: a flag change would not show
        out = {n: self._listed[n] for n in names if n in self._listed}
        rest = [n for n in names if n not in out]
        if not rest:
            return out
        found: dict[str, FolderStamp | None] = {}

        async def on(ev: Event) -> None:
            if isinstance(ev, Untagged) and ev.parts[0][2:9].upper() == b"STATUS ":
                name, items = parse.status_items(ev)
                found[folder_name(name)] = stamp(items)

        async with self._pool.lease() as s:
            # a folder whose STATUS fails keeps no stamp, and is synced in full
            await s.conn.run_all([[b"STATUS", wire.astring(n), STAMP_ARG] for n in rest], on)
        for n in rest:
            out[n] = found.get(n)
        return out

    def check_new_folder(self, name: str) -> None:
        return None  # the server decides, when asked

    async def create_folder(self, name: str) -> None:
        self._writable(name)
        async with self._pool.lease() as s:
            done = await s.conn.run([b"CREATE", wire.astring(name)])
        if done.ok:
            return
        code = parse.response_code(done.text)
        if (code and code[0] == b"ALREADYEXISTS") or b"exist" in done.text.lower():
            return
        raise FolderError(f"cannot create folder {parse.human_name(name)!r}: {cut(done.text)}")

    async def open_folder(self, name: str, readonly: bool) -> ImapFolder:
        readonly = readonly or self.settings.readonly
        async with self._pool.lease(name, context=_context(name)) as s:
            info = await self._select(s, name, readonly)
        self._pool.open[name] += 1
        return ImapFolder(self, name, readonly, info)

    async def watch(self, name: str, seconds: float, stop: asyncio.Event | None = None) -> bool:
        """Wait up to ``seconds`` (or until ``stop`` is set) for a change in folder ``name``
        (IDLE, on a connection that keeps it open read-only between calls): True when the
        server reported one. A server without IDLE is only waited out (False)."""
        async with self._pool.lease(name, context=_context(name)) as s:
            if "IDLE" not in s.conn.caps:
                if stop is None:
                    await asyncio.sleep(seconds)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), seconds)
                return False
            if s.selected != name:
                await self._select(s, name, readonly=True)
            return await s.conn.idle(seconds, stop)

    async def _select(self, s: _Session, name: str, readonly: bool) -> SelectInfo:
        info = SelectInfo()

        async def on(ev: Event) -> None:
            if isinstance(ev, Untagged):
                info.update(ev)

        cmd: list[Arg] = [b"EXAMINE" if readonly else b"SELECT", wire.astring(name)]
        if "CONDSTORE" in s.conn.caps:
            cmd.append(b"(CONDSTORE)")
        s.selected = None  # a failed SELECT leaves nothing selected
        done = await s.conn.run(cmd, on)
        if not done.ok:
            raise FolderError(f"cannot open folder {parse.human_name(name)!r}: {cut(done.text)}")
        info.code(done.text)
        if info.uidvalidity is None:
            raise FolderError(f"folder {parse.human_name(name)!r}: server sent no UIDVALIDITY")
        s.selected, s.readonly, s.info = name, readonly or info.readonly, info
        s.fresh = True
        return info

    def _writable(self, what: str) -> None:
        if self.settings.readonly:
            raise InternalError(f"write to {parse.human_name(what)!r} on a read-only IMAP store")


class _Progress:
    """How far a FETCH got before the connection went: the uids whose data came whole, the
    last one answered without it, and the server's BYE (if it said one)."""

    __slots__ = ("bare", "bye", "done")

    def __init__(self) -> None:
        self.done: set[int] = set()
        self.bare: int | None = None
        self.bye: bytes | None = None


class ImapFolder:
    """One folder of an ImapStore. Each operation leases a connection and selects the folder
    on it again if another folder was selected meanwhile."""

    def __init__(self, store: ImapStore, name: str, readonly: bool, info: SelectInfo) -> None:
        self._store = store
        self._name = name
        self._human = parse.human_name(name)
        self._context = _context(name)
        self.readonly = readonly
        self.info = info
        self._closed = False
        # keywords this server refused to store in this folder during this sync (the engine
        # remembers them, and leaves them alone from then on)
        self.unkept: set[str] = set()

    @property
    def name(self) -> str:
        return self._name

    @property
    def caps(self) -> StoreCaps:
        return self._store.caps

    def _lease(self, session: _Session | None) -> AbstractAsyncContextManager[_Session]:
        """A connection, whatever it has selected (APPEND and STATUS need none); this folder's
        own by preference, so that the free ones stay free for the folders that open next."""
        return self._store._pool.lease(self._name, session, self._context)

    @asynccontextmanager
    async def _use(
        self, session: _Session | None = None, fresh: bool = False
    ) -> AsyncIterator[_Session]:
        """A connection with this folder selected. UIDs are those of the last snapshot: if
        UIDVALIDITY changed since, only ``fresh`` use (a new snapshot) goes on."""
        async with self._store._pool.lease(self._name, session, self._context) as s:
            stale = s.selected != self._name or (s.readonly and not self.readonly)
            if stale or (fresh and not s.fresh):
                info = await self._store._select(s, self._name, self.readonly)
                if fresh:
                    self.info = info
                elif info.uidvalidity != self.info.uidvalidity:
                    raise FolderError(f"folder {self._human!r}: UIDVALIDITY changed while open")
            yield s

    def _fail(self, what: str, done: Done) -> FolderError:
        return FolderError(f"folder {self._human!r}: {what} failed: {cut(done.text)}")

    def _writable(self) -> None:
        self._store._writable(self._name)
        if self.readonly:
            raise InternalError(f"write to folder {self._human!r} opened read-only")

    async def snapshot(self, since: Since | None = None) -> Snapshot:
        """Every message's UID and flags; with ``since`` and CONDSTORE, only those changed or
        added after it, and the UIDs expunged since (changes.py, stores/since.py)."""
        messages: dict[MessageId, MessageInfo] = {}
        changes = Changes()

        async def on(ev: Event) -> None:
            if isinstance(ev, Untagged):
                item = parse.fetch_item(ev)
                if item is not None and item.uid is not None and item.flags is not None:
                    messages[item.uid] = MessageInfo(item.uid, item.flags)

        async def on_changes(ev: Event) -> None:
            if not isinstance(ev, Untagged) or not changes.take(ev):
                await on(ev)

        async with self._use(fresh=True) as s:  # UIDNEXT and HIGHESTMODSEQ as of now
            s.fresh = False
            info = s.info
            assert info.uidvalidity is not None
            derived = (
                since is not None
                and "CONDSTORE" in s.conn.caps
                and usable(since, info.uidvalidity, info.uidnext, info.highestmodseq)
            )
            if derived and not s.conn.exists:
                changes.present = []  # empty: every known message is gone
            elif derived:
                assert since is not None
                cmds = changes_commands(
                    since.modseq, self._store.qresync(s.conn), "ESEARCH" in s.conn.caps
                )
                dones = await s.conn.run_all(cmds, on_changes)
                # a server that takes the commands but fails them, or answers what we cannot
                # read: list in full, as without CONDSTORE
                derived = all(d.ok for d in dones) and not changes.doubt
                if not derived:
                    self._store._say(
                        f"folder {self._human!r}: the server did not list the changes; "
                        "listing every message"
                    )
                    messages.clear()
            if not derived and s.conn.exists:
                done = await s.conn.run([b"UID", b"FETCH", b"1:*", b"(UID FLAGS)"], on)
                if not done.ok:
                    raise self._fail("listing messages", done)
        if derived:
            assert since is not None and info.uidnext is not None
            known = [m for m in since.known if isinstance(m, int)]
            gone = changes.gone(known)
            return derive(since, info.uidvalidity, info.uidnext, info.highestmodseq, gone, messages)
        top = max((int(u) for u in messages), default=0) + 1
        return Snapshot(info.uidvalidity, max(info.uidnext or 1, top), messages, info.highestmodseq)

    async def _skipping(
        self, ids: Sequence[MessageId], attempt: Callable[[list[int], _Progress], Awaitable[None]]
    ) -> dict[int, str]:
        """Run ``attempt`` (a FETCH that reads messages) over ``ids``. A server that cannot read
        one message may answer its FETCH without the data asked for and hang up (Dovecot's
        default, "BYE FETCH failed"): then that message is left out, and the rest fetched on a
        new connection. Returns the messages left out so, with the server's reason."""
        todo = sorted(set(_uids(ids)))
        left_out: dict[int, str] = {}
        while todo:
            progress = _Progress()
            try:
                await attempt(todo, progress)
                break
            except ConnectionFailed:
                bad = progress.bare
                if bad is None or progress.bye is None or len(left_out) >= MAX_UNREADABLE:
                    raise  # a plain network fault, or a server that fails on everything
                left_out[bad] = cut(progress.bye)
                todo = [u for u in todo if u not in progress.done and u not in left_out]
                self._store._say(
                    f"folder {self._human!r}: the server hung up on UID {bad}; going on without it"
                )
        return left_out

    async def fetch(self, ids: Sequence[MessageId], sink: BodySink) -> None:
        """Stream the bodies of ``ids`` into ``sink``. A message the server cannot send (see
        ``_skipping``), or the sink refuses, is skipped: MessageError once the rest is done."""
        refused: list[MessageError] = []  # the sink's
        left_out = await self._skipping(
            ids, lambda todo, progress: self._fetch_bodies(todo, sink, progress, refused)
        )
        if left_out:
            uids = ", ".join(str(u) for u in sorted(left_out))
            raise MessageError(
                f"the server could not send message UID {uids} and closed the connection "
                f"({next(iter(left_out.values()))}); skipped it",
                hint="the server's log tells why it cannot read the message",
            )
        if refused:
            raise refused[0]

    async def _fetch_bodies(
        self,
        uids: list[int],
        sink: BodySink,
        progress: _Progress,
        refused: list[MessageError],
    ) -> None:
        sets = wire.uid_sets(uids, max_count=FETCH_BATCH)
        if not sets:
            return
        writer: BodyWriter | None = None  # the message being fetched
        seq = -1  # its sequence number
        into: BodyWriter | None = None  # where chunks go: the writer, inside its BODY[] only

        async def on(ev: Event) -> None:
            # runs once per body chunk: one coroutine, the common events first
            nonlocal writer, seq, into
            try:
                if isinstance(ev, BodyChunk):
                    if into is not None:
                        await into.write(ev.data)
                elif isinstance(ev, BodyStart):
                    progress.bare = None
                    if ev.section.upper() == b"BODY[]":
                        if writer is not None:  # a second BODY[] in one response: keep the last
                            w, writer, into = writer, None, None
                            await w.abort()
                        writer = into = await sink.begin()
                        seq = ev.seq
                elif isinstance(ev, BodyEnd):
                    into = None
                elif isinstance(ev, Untagged):
                    item = parse.fetch_item(ev)
                    if item is None or item.uid is None:
                        return
                    progress.bare = None
                    if writer is not None and item.seq == seq:
                        w, writer = writer, None
                        progress.done.add(item.uid)
                        await w.finish(item.uid, item.internal_date)
                    elif item.body is not None:  # sent as a quoted string, not a literal
                        progress.done.add(item.uid)
                        w = await sink.begin()
                        await w.write(item.body)
                        await w.finish(item.uid, item.internal_date)
                    elif item.flags is None:  # not a flag update: our FETCH, without the body
                        progress.bare = item.uid
            except MessageError as e:
                # the sink refusing one message skips that one; any other error stops the fetch
                dropped, writer, into = writer, None, None
                refused.append(e)
                if dropped is not None:
                    await dropped.abort()

        cmds = [[b"UID", b"FETCH", s, b"(UID INTERNALDATE BODY.PEEK[])"] for s in sets]
        try:
            async with self._use() as s:
                try:
                    dones = await s.conn.run_all(cmds, on)
                finally:
                    progress.bye = s.conn.bye
        finally:
            if writer is not None:  # cut off mid-body: the sink drops what it got
                await writer.abort()
        for done in dones:
            if not done.ok and b"EXPUNGEISSUED" not in done.text.upper():
                raise self._fail("fetching messages", done)

    async def keys(self, ids: Sequence[MessageId]) -> dict[MessageId, ContentKey]:
        """Message-ID and RFC822.SIZE (the server counts CRLF line ends, as content keys do);
        for a message without a Message-ID, a second fetch of its whole header to hash."""
        out: dict[MessageId, ContentKey] = {}
        headerless: dict[int, int] = {}  # uid → size
        # a message the server cannot read is left out, as one not there: it stays unmatched
        # and its copy reports it
        mid = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
        await self._skipping(
            ids, lambda todo, pr: self._fetch_headers(todo, mid, out, headerless, pr)
        )
        if headerless:
            await self._skipping(
                list(headerless),
                lambda todo, pr: self._fetch_headers(todo, b"BODY.PEEK[HEADER]", out, None, pr),
            )
        return out

    async def _fetch_headers(
        self,
        uids: list[int],
        section: bytes,
        out: dict[MessageId, ContentKey],
        headerless: dict[int, int] | None,
        progress: _Progress,
    ) -> None:
        sets = wire.uid_sets(uids, max_count=KEY_BATCH)
        if not sets:
            return
        buf = bytearray()
        seq = -1
        inside = False

        async def on(ev: Event) -> None:
            nonlocal seq, inside
            if isinstance(ev, BodyStart):
                buf.clear()
                seq, inside = ev.seq, True
                progress.bare = None
            elif isinstance(ev, BodyChunk):
                if inside and len(buf) < HEADER_CAP:
                    buf.extend(ev.data)
            elif isinstance(ev, BodyEnd):
                inside = False
            elif isinstance(ev, Untagged):
                item = parse.fetch_item(ev)
                if item is None or item.uid is None:
                    return
                progress.bare = None
                if item.seq == seq:
                    header = bytes(buf)
                elif item.body is not None:
                    header = item.body
                else:
                    if item.flags is None:  # not a flag update: our FETCH, without its data
                        progress.bare = item.uid
                    return
                if item.size is None:
                    return
                buf.clear()
                seq = -1
                progress.done.add(item.uid)
                if headerless is not None and message_id(header) is None:
                    headerless[item.uid] = item.size
                else:
                    out[item.uid] = key_of(header, item.size)

        cmds = [[b"UID", b"FETCH", s, b"(UID RFC822.SIZE " + section + b")"] for s in sets]
        async with self._use() as s:
            try:
                dones = await s.conn.run_all(cmds, on)
            finally:
                progress.bye = s.conn.bye
        for done in dones:
            if not done.ok and b"EXPUNGEISSUED" not in done.text.upper():
                raise self._fail("reading message headers", done)

    def receiver(self, meta: Mapping[MessageId, MessageInfo]) -> BodySink:
        self._writable()
        return _Receiver(self, meta)

    async def store_flags(self, changes: Sequence[FlagChange]) -> None:
        self._writable()
        adds: dict[Flags, list[int]] = {}
        removes: dict[Flags, list[int]] = {}
        for ch in changes:
            uid = _uid(ch.id)
            add, remove = self._atoms(ch.add), self._atoms(ch.remove)
            if add:
                adds.setdefault(add, []).append(uid)
            if remove:
                removes.setdefault(remove, []).append(uid)
        todo = [
            (op, flags, uids)
            for op, groups in ((b"+FLAGS.SILENT", adds), (b"-FLAGS.SILENT", removes))
            for flags, group in groups.items()
            for uids in wire.uid_sets(group)
        ]
        if not todo:
            return
        cmds: list[Sequence[Arg]] = [
            [b"UID", b"STORE", uids, op, _flag_list(flags)] for op, flags, uids in todo
        ]
        async with self._use() as s:
            dones = await s.conn.run_all(cmds)
        refused = []
        for (op, flags, uids), done in zip(todo, dones, strict=True):
            if done.ok:
                continue
            if op == b"+FLAGS.SILENT" and _keywords(flags):
                refused.append((flags, uids))  # perhaps a keyword the server cannot keep
            else:
                raise self._fail("changing flags", done)
        if refused:
            await self._store_apart(refused)

    async def _store_apart(self, refused: list[tuple[Flags, bytes]]) -> None:
        """Flags whose STORE was refused, again one keyword per command: the system flags
        must land; a keyword the server refuses is noted in ``unkept``."""
        cmds: list[Sequence[Arg]] = []
        what: list[str | None] = []
        for flags, uids in refused:
            system = flags - _keywords(flags)
            if system:
                cmds.append([b"UID", b"STORE", uids, b"+FLAGS.SILENT", _flag_list(system)])
                what.append(None)
            for kw in sorted(_keywords(flags)):
                one = frozenset({kw})
                cmds.append([b"UID", b"STORE", uids, b"+FLAGS.SILENT", _flag_list(one)])
                what.append(kw)
        async with self._use() as s:
            dones = await s.conn.run_all(cmds)
        for word, done in zip(what, dones, strict=True):
            if done.ok:
                continue
            if word is None:
                raise self._fail("changing flags", done)
            self.unkept.add(word)

    async def delete(self, ids: Sequence[MessageId]) -> None:
        self._writable()
        sets = wire.uid_sets(_uids(ids))
        if not sets:
            return
        cmds = [[b"UID", b"STORE", s, b"+FLAGS.SILENT", b"(\\Deleted)"] for s in sets]
        if not self._store.settings.expunge:
            await self._run_all(cmds, "deleting messages")
        elif "UIDPLUS" in self._store.server_caps:
            cmds += [[b"UID", b"EXPUNGE", s] for s in sets]
            await self._run_all(cmds, "deleting messages")
        else:
            await self._expunge_if_only(cmds, set(_uids(ids)))

    async def _expunge_if_only(self, cmds: Sequence[Sequence[Arg]], ours: set[int]) -> None:
        """Without UID EXPUNGE: a bare EXPUNGE, only when no one else's message is \\Deleted."""
        found: list[int] = []

        async def on(ev: Event) -> None:
            if isinstance(ev, Untagged) and ev.parts[0][2:8].upper() == b"SEARCH":
                found.extend(parse.search_ids(ev))

        async with self._use() as s:
            dones = await s.conn.run_all([*cmds, [b"UID", b"SEARCH", b"DELETED"]], on)
            for done in dones:
                if not done.ok:
                    raise self._fail("deleting messages", done)
            if set(found) <= ours:
                done = await s.conn.run([b"EXPUNGE"])
                if not done.ok:
                    raise self._fail("expunging", done)
                return
        self._store._say(
            f"warning: folder {self._human!r} holds other messages marked \\Deleted; "
            "not expunging (the server lacks UID EXPUNGE)"
        )

    async def _run_all(self, cmds: Sequence[Sequence[Arg]], what: str) -> None:
        if not cmds:
            return
        async with self._use() as s:
            dones = await s.conn.run_all(cmds)
        for done in dones:
            if not done.ok:
                raise self._fail(what, done)

    def _atoms(self, flags: Flags) -> Flags:
        """Flags fit for a command: \\Recent (server-set) and malformed names dropped."""
        out = frozenset(f for f in flags if f != "\\Recent" and _FLAG.match(f))
        for bad in flags - out - {"\\Recent"}:
            self._store._say(f"warning: folder {self._human!r}: flag {bad!r} cannot be stored")
        return out

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store._pool.open[self._name] -= 1


def _context(name: str) -> str:
    """What a connection is used for, for error messages."""
    return f"folder {parse.human_name(name)!r}"


def _uid(i: MessageId) -> int:
    if isinstance(i, int) and i > 0:
        return i
    raise InternalError(f"not an IMAP UID: {i!r}")


def _uids(ids: Sequence[MessageId]) -> list[int]:
    return [_uid(i) for i in ids]


def _keywords(flags: Flags) -> Flags:
    """The keywords among ``flags`` (system flags start with a backslash)."""
    return frozenset(f for f in flags if not f.startswith("\\"))


def _flag_list(flags: Flags) -> bytes:
    return b"(" + " ".join(sorted(flags)).encode("utf-8", "surrogateescape") + b")"


# ---- uploads ----------------------------------------------------------------------------------


class _Message:
    """A received message waiting in a batch: its bytes or spool file (CRLF line ends) and
    what to send."""

    __slots__ = ("date", "flags", "kept", "key", "message_id", "size", "source_id", "spool")

    def __init__(
        self,
        source_id: MessageId,
        spool: bytes | IO[bytes],
        size: int,
        key: str,
        message_id: str | None,
        flags: bytes,
        date: bytes | None,
        kept: Flags,  # what ``flags`` holds
    ) -> None:
        self.source_id = source_id
        self.spool = spool
        self.size = size
        self.key = key
        self.message_id = message_id
        self.flags = flags
        self.date = date
        self.kept = kept

    @property
    def keywords(self) -> Flags:
        return _keywords(self.kept)

    def args(self, flags: bytes | None = None) -> list[Arg]:
        if not isinstance(self.spool, bytes):
            self.spool.seek(0)
        lit = Literal(self.spool, self.size)
        fl = self.flags if flags is None else flags
        return [fl, self.date, lit] if self.date else [fl, lit]


class _Upload:
    """One message being received: converted to CRLF line ends (CRLF input, from IMAP, passes
    as it is) and kept as bytes, or spooled to disk past SPOOL_MEMORY; keyed on its header, its
    size being the CRLF size."""

    __slots__ = ("_chunks", "_crlf", "_key", "_receiver", "_size", "_spool")

    def __init__(self, receiver: _Receiver) -> None:
        self._receiver = receiver
        self._chunks: list[bytes] = []
        self._size = 0
        self._spool: IO[bytes] | None = None  # closed by the receiver once sent, or by abort()
        self._crlf = LfToCrlf()
        self._key = KeyBuilder()

    async def write(self, chunk: bytes) -> None:
        if not self._key.header_done:
            self._key.see_header(chunk)
        out = self._crlf.feed(chunk)
        self._size += len(out)
        if self._spool is not None:
            self._spool.write(out)
            return
        self._chunks.append(out)
        if self._size > SPOOL_MEMORY:
            import tempfile  # only for a message too big to hold in memory

            self._spool = tempfile.TemporaryFile()  # noqa: SIM115
            self._spool.writelines(self._chunks)
            self._chunks = []

    async def finish(self, source_id: MessageId, internal_date: datetime | None) -> None:
        # one chunk (the usual message) is sent as it came, without a copy
        body = self._spool if self._spool is not None else b"".join(self._chunks)
        self._chunks = []
        key = self._key.key(self._size)
        await self._receiver._add(body, self._size, source_id, internal_date, key)

    async def abort(self) -> None:
        self._chunks = []
        if self._spool is not None:
            self._spool.close()


class _Receiver:
    """APPENDs received messages to a folder in batches of a few MB: one MULTIAPPEND command
    per batch where offered (one server transaction: several times faster on Dovecot), else
    pipelined APPENDs; literals non-synchronizing with LITERAL+. A refused MULTIAPPEND is sent
    again message by message, so only the bad ones fail. New UIDs come from APPENDUID; without
    UIDPLUS, from searching Message-IDs above the UIDNEXT seen before.

    A full batch is sent by a task of its own while the next one is received (at most one in
    flight: memory stays at two batches); close() waits for it, so every message reported
    delivered was acknowledged by the server."""

    def __init__(self, folder: ImapFolder, meta: Mapping[MessageId, MessageInfo]) -> None:
        self._folder = folder
        self._meta = meta
        self._session: _Session | None = None
        self._batch: list[_Message] = []
        self._batch_bytes = 0
        self._sending: asyncio.Task[None] | None = None  # the batch in flight
        self._uidnext: int | None = None
        self._unknown: list[_Message] = []  # delivered, UID not known, has a Message-ID
        self.result = ReceiveResult()
        info = folder.info
        self._allowed = info.flags if info.permanentflags is None else info.permanentflags
        self._flag_lists: dict[Flags, tuple[bytes, Flags]] = {}

    async def begin(self) -> BodyWriter:
        return _Upload(self)

    def _flags(self, source_id: MessageId) -> tuple[bytes, Flags]:
        """The APPEND flag list for a message, and the flags in it."""
        info = self._meta.get(source_id)
        flags = info.flags if info else frozenset()
        # a folder's thousands of messages share a handful of flag sets: each is worked out once
        out = self._flag_lists.get(flags)
        if out is None:
            atoms = self._folder._atoms(flags)
            anykw = "\\*" in self._allowed
            kept = frozenset(f for f in atoms if f.startswith("\\") or anykw or f in self._allowed)
            out = self._flag_lists[flags] = (_flag_list(kept), kept)
        return out

    async def _add(
        self,
        spool: bytes | IO[bytes],
        size: int,
        source_id: MessageId,
        date: datetime | None,
        key: str,
    ) -> None:
        mid = None if key.startswith("#") else key.rsplit(" ", 1)[0]
        when = parse.internaldate(date) if date is not None else None
        flags, kept = self._flags(source_id)
        self._batch.append(_Message(source_id, spool, size, key, mid, flags, when, kept))
        self._batch_bytes += size
        if self._batch_bytes >= APPEND_BATCH_BYTES or len(self._batch) >= APPEND_BATCH_COUNT:
            await self._sent()
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self._sending = asyncio.create_task(self._send(batch))

    async def _sent(self) -> None:
        """Wait for the batch in flight (its failure is raised here)."""
        task, self._sending = self._sending, None
        if task is not None:
            await task

    async def _flush(self) -> None:
        """Send what is left, once the batch in flight is done."""
        await self._sent()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        await self._send(batch)

    async def _send(self, batch: list[_Message]) -> None:
        if not batch:
            return
        caps = self._folder._store.server_caps
        name = wire.astring(self._folder.name)
        try:
            if "UIDPLUS" not in caps and self._uidnext is None:
                self._uidnext = await self._status_uidnext()
            if "MULTIAPPEND" in caps and len(batch) > 1:
                cmd: list[Arg] = [b"APPEND", name]
                for m in batch:
                    cmd += m.args()
                (done,) = await self._run_all([cmd])
                if done.ok:
                    self._record(batch, done)
                    return
            dones = await self._run_all([[b"APPEND", name, *m.args()] for m in batch])
            retry = []
            for m, done in zip(batch, dones, strict=True):
                if not done.ok and m.keywords:
                    retry.append(m)  # perhaps a keyword the server cannot keep
                else:
                    self._record([m], done)
            if retry:
                await self._append_apart(retry)
        finally:
            for m in batch:
                if not isinstance(m.spool, bytes):
                    m.spool.close()

    async def _append_apart(self, msgs: list[_Message]) -> None:
        """Messages whose APPEND was refused, again without keywords; then each keyword set
        on the new message alone, so only the ones the server refuses stay behind (noted in
        the folder's ``unkept``; without a new UID all of the message's are)."""
        name = wire.astring(self._folder.name)
        plain: list[list[Arg]] = []
        for m in msgs:
            system = _flag_list(m.kept - m.keywords)
            plain.append([b"APPEND", name, *m.args(system)])
        dones = await self._run_all(plain)
        tries: list[list[Arg]] = []
        what: list[str] = []
        for m, done in zip(msgs, dones, strict=True):
            self._record([m], done)
            if not done.ok:
                continue
            got = self.result.delivered[m.source_id].id
            if not isinstance(got, int):
                self._folder.unkept.update(m.keywords)
                continue
            for kw in sorted(m.keywords):
                flag = _flag_list(frozenset({kw}))
                tries.append([b"UID", b"STORE", b"%d" % got, b"+FLAGS.SILENT", flag])
                what.append(kw)
        if not tries:
            return
        async with self._folder._use(self._session) as s:
            self._session = s
            done_tries = await s.conn.run_all(tries)
        for kw, done in zip(what, done_tries, strict=True):
            if not done.ok:
                self._folder.unkept.add(kw)

    async def _run_all(self, cmds: list[list[Arg]]) -> list[Done]:
        async with self._folder._lease(self._session) as s:
            self._session = s
            return await s.conn.run_all(cmds)

    def _record(self, msgs: list[_Message], done: Done) -> None:
        if not done.ok:
            for m in msgs:
                self.result.failed[m.source_id] = f"server refused the message: {cut(done.text)}"
            return
        uids: list[int] | None = None
        if "UIDPLUS" in self._folder._store.server_caps:
            au = parse.appenduid(done.text)
            if au is not None and au[0] == self._folder.info.uidvalidity:
                uids = au[1] if len(au[1]) == len(msgs) else None
        for i, m in enumerate(msgs):
            self.result.delivered[m.source_id] = Delivered(uids[i] if uids else None, m.key)
            if uids is None and m.message_id and m.message_id.isascii():
                self._unknown.append(m)

    async def _status_uidnext(self) -> int | None:
        found: list[int] = []

        async def on(ev: Event) -> None:
            if isinstance(ev, Untagged) and ev.parts[0][2:9].upper() == b"STATUS ":
                found.append(parse.status_items(ev)[1].get("UIDNEXT", 0))

        cmd: list[Arg] = [b"STATUS", wire.astring(self._folder.name), b"(UIDNEXT)"]
        async with self._folder._lease(self._session) as s:
            self._session = s
            done = await s.conn.run(cmd, on)
        if done.ok and found and found[0] > 0:
            return found[0]
        return self._folder.info.uidnext

    async def close(self) -> ReceiveResult:
        try:
            await self._flush()
        finally:  # not sent (the batch before failed): closed, never reported as delivered
            for m in self._batch:
                if not isinstance(m.spool, bytes):
                    m.spool.close()
            self._batch = []
        if self._unknown and self._uidnext is not None:
            await self._find_unknown(self._uidnext)
        return self.result

    async def _find_unknown(self, uidnext: int) -> None:
        """Find new UIDs by Message-ID (one pipelined SEARCH each); ambiguous ones stay None."""
        results: list[list[int]] = []

        async def on(ev: Event) -> None:
            if isinstance(ev, Untagged) and ev.parts[0][2:8].upper() == b"SEARCH":
                results.append([u for u in parse.search_ids(ev) if u >= uidnext])

        unknown = self._unknown
        cmds = [
            [b"UID", b"SEARCH", b"UID", b"%d:*" % uidnext, b"HEADER", b"Message-ID", wire.string(m)]
            for m in (x.message_id for x in unknown)
            if m is not None
        ]
        try:
            async with self._folder._use(self._session) as s:
                dones = await s.conn.run_all(cmds, on)
        except FolderError:
            return
        if len(results) != len(cmds) or not all(d.ok for d in dones):
            return  # cannot tell which answer is whose
        counts: dict[str | None, int] = {}
        for x in unknown:
            counts[x.message_id] = counts.get(x.message_id, 0) + 1
        for x, uids in zip(unknown, results, strict=True):
            if len(uids) == 1 and counts[x.message_id] == 1:
                self.result.delivered[x.source_id] = Delivered(uids[0], x.key)

"""One account: lock, status, both stores, folder pairs; each folder pair synced in turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

from mailtwin.config.model import AccountConfig, GeneralConfig, RepositoryConfig
from mailtwin.errors import ConnectionFailed, FolderError, SafetyStop, cut
from mailtwin.model import SIDE_NAME, FolderStamp, Side, Snapshot
from mailtwin.state.lock import AccountLock
from mailtwin.state.status import FolderState, StatusDB
from mailtwin.stores.base import Folder, Store
from mailtwin.stores.imap.probe import STAMP_ITEMS
from mailtwin.sync import crashpoint
from mailtwin.sync.folder import CarryOver, FolderResult, Safety, sync_folder
from mailtwin.sync.folders import FolderPair, check_name, pair_folders, repo_view
from mailtwin.sync.options import RunOptions
from mailtwin.sync.plan import Copy, Delete, Plan, SetFlags, SyncOptions
from mailtwin.sync.stamps import pair_unchanged
from mailtwin.ui import events as ev

LABEL_MAX = 120  # a folder's name in messages: a server may send one of any length


def display(name: str) -> str:
    """A folder name as people read it: modified UTF-7 decoded where it is that."""
    if "&" not in name:
        return name  # no UTF-7 in it: skip importing the codec
    from mailtwin.stores.imap.parse import human_name

    return human_name(name)


def make_store(
    repo: RepositoryConfig, general: GeneralConfig, opts: RunOptions, infosep: str = ":"
) -> Store:
    """``infosep``: the account's (maildir-windows-compatible), for a Maildir."""
    if repo.type == "Maildir":
        from mailtwin.stores.maildir import MaildirStore

        assert repo.localfolders is not None
        return MaildirStore(
            repo.localfolders,
            sep=repo.sep,
            fsync=general.fsync,
            readonly=repo.readonly,
            # OfflineIMAP's FMD5 is the md5 of the name after the local nametrans
            visible_name=repo.nametrans,
            infosep=infosep,
        )
    from mailtwin.secrets.credentials import for_repository, user_name
    from mailtwin.stores.imap.store import ImapSettings, ImapStore
    from mailtwin.stores.imap.tls import policy_for

    assert repo.remotehost is not None and repo.auth is not None
    # the password and OAuth2 token are looked up (and registered for redaction) at login
    user = user_name(repo.section, repo.remotehost, repo.remoteuser, repo.auth)
    secrets = for_repository(repo.section, repo.remotehost, user, repo.remotepass, repo.auth)
    debug: Callable[[str], None] | None = None
    if opts.debug & {"imap", "all"}:
        from mailtwin.ui import output

        def debug(line: str) -> None:
            output.debug(f"imap[{repo.name}]", line)

    return ImapStore(
        ImapSettings(
            host=repo.remotehost,
            port=repo.remoteport,
            user=user,
            password="",
            secrets=secrets,
            mechanisms=repo.auth.mechanisms,
            authzid=repo.auth.remote_identity,
            ssl=repo.ssl,
            starttls=repo.starttls,
            timeout=general.socktimeout,
            readonly=repo.readonly,
            expunge=repo.expunge,
            maxconnections=1 if opts.single else repo.maxconnections,
            debug=debug,
            tls=policy_for(repo),
        )
    )


class AccountSync:
    def __init__(
        self,
        acct: AccountConfig,
        general: GeneralConfig,
        opts: RunOptions,
        emit: ev.Emit,
        stop: Callable[[], bool] = lambda: False,  # asked to stop after the current folder
    ) -> None:
        self.acct = acct
        self.general = general
        self.opts = opts
        self.emit = emit
        self.stop = stop
        # the local names of the folder pairs this sync took on ([mbnames] lists them)
        self.folders: list[str] = []

    @property
    def repos(self) -> dict[Side, RepositoryConfig]:
        return {Side.A: self.acct.local, Side.B: self.acct.remote}

    async def run(self) -> bool:
        """Sync the account once; True when every folder synced."""
        name = self.acct.name
        start = time.monotonic()
        self.emit(ev.AccountStarted(name))
        meta = self.general.metadata
        with AccountLock(meta, name):
            db, warning = StatusDB.open_or_reset(
                meta / f"Account-{name}" / "mailtwin.db", fsync=self.general.fsync
            )
            if warning:
                self.emit(ev.Warning(name, warning))
            stores = {
                s: make_store(self.repos[s], self.general, self.opts, self.acct.infosep)
                for s in Side
            }
            try:
                await asyncio.gather(*(stores[s].connect() for s in Side))
                ok = await self._sync_folders(stores, db)
            finally:
                await asyncio.gather(*(stores[s].close() for s in Side), return_exceptions=True)
                db.close()
        self.emit(ev.AccountDone(name, ok, time.monotonic() - start))
        return ok

    @property
    def carry(self) -> CarryOver | None:
        """OfflineIMAP's state for this account, adopted by a folder's first sync."""
        if self.acct.local.type != "Maildir":
            return None
        return CarryOver(
            self.general.metadata,
            self.acct.name,
            self.acct.remote.name,
            self.acct.local.name,
            self.acct.local.sep,
        )

    @property
    def safety(self) -> Safety:
        return Safety(
            max_deletes=self.acct.max_deletes,
            max_share=self.acct.max_delete_share,
            guard_empty={s: self.repos[s].type == "Maildir" for s in Side},
            restore=self.opts.restore,
            allow_deletions=self.opts.allow_deletions,
        )

    def sync_options(self, stores: dict[Side, Store]) -> SyncOptions:
        flags = [stores[s].caps.flags for s in Side]
        keep = None  # None: both sides keep any flag and keyword
        for f in flags:
            if f is not None:
                keep = f if keep is None else keep & f
        return SyncOptions(
            writable={s: not self.repos[s].readonly for s in Side},
            deletes_from={s: self.repos[s].sync_deletes for s in Side},
            flags=keep,
        )

    async def _sync_folders(self, stores: dict[Side, Store], db: StatusDB) -> bool:
        name = self.acct.name
        listed = await asyncio.gather(*(stores[s].list_folders() for s in Side))
        seps: dict[Side, str] = {}
        for s, folders in zip(Side, listed, strict=True):
            if self.repos[s].type == "Maildir":
                seps[s] = self.repos[s].sep
            else:
                seps[s] = next((f.sep for f in folders if f.sep), "/")
        views = {s: repo_view(self.repos[s], seps[s]) for s in Side}
        known = [(f.name_a, f.name_b) for f in db.folders()]
        pairs = pair_folders(
            listed[0],
            listed[1],
            views[Side.A],
            views[Side.B],
            known=known,
        )
        sopts = self.sync_options(stores)
        # a server's name no store can take fails its folder alone, before any command uses it
        refused: dict[FolderPair, FolderError] = {}
        for p in pairs:
            try:
                for s in Side:
                    check_name(p.name(s))
            except FolderError as e:
                refused[p] = e
        self.folders = [p.name_a for p in pairs if p not in refused]
        # taken now, before any folder's snapshot: a change from here on shows next time
        stamps = await asyncio.gather(
            *(
                stores[s].stamps([p.name(s) for p in pairs if p.exists(s) and p not in refused])
                for s in Side
            )
        )
        ok = True
        dropped = False
        todo = list(pairs)
        fatal: list[BaseException] = []
        running = min(self.width, len(todo)) or 1
        if running > 1:
            # the biggest first: a big folder started last would end the run alone
            todo.sort(key=lambda p: -_size(p, stamps))

        async def worker() -> None:
            nonlocal ok, dropped, running
            while todo and not fatal and not self.stop():
                if running > _room(stores, running):
                    running -= 1  # a server took fewer connections than asked: make way
                    return
                pair = todo.pop(0)
                label = cut(display(pair.name_b), LABEL_MAX)
                now = {s: got.get(pair.name(s)) for s, got in zip(Side, stamps, strict=True)}
                try:
                    if pair in refused:
                        raise refused[pair]
                    ok = await self._sync_pair(pair, label, stores, db, sopts, now) and ok
                except (FolderError, SafetyStop) as e:
                    ok = False
                    self.emit(ev.Failed(name, str(e), label, e.hint))
                except ConnectionFailed as e:
                    # one dropped connection fails this folder; the stores reconnect for the
                    # next. A second one, or one that retrying cannot mend, ends the account.
                    if dropped or not e.retry:
                        fatal.append(e)
                        return
                    dropped = True
                    ok = False
                    self.emit(ev.Failed(name, str(e), label, e.hint))
                except BaseException as e:  # the others finish their folder, then stop
                    fatal.append(e)
                    return

        # folder pairs run side by side on as many connections as maxconnections allows
        await asyncio.gather(*(worker() for _ in range(running)))
        if fatal:
            raise fatal[0]
        return ok

    @property
    def width(self) -> int:
        """How many folder pairs sync at once: each needs a connection of its own on every
        IMAP side, so the smallest maxconnections (1: one after another; -1 forces it)."""
        if self.opts.single:
            return 1
        return min([r.maxconnections for r in self.repos.values() if r.type == "IMAP"] or [1])

    async def _sync_pair(
        self,
        pair: FolderPair,
        label: str,
        stores: dict[Side, Store],
        db: StatusDB,
        sopts: SyncOptions,
        now: dict[Side, FolderStamp | None],
    ) -> bool:
        """Sync one folder pair; False when some message of it failed. ``now``: each side's
        stamp, taken before this run opened any folder."""
        name = self.acct.name
        fstate = db.folder(pair.name_a, pair.name_b)
        missing = [s for s in Side if not pair.exists(s)]
        synced_before = fstate is not None and (
            fstate.uidvalidity_a is not None or fstate.uidvalidity_b is not None
        )
        if synced_before and missing:
            assert fstate is not None
            if len(missing) == 2:
                return True
            gone = missing[0]
            if not self.opts.restore:
                raise SafetyStop(
                    f"folder {label}: synced before, but gone from the {SIDE_NAME[gone]} side "
                    f"({self.repos[gone].name}); not re-creating it, nothing was changed",
                    hint="to create it again and copy its mail back, run again with "
                    f"--restore-missing; if it was deleted on purpose, delete "
                    f"{display(pair.name(gone.other))!r} on the {SIDE_NAME[gone.other]} side "
                    "too (or exclude it with folderfilter)",
                )
            if not self.opts.dry_run:
                # --restore-missing: what the status knew of it goes; its mail comes back
                with db.transaction():
                    db.forget_pairs(fstate)
        for s in missing:
            view_ok = self.repos[s].createfolders and not self.repos[s].readonly
            if not view_ok:
                return True  # OfflineIMAP: that side does not get new folders; nothing to sync
            if not self.opts.dry_run:
                await stores[s].create_folder(pair.name(s))  # refuses a name it cannot take
                crashpoint.step(f"folder created on {s.value}")
            else:
                stores[s].check_new_folder(pair.name(s))  # as a real run would refuse it
            self.emit(ev.FolderCreated(name, s, label, self.opts.dry_run))
        if not missing and fstate is not None and pair_unchanged(fstate, now, db):
            zero = {s: 0 for s in Side}
            done = ev.FolderPlanned if self.opts.dry_run else ev.FolderDone
            self.emit(done(name, label, zero, zero, zero))
            return True
        if self.opts.dry_run:
            await self._dry_run(pair, label, stores, db, sopts, missing)
            return True
        folders = await self._open(pair, stores)
        if fstate is None:  # recorded once both sides opened: a folder never opened is not known
            fstate = db.add_folder(pair.name_a, pair.name_b)
        try:
            res = await sync_folder(
                folders,
                db,
                fstate,
                sopts,
                label=label,
                safety=self.safety,
                carry=self.carry,
                stamps=now,  # recorded with the sync's last changes when it had no failure
            )
        finally:
            await asyncio.gather(*(f.close() for f in folders.values()), return_exceptions=True)
        r = res.report
        for line in res.warnings:
            self.emit(ev.Warning(name, line, label))
        for line in r.notes:
            self.emit(ev.Warning(name, line, label))
        for line in r.failures:
            self.emit(ev.Failed(name, line, label))
        self.emit(ev.FolderDone(name, label, r.copies, r.flags, r.deletions, len(r.failures)))
        await self._new_mail(pair, res, label)
        return not r.failures

    async def _new_mail(self, pair: FolderPair, res: FolderResult, label: str) -> None:
        """newmail_hook, as OfflineIMAP calls it: once unread mail was copied out of the INBOX
        of an IMAP repository that has one. In a thread: it is the user's blocking code."""
        for s in Side:
            hook = self.repos[s].newmail_hook
            if hook is None or pair.name(s) != "INBOX" or not res.report.copies[s.other]:
                continue
            if not any(c.source is s and "\\Seen" not in c.flags for c in res.plan.copies):
                continue
            try:
                await asyncio.to_thread(hook)
            except Exception as e:  # the user's code: say so, the sync itself is done
                self.emit(ev.Warning(self.acct.name, f"newmail_hook failed: {e!r}", label))

    async def _open(self, pair: FolderPair, stores: dict[Side, Store]) -> dict[Side, Folder]:
        opened = await asyncio.gather(
            *(stores[s].open_folder(pair.name(s), self.repos[s].readonly) for s in Side)
        )
        return dict(zip(Side, opened, strict=True))

    async def _dry_run(
        self,
        pair: FolderPair,
        label: str,
        stores: dict[Side, Store],
        db: StatusDB,
        sopts: SyncOptions,
        missing: list[Side],
    ) -> None:
        """Plan as a sync would (re-match, carry-over, safety stops included), change nothing."""
        from mailtwin.sync.plan import EMPTY, plan

        fstate = db.folder(pair.name_a, pair.name_b) or FolderState(0, pair.name_a, pair.name_b)
        if missing:
            # a folder still to be created: everything on the other side is new
            snaps = {}
            for s in Side:
                snaps[s] = EMPTY if s in missing else await self._peek(stores[s], pair.name(s))
            p = plan(snaps[Side.A], snaps[Side.B], [], sopts)
        else:
            folders = {s: await stores[s].open_folder(pair.name(s), True) for s in Side}
            try:
                res = await sync_folder(
                    folders, db, fstate, sopts, True, label, self.safety, self.carry
                )
            finally:
                await asyncio.gather(*(f.close() for f in folders.values()))
            p = res.plan
            for line in res.warnings:
                self.emit(ev.Warning(self.acct.name, line, label))
        self.emit(_planned(self.acct.name, label, p))

    async def _peek(self, store: Store, name: str) -> Snapshot:
        f = await store.open_folder(name, True)
        try:
            return await f.snapshot()
        finally:
            await f.close()


def _planned(account: str, label: str, p: Plan) -> ev.FolderPlanned:
    lines: list[str] = []
    for c in p.copies:
        lines.append(
            f"copy {SIDE_NAME[c.source]} {c.id} → {SIDE_NAME[c.source.other]}"
            + (f" ({' '.join(sorted(c.flags))})" if c.flags else "")
        )
    for f in p.flag_changes:
        change = " ".join([f"+{x}" for x in sorted(f.add)] + [f"-{x}" for x in sorted(f.remove)])
        lines.append(f"flags {SIDE_NAME[f.side]} {f.id}: {change}")
    for d in p.deletions:
        lines.append(f"delete {SIDE_NAME[d.side]} {d.id}")
    return ev.FolderPlanned(
        account,
        label,
        {s: p.count(Copy, s) for s in Side},
        {s: p.count(SetFlags, s) for s in Side},
        {s: p.count(Delete, s) for s in Side},
        tuple(lines),
    )


_MESSAGES = STAMP_ITEMS.index("MESSAGES")  # where an IMAP stamp keeps the folder's count


def _size(pair: FolderPair, stamps: Sequence[Mapping[str, FolderStamp | None]]) -> int:
    """The most messages an IMAP side's stamp counts in this folder pair (0: not known)."""
    most = 0
    for s, got in zip(Side, stamps, strict=True):
        st = got.get(pair.name(s))
        if st is not None and st.kind == "imap" and len(st.values) > _MESSAGES:
            most = max(most, st.values[_MESSAGES] or 0)
    return most


def _room(stores: dict[Side, Store], running: int) -> int:
    """How many folder pairs the stores' connections allow at once now (``running`` when
    neither store limits them)."""
    return min((c for st in stores.values() if (c := st.capacity) is not None), default=running)


__all__ = ["AccountSync", "display", "make_store"]

"""Accounts: run each (up to maxsyncaccounts at once), repeat on autorefresh, stop on signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from mailtwin.config.load import only_folders
from mailtwin.config.model import AccountConfig, Config
from mailtwin.errors import ConfigError, LockedError, MailtwinError
from mailtwin.stores.imap.store import ImapStore
from mailtwin.sync import hooks
from mailtwin.sync.account import AccountSync, display, make_store
from mailtwin.sync.options import RunOptions
from mailtwin.ui import events as ev
from mailtwin.ui import output
from mailtwin.ui.text import make_ui

OK, FAILED, USAGE, LOCKED = 0, 1, 2, 3


def run(
    config: Config,
    opts: RunOptions,
    emit: ev.Emit | None = None,
    pre_hooked: frozenset[str] = frozenset(),
) -> int:
    """``pre_hooked``: accounts whose presynchook the pre-flight check already ran."""
    if emit is None:
        emit = make_ui(opts.ui, opts.logfile, opts.syslog)
    if opts.folders:
        from mailtwin.config.load import only_folders

        config = only_folders(config, opts.folders)
    if opts.info:
        return asyncio.run(_info(config, opts, emit))
    return asyncio.run(_run(config, opts, emit, pre_hooked))


class _Signals:
    """What signals told the run, as OfflineIMAP reads them: SIGTERM, SIGINT and SIGHUP stop it
    (no new folder is started, no hook runs; a second one stops at once); SIGUSR2 ends each
    account after its current sync; SIGUSR1 ends the current (or the next) autorefresh pause of
    every account, which then syncs at once."""

    HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self, accounts: list[str]) -> None:
        self.stop = asyncio.Event()
        self.last = asyncio.Event()
        self.wake = {name: asyncio.Event() for name in accounts}

    def on(self, sig: int) -> None:
        if sig == signal.SIGUSR1:
            for e in self.wake.values():
                e.set()
        elif sig == signal.SIGUSR2:
            self.last.set()
        elif self.stop.is_set():  # asked twice: stop now
            raise KeyboardInterrupt
        else:
            self.stop.set()

    async def pause(
        self, account: str, seconds: float, idle: _Idle | None = None
    ) -> list[str] | None:
        """Wait out (the rest of) an autorefresh pause. None: the account is to end instead;
        []: a full round is due; else the folders IDLE saw change, to sync before going on."""
        wake = self.wake[account]
        waits = [asyncio.ensure_future(e.wait()) for e in (self.stop, self.last, wake)]
        quit = asyncio.Event()
        watch = asyncio.ensure_future(idle.changed(seconds, quit)) if idle is not None else None
        changed: list[str] = []
        try:
            await asyncio.wait(
                waits if watch is None else [*waits, watch],
                timeout=seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for w in waits:
                w.cancel()
            if watch is not None:
                quit.set()  # the watchers end their IDLE (DONE) and hand back what they saw
                changed = await watch
        if self.stop.is_set() or self.last.is_set():
            return None
        if wake.is_set():
            wake.clear()
            return []
        return changed


async def _run(
    config: Config, opts: RunOptions, emit: ev.Emit, pre_hooked: frozenset[str] = frozenset()
) -> int:
    sigs = _Signals(list(config.accounts))
    loop = asyncio.get_running_loop()
    for sig in sigs.HANDLED:
        loop.add_signal_handler(sig, sigs.on, sig)
    limit = asyncio.Semaphore(1 if opts.single else max(1, config.general.maxsyncaccounts))
    codes = await asyncio.gather(
        *(
            _account_loop(a, config, opts, emit, sigs, limit, a.name in pre_hooked)
            for a in config.accounts.values()
        )
    )
    for sig in sigs.HANDLED:
        loop.remove_signal_handler(sig)
    if config.mbnames is not None and not opts.dry_run:
        from mailtwin.sync import mbnames  # json: only with [mbnames] enabled

        codes.append(mbnames.at_end(config, emit))
    for code in (LOCKED, USAGE, FAILED):
        if code in codes:
            return code
    return OK


async def _account_loop(
    acct: AccountConfig,
    config: Config,
    opts: RunOptions,
    emit: ev.Emit,
    sigs: _Signals,
    limit: asyncio.Semaphore,
    pre_hooked: bool = False,
) -> int:
    worst = OK
    idle = None
    daemon = acct.autorefresh is not None and not (opts.once or opts.dry_run)
    if daemon and acct.remote.type == "IMAP" and acct.remote.idlefolders:
        idle = _Idle(acct, config, opts, emit)
    loop = asyncio.get_running_loop()
    try:
        while True:
            if idle is not None:
                # the watched folders are open before the round looks at them: a change made
                # after that, while the round runs or before IDLE starts, is reported at IDLE
                await idle.changed(0, asyncio.Event())
            async with limit:
                code = await _account_once(acct, config, opts, emit, sigs.stop, pre_hooked)
            pre_hooked = False
            worst = max(worst, code) if code != LOCKED else LOCKED
            if opts.once or opts.dry_run or acct.autorefresh is None:
                return worst
            due = loop.time() + acct.autorefresh * 60
            while not (sigs.stop.is_set() or sigs.last.is_set()):
                changed = await sigs.pause(acct.name, max(0.0, due - loop.time()), idle)
                if changed is None:
                    return worst
                if not changed:
                    break  # the full round
                # IDLE saw these change: sync them alone now, then wait on
                only = only_folders(config, changed)
                async with limit:
                    code = await _account_once(
                        only.accounts[acct.name], only, opts, emit, sigs.stop, partial=True
                    )
                worst = max(worst, code) if code != LOCKED else LOCKED
            else:
                return worst
    finally:
        if idle is not None:
            await idle.close()


async def _account_once(
    acct: AccountConfig,
    config: Config,
    opts: RunOptions,
    emit: ev.Emit,
    stop: asyncio.Event,
    pre_hooked: bool = False,
    partial: bool = False,
) -> int:
    """One sync of the account, between its hooks. ``partial``: of some folders only (-f, or
    those IDLE saw change), which leaves the account's [mbnames] list as it was."""
    if not pre_hooked and not stop.is_set():
        await hooks.run_async(acct.name, hooks.PRE, acct.presynchook, emit, opts.dry_run)
    sync = AccountSync(acct, config.general, opts, emit, stop=stop.is_set)
    try:
        code = OK if await sync.run() else FAILED
        # -f syncs some folders only: the account's list stays as its last full sync left it
        if config.mbnames is not None and not opts.dry_run and not (opts.folders or partial):
            from mailtwin.sync import mbnames

            mbnames.listed(acct, config, sync.folders)
    except LockedError as e:
        emit(ev.Failed(acct.name, str(e), hint=e.hint))
        return LOCKED
    except ConfigError as e:
        emit(ev.Failed(acct.name, str(e), hint=e.hint))
        return USAGE
    except MailtwinError as e:
        emit(ev.Failed(acct.name, str(e), hint=e.hint))
        return FAILED
    except Exception as e:  # the account boundary: a bug here must not stop other accounts
        output.crash(e)
        emit(ev.Failed(acct.name, f"internal error: {e!r}", hint="please report this bug"))
        return FAILED
    if not stop.is_set():
        await hooks.run_async(acct.name, hooks.POST, acct.postsynchook, emit, opts.dry_run)
    return code


class _Idle:
    """idlefolders: IDLE on these folders of the remote repository between autorefresh rounds,
    a connection each, kept open from one pause to the next (OfflineIMAP's idlefolders). A
    folder whose watch fails is said once and left to the full rounds until the next pause."""

    MAX = 29 * 60  # RFC 2177: IDLE again before a server's 30-minute inactivity timeout

    def __init__(self, acct: AccountConfig, config: Config, opts: RunOptions, emit: ev.Emit):
        self.acct = acct
        self.config = config
        self.opts = opts
        self.emit = emit
        self.stores: dict[str, ImapStore] = {}
        self.told: set[str] = set()

    async def changed(self, seconds: float, quit: asyncio.Event) -> list[str]:
        """The folders that changed within ``seconds`` (until ``quit``); the first change
        ends every watch."""
        folders = list(dict.fromkeys(self.acct.remote.idlefolders))

        async def one(folder: str) -> bool:
            got = await self._watch(folder, seconds, quit)
            if got:
                quit.set()
            return got

        seen = await asyncio.gather(*(one(f) for f in folders))
        return [f for f, got in zip(folders, seen, strict=True) if got]

    async def _watch(self, folder: str, seconds: float, quit: asyncio.Event) -> bool:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        try:
            store = self.stores.get(folder)
            if store is None:
                made = make_store(self.acct.remote, self.config.general, self.opts)
                assert isinstance(made, ImapStore)
                store = self.stores[folder] = made
                await store.connect()
            while True:
                left = max(0.0, end - loop.time())
                if await store.watch(folder, min(left, self.MAX), quit):
                    self.told.discard(folder)
                    return True
                if quit.is_set() or loop.time() >= end:
                    return False
        except MailtwinError as e:
            if folder not in self.told:
                self.told.add(folder)
                self.emit(
                    ev.Warning(
                        self.acct.name,
                        f"IDLE stopped: {e}; the folder syncs with each autorefresh round "
                        "meanwhile",
                        display(folder),
                    )
                )
            gone = self.stores.pop(folder, None)
            if gone is not None:
                await gone.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(quit.wait(), max(0.0, end - loop.time()))
            return False

    async def close(self) -> None:
        stores, self.stores = list(self.stores.values()), {}
        await asyncio.gather(*(s.close() for s in stores), return_exceptions=True)


async def _info(config: Config, opts: RunOptions, emit: ev.Emit) -> int:
    code = OK
    for acct in config.accounts.values():
        lines = [f"account {acct.name}"]
        for role, repo in (("local", acct.local), ("remote", acct.remote)):
            where = (
                str(repo.localfolders)
                if repo.type == "Maildir"
                else (f"{repo.remotehost}:{repo.remoteport or ('993' if repo.ssl else '143')}")
            )
            lines.append(f"  {role} repository {repo.name}: {repo.type} {where}")
            store = make_store(repo, config.general, opts)
            try:
                await store.connect()
                caps = getattr(store, "server_caps", None)
                if caps:
                    lines.append("    capabilities: " + " ".join(sorted(caps)))
                for f in await store.list_folders():
                    lines.append(
                        f"    folder {display(f.name)}" + ("" if f.selectable else " (no select)")
                    )
            except MailtwinError as e:
                lines.append(f"    error: {e}")
                code = FAILED
            finally:
                await store.close()
        emit(ev.Info(acct.name, tuple(lines)))
    return code

"""Before the engine: settle the accounts that have nothing to do, cheaply.

A cron run of an unchanged account should cost little more than starting Python, but the engine
(asyncio, imapclient, the planner) takes longer to import than such a sync takes to run. So each
account is first looked at without it: the IMAP sides answer one LIST-STATUS over a blocking
connection (stores/imap/probe.py), the Maildir sides are listed and their new/ and cur/ stat'ed,
and each folder pair is judged exactly as the engine judges it (AccountSync._sync_pair): known,
on both sides, both stamps equal to those recorded after its last clean sync, nothing pending.
Only an account where every pair is so is settled here; at any doubt, and at any error (the
engine reports errors properly), the account goes to the engine, which then decides alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from mailtwin.model import FolderInfo, FolderStamp, Side, replace
from mailtwin.ui import events as ev
from mailtwin.ui.text import make_ui

if TYPE_CHECKING:
    import socket

    from mailtwin.config.model import AccountConfig, Config, GeneralConfig, RepositoryConfig
    from mailtwin.state.status import StatusDB
    from mailtwin.stores.imap.probe import Dial, Login
    from mailtwin.sync.folders import FolderPair
    from mailtwin.sync.options import RunOptions

Look = tuple[list[FolderInfo], dict[str, FolderStamp | None]]


def run(config: Config, opts: RunOptions) -> int:
    """The sync's entry point: settle what can be settled here, hand the rest to the engine."""
    emit = make_ui(opts.ui, opts.logfile, opts.syslog, capture=False)
    code = 0
    pre_hooked: frozenset[str] = frozenset()
    if _worth_trying(config, opts):
        rest = {}
        for name, acct in config.accounts.items():
            # the pre-hook may bring mail: it runs before the look, once (the engine is told)
            _hook(acct, "presynchook", acct.presynchook, emit)
            folders: list[str] = []
            done = settle(acct, config.general, emit, folders)
            if done is None:
                rest[name] = acct
                continue
            if done == 0 and config.mbnames is not None:
                done = _listed(emit, acct, config, folders)
            code = max(code, done)
            if done == 0:
                _hook(acct, "postsynchook", acct.postsynchook, emit)
        if not rest:
            if config.mbnames is not None:
                from mailtwin.sync import mbnames  # only with [mbnames] enabled

                code = max(code, mbnames.at_end(config, emit))
            return code
        config = replace(config, accounts=rest)
        pre_hooked = frozenset(rest)
    from mailtwin.sync.runner import run as run_engine
    from mailtwin.ui import output

    output.capture_logging()  # the engine's asyncio logs through it; nothing here does

    return max(code, run_engine(config, opts, emit, pre_hooked))


def _listed(emit: ev.Emit, acct: AccountConfig, config: Config, folders: list[str]) -> int:
    """A settled account's [mbnames] list; the exit code a failure to write it adds."""
    from mailtwin.errors import MailtwinError
    from mailtwin.sync import mbnames  # only with [mbnames] enabled

    try:
        mbnames.listed(acct, config, folders)
    except MailtwinError as e:
        emit(ev.Failed(acct.name, str(e), hint=e.hint))
        return e.exit_code
    return 0


def _hook(acct: AccountConfig, hook: str, command: str, emit: ev.Emit) -> None:
    if command:  # subprocess only loads for an account that has hooks
        from mailtwin.sync import hooks

        hooks.run(acct.name, hook, command, emit)


def _worth_trying(config: Config, opts: RunOptions) -> bool:
    """Only a plain one-shot run: a daemon has the engine loaded anyway, and a dry run, -f,
    --info, -d and the recovery flags each want the engine's own output or behaviour."""
    if opts.dry_run or opts.info or opts.folders or opts.debug or opts.restore:
        return False
    if opts.allow_deletions:
        return False
    return opts.once or all(a.autorefresh is None for a in config.accounts.values())


def settle(
    acct: AccountConfig, general: GeneralConfig, emit: ev.Emit, folders: list[str] | None = None
) -> int | None:
    """The account's exit code (0: nothing to do; 1: the server refused the login) when it
    is settled here, its start and end reported; None: it goes to the engine. ``folders``
    gets the local names of the account's folder pairs when it has nothing to do."""
    from mailtwin.errors import AuthError

    start = time.monotonic()
    path = general.metadata / f"Account-{acct.name}" / "mailtwin.db"
    if not path.exists():
        return None
    dial = None
    try:
        dial = _dial(acct, general)
        # the state's modules (sqlite3 among them) load while the server sends its greeting
        from mailtwin.state.lock import AccountLock
        from mailtwin.state.status import StatusDB

        with AccountLock(general.metadata, acct.name):
            # read only: a damaged file fails a read (the engine then decides) or cannot
            # match today's stamps; the engine's open checks it
            db = StatusDB.open(path, fsync=general.fsync, check=False)
            try:
                idle = _idle(acct, general, db, dial)
            finally:
                db.close()
    except AuthError as e:
        emit(ev.AccountStarted(acct.name))
        emit(ev.Failed(acct.name, str(e), hint=e.hint))
        emit(ev.AccountDone(acct.name, False, time.monotonic() - start))
        return 1
    except Exception:  # any doubt (a locked account, a damaged state): the engine decides
        return None
    finally:
        if dial is not None:
            dial.close()
    if idle is None:
        return None
    if folders is not None:
        folders.extend(idle)
    emit(ev.AccountStarted(acct.name))
    emit(ev.AccountDone(acct.name, True, time.monotonic() - start))
    return 0


def _dial(acct: AccountConfig, general: GeneralConfig) -> Dial | None:
    """For a Maildir ↔ IMAP account: the server's connection, opened in a thread while the
    Maildir is looked at (see probe.Dial); None otherwise."""
    repos = [acct.local, acct.remote]
    if sorted(r.type for r in repos) != ["IMAP", "Maildir"]:
        return None
    remote = next(r for r in repos if r.type == "IMAP")
    login = probe_login(remote, general)
    if login is None:
        return None
    from mailtwin.stores.imap.probe import Dial

    return Dial(login)


def _idle(
    acct: AccountConfig, general: GeneralConfig, db: StatusDB, dial: Dial | None = None
) -> list[str] | None:
    """The local names of the account's folder pairs when none has anything to do, else None."""
    repos = {Side.A: acct.local, Side.B: acct.remote}
    local = [s for s in Side if repos[s].type == "Maildir"]
    got: tuple[Look | None, Look | None]
    if len(local) == 1:
        # the Maildir first, in a few stat calls: a change there (mail written or read) sends
        # the account to the engine without a login to the server (``dial`` is dropped)
        s = local[0]
        mine = _look(repos[s], general)
        if mine is None or _known_changed(s, mine, db):
            return None
        other = _look(repos[s.other], general, dial)
        got = (mine, other) if s is Side.A else (other, mine)
    else:
        got = _both(lambda: _look(repos[Side.A], general), lambda: _look(repos[Side.B], general))
    if got[0] is None or got[1] is None:
        return None
    looks = {Side.A: got[0], Side.B: got[1]}
    seps = {
        s: repos[s].sep
        if repos[s].type == "Maildir"
        else next((f.sep for f in looks[s][0] if f.sep), "/")
        for s in Side
    }
    from mailtwin.sync.folders import pair_folders, repo_view

    known = [(f.name_a, f.name_b) for f in db.folders()]
    pairs = pair_folders(
        looks[Side.A][0],
        looks[Side.B][0],
        repo_view(repos[Side.A], seps[Side.A]),
        repo_view(repos[Side.B], seps[Side.B]),
        known=known,
    )
    if all(_pair_idle(p, db, repos, {s: looks[s][1] for s in Side}) for p in pairs):
        return [p.name_a for p in pairs]
    return None


def _known_changed(side: Side, look: Look, db: StatusDB) -> bool:
    """Whether a folder of ``side`` that the status knows has a stamp other than the one
    recorded after its last sync (the pair then cannot be idle). Folders it does not know are
    left to the full judgement, which needs the other side's listing."""
    recorded = {f.name(side): f.stamp(side) for f in db.folders()}
    return any(name in recorded and recorded[name] != st for name, st in look[1].items())


def _both(
    first: Callable[[], Look | None], second: Callable[[], Look | None]
) -> tuple[Look | None, Look | None]:
    """Both looks, the second in a thread: two servers' round trips overlap (IMAP ↔ IMAP).
    An exception of either (a refused login) is raised here."""
    import threading

    out: list[Look | None] = [None]
    error: list[BaseException] = []

    def run() -> None:
        try:
            out[0] = second()
        except BaseException as e:  # handed to the caller
            error.append(e)

    t = threading.Thread(target=run, name="preflight", daemon=True)
    t.start()
    try:
        a = first()
    finally:
        t.join()
    if error:
        raise error[0]
    return a, out[0]


def _pair_idle(
    pair: FolderPair,
    db: StatusDB,
    repos: Mapping[Side, RepositoryConfig],
    stamps: Mapping[Side, Mapping[str, FolderStamp | None]],
) -> bool:
    """The engine's decision for one pair (AccountSync._sync_pair), without its actions."""
    fstate = db.folder(pair.name_a, pair.name_b)
    missing = [s for s in Side if not pair.exists(s)]
    synced_before = fstate is not None and (
        fstate.uidvalidity_a is not None or fstate.uidvalidity_b is not None
    )
    if missing:
        if synced_before:
            return len(missing) == 2  # one side gone: a safety stop, the engine's to say
        # the engine skips it when that side gets no new folders, and creates it otherwise
        first = repos[missing[0]]
        return not first.createfolders or first.readonly
    if fstate is None:
        return False
    now = {s: stamps[s].get(pair.name(s)) for s in Side}
    from mailtwin.sync.stamps import pair_unchanged

    return pair_unchanged(fstate, now, db)


def _look(repo: RepositoryConfig, general: GeneralConfig, dial: Dial | None = None) -> Look | None:
    if repo.type == "Maildir":
        return _look_maildir(repo, general)
    return _look_imap(repo, general, dial)


def _look_maildir(repo: RepositoryConfig, general: GeneralConfig) -> Look | None:
    from mailtwin.stores.maildir import MaildirStore

    assert repo.localfolders is not None
    store = MaildirStore(
        repo.localfolders,
        sep=repo.sep,
        fsync=general.fsync,
        readonly=repo.readonly,
        visible_name=repo.nametrans,
    )
    folders = store.listing()
    if store.warnings:
        return None  # the engine says them
    return folders, {f.name: store.stamp(f.name) for f in folders}


def _look_imap(
    repo: RepositoryConfig, general: GeneralConfig, dial: Dial | None = None
) -> Look | None:
    from mailtwin.stores.imap import probe

    login = dial.login if dial is not None else probe_login(repo, general)
    if login is None:
        return None
    found = probe.look(login, dial)
    return None if found is None else (found.folders, found.stamps)


def probe_login(repo: RepositoryConfig, general: GeneralConfig) -> Login | None:
    """How the probe logs in to ``repo``: the user, secrets, mechanisms and TLS the engine's
    connections use (the secrets object too: a password command runs once per process)."""
    from mailtwin.secrets.credentials import for_repository, user_name
    from mailtwin.stores.imap import probe

    if repo.remotehost is None or repo.auth is None:
        return None
    host = repo.remotehost
    user = user_name(repo.section, host, repo.remoteuser, repo.auth)
    tls: Callable[[socket.socket], socket.socket] | None = None
    if repo.ssl or repo.starttls:
        from mailtwin.stores.imap.tls import policy_for, wrap_blocking

        policy = policy_for(repo)

        def tls(sock: socket.socket) -> socket.socket:
            return wrap_blocking(sock, policy, host)  # verified, then the pin, as the engine

    return probe.Login(
        host=host,
        port=repo.remoteport or (993 if repo.ssl else 143),
        user=user,
        secrets=for_repository(repo.section, host, user, repo.remotepass, repo.auth),
        mechanisms=repo.auth.mechanisms,
        authzid=repo.auth.remote_identity,
        timeout=general.socktimeout,
        tls=tls,
        implicit_tls=repo.ssl,
    )

"""Unchanged folders are skipped: no SELECT, no FETCH, nothing scanned. Every kind of change, on
either side, still makes the next run sync that folder; so does a change made on the server
while we sync (the stamps are taken before the snapshot, never after our own writes).

A Maildir stamp younger than 2 s is not trusted (coarse timestamps), so these tests let time
pass by moving the mtimes of directories changed in the last seconds 100 s back (``age``): an
unchanged directory keeps its mtime, a changed one gets one no stamp can hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, age, lf, msg, server_writes
from tests.proxy import Proxy

OPENS = {"SELECT", "EXAMINE"}
READS = {"FETCH", "UID_FETCH", "SEARCH", "UID_SEARCH"}


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config()
    return e


def opened(counts: dict[str, int]) -> dict[str, int]:
    """SELECT, EXAMINE and message reads, from Dovecot's command counts."""
    return {k: v for k, v in counts.items() if v and k.upper() in OPENS | READS}


def only_local(env: Env, folder: str) -> dict[bytes, frozenset[str]]:
    return {b: f for f, b, _ in env.local(folder).values()}


def only_server(env: Env, folder: str) -> dict[bytes, frozenset[str]]:
    return {lf(b): f for f, b in env.server(folder).values()}


def test_unchanged_folders_are_skipped_and_every_change_is_seen(env: Env, dovecot: Dovecot) -> None:
    folders = ["Same", "SrvNew", "SrvFlag", "SrvGone", "LocNew", "LocFlag", "LocGone", "LocMove"]
    for f in folders:
        env.append(f, msg(f"{f}1"))
        env.append(f, msg(f"{f}2"), create=False)
    env.add_local("LocMove", "1700000000.mua.host", lf(msg("LocMove3")), sub="new")
    env.run()
    age(env)
    env.run()  # the first sync wrote to both sides: one full sync more
    dovecot.command_counts(reset=True)
    before = env.listing()
    env.run()
    counts = dovecot.command_counts()
    assert opened(counts) == {}, counts
    # the listing brings every folder's status: nothing else is asked
    assert {k for k, v in counts.items() if v} <= {"LIST", "LOGIN", "CAPABILITY", "LOGOUT"}
    assert server_writes(counts) == {}
    assert env.listing() == before

    srv = {f: {lf(b): uid for uid, (_, b) in env.server(f).items()} for f in folders}
    loc = {f: {b: p for _, b, p in env.local(f).values()} for f in folders}
    env.append("SrvNew", msg("SrvNew3"), create=False)
    env.store("SrvFlag", srv["SrvFlag"][lf(msg("SrvFlag1"))], "+FLAGS", "\\Flagged")
    env.expunge("SrvGone", srv["SrvGone"][lf(msg("SrvGone1"))])
    env.add_local("LocNew", "1700000001.mua.host", lf(msg("LocNew3")))
    p = loc["LocFlag"][lf(msg("LocFlag1"))]
    key, _, letters = p.name.partition(":2,")
    p.rename(p.with_name(f"{key}:2,{''.join(sorted(letters + 'F'))}"))
    loc["LocGone"][lf(msg("LocGone1"))].unlink()
    moved = env.maildir / "LocMove" / "new" / "1700000000.mua.host"
    moved.rename(env.maildir / "LocMove" / "cur" / "1700000000.mua.host:2,S")
    age(env)
    dovecot.command_counts(reset=True)
    env.run()
    # the changed folders, and only they, were opened
    counts = dovecot.command_counts()
    assert sum(v for k, v in opened(counts).items() if k.upper() in OPENS) == len(folders) - 1
    assert lf(msg("SrvNew3")) in only_local(env, "SrvNew")
    assert only_local(env, "SrvFlag")[lf(msg("SrvFlag1"))] == {"\\Flagged"}
    assert lf(msg("SrvGone1")) not in only_local(env, "SrvGone")
    assert lf(msg("LocNew3")) in only_server(env, "LocNew")
    assert only_server(env, "LocFlag")[lf(msg("LocFlag1"))] == {"\\Flagged"}
    assert set(only_server(env, "LocGone")) == {lf(msg("LocGone2"))}
    assert only_server(env, "LocMove")[lf(msg("LocMove3"))] == {"\\Seen"}

    age(env)
    env.run()  # that run wrote: one full sync more, then nothing is opened again
    dovecot.command_counts(reset=True)
    env.run()
    assert opened(dovecot.command_counts()) == {}


def test_dry_run_and_folder_option_on_skipped_folders(env: Env, dovecot: Dovecot) -> None:
    env.append("INBOX", msg(1), create=False)
    env.run()
    age(env)
    env.run()
    env.append("INBOX", msg(2), create=False)
    p = env.run("--dry-run")
    assert "copy remote" in p.stdout, p.stdout
    assert lf(msg(2)) not in only_local(env, "INBOX")
    env.run("-f", "INBOX")
    assert lf(msg(2)) in only_local(env, "INBOX")


def test_server_change_during_sync_is_seen_next_time(
    dovecot: Dovecot, imap_user: User, tmp_path: Path, proxy: Proxy
) -> None:
    env = Env(dovecot, imap_user, tmp_path)
    env.write_config(port=proxy.port, general="socktimeout = 10")
    env.append("INBOX", msg(1), create=False)
    env.append("INBOX", msg(2), create=False)
    env.run()
    age(env)
    env.run()
    uid1 = next(u for u, (_, b) in env.server("INBOX").items() if lf(b) == lf(msg(1)))
    # a new local message makes the next run upload it (and write nothing locally); while it
    # does, after its snapshot, another client flags a message on the server
    env.add_local("INBOX", "1700000002.mua.host", lf(msg(3)), "S")
    age(env)
    hook = proxy.on_client(b"APPEND", lambda _: env.store("INBOX", uid1, "+FLAGS", "\\Flagged"))
    env.run()
    assert hook.calls == 1 and not proxy.errors, proxy.errors
    assert only_local(env, "INBOX")[lf(msg(1))] == frozenset()  # not seen by that run
    env.run()
    assert only_local(env, "INBOX")[lf(msg(1))] == {"\\Flagged"}

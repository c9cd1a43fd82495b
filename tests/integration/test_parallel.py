"""maxconnections > 1: folder pairs sync side by side, each on a connection of its own, with
the same result as one after another; -1 still uses one connection."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User, start_dovecot
from tests.integration.helpers import Env, lf, msg, server_writes
from tests.proxy import Proxy

FOLDERS = ["INBOX", "A", "B", "C/D", "E", "F"]


def fill(env: Env) -> None:
    for f in FOLDERS:
        for n in range(5):
            flags = "\\Seen" if n % 2 else ""
            env.append(f, msg(f"{f}-{n}"), flags=flags, create=f != "INBOX" and n == 0)


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path, proxy: Proxy) -> Env:
    """Six folders of five messages, reached through the proxy, with maxconnections = 3."""
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config(port=proxy.port, remote="maxconnections = 3")
    fill(e)
    return e


def test_folders_sync_side_by_side_to_the_same_result(
    env: Env, dovecot: Dovecot, proxy: Proxy
) -> None:
    env.run()
    assert 1 < proxy.connections <= 3  # folders at once, never more than maxconnections
    for f in FOLDERS:
        local = {b for _, b, _ in env.local(f.replace("/", ".")).values()}
        assert local == {lf(b) for _, b in env.server(f).values()} and len(local) == 5
    # changes on both sides in every folder, then the same as one after another would do
    for f in FOLDERS:
        env.add_local(f.replace("/", "."), f"new-{f.replace('/', '')}", lf(msg(f"local-{f}")))
        uid = min(env.server(f))
        env.store(f, uid, "+FLAGS", "\\Flagged")
    dovecot.command_counts(reset=True)
    env.run()
    counts = dovecot.command_counts()
    writes = server_writes(counts)
    assert writes.get("APPEND", 0) == len(FOLDERS), writes
    # each folder stays on the connection that selected it: never selected twice
    assert counts.get("SELECT", 0) == len(FOLDERS), counts
    for f in FOLDERS:
        assert len(env.server(f)) == 6 and len(env.local(f.replace("/", "."))) == 6
        assert sum("\\Flagged" in fl for fl, _, _ in env.local(f.replace("/", ".")).values()) == 1
    dovecot.command_counts(reset=True)
    env.run()
    assert not server_writes(dovecot.command_counts())


def test_single_connection_flag(env: Env, proxy: Proxy) -> None:
    env.run("-1")
    assert proxy.connections == 1
    assert all(len(env.local(f.replace("/", "."))) == 5 for f in FOLDERS)


@pytest.fixture(scope="module")
def tight() -> Iterator[Dovecot]:
    """A server that takes two connections per user and address: fewer than the default."""
    d = start_dovecot("protocol imap {\n  mail_max_userip_connections = 2\n}")
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(d.base, ignore_errors=True)


def test_refused_extra_connection_leaves_the_ones_that_work(tight: Dovecot, tmp_path: Path) -> None:
    env = Env(tight, tight.new_user(), tmp_path)
    env.write_config()  # maxconnections unset: the default asks for more than the limit
    fill(env)
    held = env.imap()  # another mail client: one connection is left for mailtwin
    try:
        # -d turns the pre-flight look off: its connection must not race the limit here
        out = env.run("-d", "imap")
    finally:
        held.logout()
    said = out.stdout + out.stderr
    assert "extra connection refused" in said and "[LIMIT]" in said
    assert "going on with 1" in said
    for f in FOLDERS:
        assert len(env.local(f.replace("/", "."))) == 5
    tight.command_counts(reset=True)
    env.run()
    assert not server_writes(tight.command_counts())


def test_biggest_folder_starts_first(env: Env) -> None:
    for n in range(5, 9):
        env.append("E", msg(f"E-{n}"), create=False)  # E: the most messages, listed late
    out = env.run("-d", "imap")
    opened = [ln.split()[4] for ln in out.stderr.splitlines() if " SELECT " in ln]
    assert opened[0] == "E", opened

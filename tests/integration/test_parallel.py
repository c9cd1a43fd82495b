"""maxconnections > 1: folder pairs sync side by side, each on a connection of its own, with
the same result as one after another; -1 still uses one connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
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
    writes = server_writes(dovecot.command_counts())
    assert writes.get("APPEND", 0) == len(FOLDERS), writes
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

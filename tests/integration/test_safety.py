"""Stops before damage: a synced folder gone, a renumbered folder, a hostile folder name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config()
    return e


def test_synced_folder_gone_locally_is_not_recreated_nor_emptied(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    env.append("Archive", msg(2))
    env.run()
    shutil.rmtree(env.maildir / "Archive")
    p = env.run(check=False)
    assert p.returncode == 1
    assert "Archive" in p.stderr and "gone from the local side" in p.stderr
    assert not (env.maildir / "Archive").exists()
    assert len(env.server("Archive")) == 1  # nothing deleted on the server
    assert len(env.local("INBOX")) == 1  # the other folders still synced


def test_synced_folder_gone_on_server_keeps_local_mail(env: Env) -> None:
    env.append("Archive", msg(2))
    env.run()
    c = env.imap()
    c.delete("Archive")
    c.logout()
    p = env.run(check=False)
    assert p.returncode == 1 and "gone from the remote side" in p.stderr
    assert len(env.local("Archive")) == 1
    assert "Archive" not in env.server_folders()


def test_uidvalidity_change_rematches_without_deleting(env: Env, dovecot: Dovecot) -> None:
    env.append("Archive", msg(1))
    env.append("Archive", msg(2), create=False)
    env.run()
    c = env.imap()
    c.delete("Archive")
    c.logout()
    env.append("Archive", msg(1))  # the same folder, recreated: new UIDVALIDITY
    env.append("Archive", msg(3), create=False)
    p = env.run()
    assert "UIDVALIDITY changed" in p.stderr and "nothing is deleted" in p.stderr
    want = sorted(lf(msg(n)) for n in (1, 2, 3))
    assert sorted(b for _, b, _ in env.local("Archive").values()) == want
    assert sorted(lf(b) for _, b in env.server("Archive").values()) == want
    dovecot.command_counts(reset=True)
    before = env.listing()
    p = env.run()
    assert p.stderr == ""
    assert env.listing() == before
    used = {k for k, n in dovecot.command_counts().items() if n}
    assert not {"APPEND", "STORE", "EXPUNGE"} & used


def test_folder_name_escaping_the_maildir_is_refused(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    # a local nametrans that turns a server folder into a path outside the root
    env.write_config(
        local="sep = /", remote="nametrans = lambda f: '../escaped' if f == 'Evil' else f"
    )
    env.append("Evil", msg(2))
    p = env.run(check=False)
    assert p.returncode == 1
    assert "escaped" in p.stderr
    assert not (env.tmp / "escaped").exists()
    assert {b for _, b, _ in env.local("INBOX").values()} == {lf(msg(1))}

"""Stops before damage: a synced folder gone, a renumbered folder, a hostile folder name."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg, server_writes


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
    used = set(server_writes(dovecot.command_counts()))
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


def test_mass_deletion_stops_then_restore_or_allow(env: Env, dovecot: Dovecot) -> None:
    c = env.imap()
    for n in range(60):
        c.append("INBOX", None, None, msg(n))
    c.logout()
    env.run()
    files = sorted(p for _, _, p in env.local("INBOX").values())
    for p in files[:55]:
        p.unlink()
    r = env.run(check=False)
    assert r.returncode == 1
    assert "55 of its 60 messages would be deleted on the remote side" in r.stderr
    assert "--restore-missing" in r.stderr and "--allow-deletions" in r.stderr
    assert len(env.server("INBOX")) == 60
    # the safe way: they come back
    dovecot.command_counts(reset=True)
    env.run("--restore-missing")
    assert dovecot.command_counts().get("APPEND", 0) == 0
    assert len(env.local("INBOX")) == 60 and len(env.server("INBOX")) == 60
    env.run()
    # the forced way: they go
    for p in sorted(p for _, _, p in env.local("INBOX").values())[:55]:
        p.unlink()
    env.run("--allow-deletions")
    assert len(env.server("INBOX")) == 5 and len(env.local("INBOX")) == 5


def test_emptied_local_folder_stops_below_the_limits(env: Env) -> None:
    for n in range(8):
        env.append("INBOX", msg(n), create=False)
    env.run()
    for _, _, p in env.local("INBOX").values():
        p.unlink()
    r = env.run(check=False)
    assert r.returncode == 1 and "the local folder is empty but held mail" in r.stderr
    assert len(env.server("INBOX")) == 8


def test_limits_come_from_the_config(env: Env) -> None:
    env.write_config(account="max_deletes = 0\nmax_delete_share = 0")
    for n in range(4):
        env.append("INBOX", msg(n), create=False)
    env.run()
    next(iter(env.local("INBOX").values()))[2].unlink()
    r = env.run(check=False)
    assert r.returncode == 1 and "1 of its 4 messages" in r.stderr


def test_whole_maildir_deleted_deletes_nothing_and_restores(env: Env, dovecot: Dovecot) -> None:
    env.append("INBOX", msg(1), create=False)
    env.append("Work/Projects", msg(2))
    env.run()
    shutil.rmtree(env.maildir)
    r = env.run(check=False)
    assert r.returncode == 1 and "gone from the local side" in r.stderr
    assert len(env.server("INBOX")) == 1 and len(env.server("Work/Projects")) == 1
    dovecot.command_counts(reset=True)
    env.run("--restore-missing")
    used = set(server_writes(dovecot.command_counts()))
    assert not used & {"APPEND", "STORE", "EXPUNGE"}
    assert len(env.local("INBOX")) == 1 and len(env.local("Work.Projects")) == 1
    env.run()


def test_server_restored_from_backup_is_rematched(env: Env, dovecot: Dovecot) -> None:
    env.append("INBOX", msg(1), create=False)
    env.run()
    backup = env.tmp / "server-backup"
    subprocess.run(["cp", "-a", str(env.user.home), str(backup)], check=True)
    env.append("INBOX", msg(2), create=False)
    env.append("INBOX", msg(3), create=False)
    env.run()
    # the server is put back as it was: same UIDVALIDITY, UIDNEXT lower than recorded
    shutil.rmtree(env.user.home)
    subprocess.run(["cp", "-a", str(backup), str(env.user.home)], check=True)
    env.append("INBOX", msg(4), create=False)  # takes a UID that msg(2) had
    p = env.run()
    assert "UIDNEXT went back" in p.stderr
    want = sorted(lf(msg(n)) for n in (1, 2, 3, 4))
    assert sorted(lf(b) for _, b in env.server("INBOX").values()) == want
    assert sorted(b for _, b, _ in env.local("INBOX").values()) == want
    before = env.listing()
    dovecot.command_counts(reset=True)
    assert env.run().stderr == ""
    assert env.listing() == before and not server_writes(dovecot.command_counts())

"""A lost or damaged status database: rebuilt by content, nothing deleted, nothing duplicated."""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg, server_writes

ANON = b"Subject: no message id\r\n\r\nanonymous\r\n"
BARE_LF = b"Message-ID: <lf@example.org>\nSubject: bare LF\n\nline one\nline two\n"


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config()
    return e


def synced_then_changed(env: Env) -> None:
    """A synced account, then new mail on both sides (with a true duplicate on the server)."""
    for body in (msg(1), msg(2), ANON, BARE_LF, msg(3)):
        env.append("INBOX", body, create=False)
    env.append("INBOX", msg(3), create=False)  # the same message twice: both are kept
    env.append("Work/Projects", msg(4))
    env.run()
    env.append("INBOX", msg(5), "\\Flagged", create=False)
    env.add_local("INBOX", "1700000020.x.host", lf(msg(6)), "S")


def assert_rebuilt(env: Env) -> None:
    want = Counter(lf(b) for b in (msg(1), msg(2), ANON, BARE_LF, msg(3), msg(3), msg(5), msg(6)))
    assert Counter(lf(b) for _, b in env.server("INBOX").values()) == want
    assert Counter(b for _, b, _ in env.local("INBOX").values()) == want
    assert len(env.server("Work/Projects")) == len(env.local("Work.Projects")) == 1


def test_state_deleted_is_rebuilt_by_content(env: Env, dovecot: Dovecot) -> None:
    synced_then_changed(env)
    shutil.rmtree(env.tmp / "meta")
    dovecot.command_counts(reset=True)
    env.run()
    counts = dovecot.command_counts()
    assert counts.get("APPEND", 0) == 1  # only the new local message went up
    assert counts.get("EXPUNGE", 0) == 0
    assert_rebuilt(env)
    before = env.listing()
    dovecot.command_counts(reset=True)
    env.run()
    assert env.listing() == before
    used = set(server_writes(dovecot.command_counts()))
    assert not used & {"APPEND", "STORE", "EXPUNGE"}


@pytest.mark.parametrize("damage", ["truncated", "garbage", "newer"])
def test_damaged_state_is_moved_aside_and_rebuilt(env: Env, damage: str) -> None:
    synced_then_changed(env)
    db = env.tmp / "meta" / "Account-test" / "mailtwin.db"
    if damage == "truncated":
        db.write_bytes(b"")
    elif damage == "garbage":
        db.write_bytes(b"\x00garbage" * 1000)
    else:
        con = sqlite3.connect(db)
        con.execute("PRAGMA user_version = 99")
        con.close()
    p = env.run()
    (warning,) = [line for line in p.stderr.splitlines() if "moved it aside" in line]
    aside = [f for f in db.parent.iterdir() if f.name.startswith("mailtwin.db.unreadable-")]
    assert any(str(f) in warning for f in aside), warning
    assert_rebuilt(env)
    p = env.run()
    assert p.stderr == ""

"""A keyword the target server refuses (here: longer than Dovecot's mail_max_keyword_length of
50) is reported once, never retried, and never taken away from the side that has it; the
message itself and its other flags are copied."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, start_dovecot
from tests.integration.helpers import Env, msg, server_writes
from tests.integration.test_imap_imap import fetch_all

LONG = "k" * 60  # the backup's Dovecot refuses it; the master's keeps it
LONGER = "m" * 60


@pytest.fixture(scope="module")
def roomy() -> Iterator[Dovecot]:
    """A second Dovecot that keeps long keywords: the master's server."""
    d = start_dovecot("mail_max_keyword_length = 200")
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(d.base, ignore_errors=True)


def store(env: Env, uid: int, flags: str) -> None:
    c = env.imap()
    c.select("INBOX")
    typ, data = c.uid("STORE", str(uid), "+FLAGS", f"({flags})")
    assert typ == "OK", data
    c.logout()


def test_refused_keyword_is_reported_once_and_left_alone(
    dovecot: Dovecot, roomy: Dovecot, tmp_path: Path
) -> None:
    backup = Env(dovecot, dovecot.new_user("kwb"), tmp_path)
    master = Env(roomy, roomy.new_user("kwm"), tmp_path)
    config = tmp_path / "rc"

    def repo(env: Env) -> str:
        return (
            f"type = IMAP\nremotehost = 127.0.0.1\nremoteport = {env.dovecot.port}\n"
            f"remoteuser = {env.user.name}\nremotepass = {env.user.password}\n"
            "ssl = no\nstarttls = no\n"
        )

    config.write_text(
        f"[general]\naccounts = test\nmetadata = {tmp_path}/meta\n\n"
        "[Account test]\nlocalrepository = backup\nremoterepository = master\n\n"
        f"[Repository backup]\n{repo(backup)}\n[Repository master]\n{repo(master)}"
    )
    config.chmod(0o600)
    backup.config.write_text(config.read_text())
    backup.config.chmod(0o600)
    master.append("INBOX", msg(1), flags=f"\\Seen $Short {LONG}", create=False)
    master.append("INBOX", msg(2), flags="\\Flagged", create=False)

    first = backup.run()
    assert first.stderr.count("WARNING") == 1 and LONG in first.stderr, first.stderr
    assert "refuses to store keyword" in first.stderr
    got = {b: f for _, (f, _, b) in fetch_all(backup, "INBOX").items()}
    assert got == {msg(1): {"\\Seen", "$Short"}, msg(2): {"\\Flagged"}}

    # the next run: nothing retried, nothing said, nothing written anywhere
    dovecot.command_counts(reset=True)
    roomy.command_counts(reset=True)
    second = backup.run()
    assert "WARNING" not in second.stderr, second.stderr
    assert not server_writes(dovecot.command_counts())
    assert not server_writes(roomy.command_counts())

    # a flag change with the known keyword and a new refused one: the rest lands
    uid2 = next(u for u, (_, _, b) in fetch_all(master, "INBOX").items() if b == msg(2))
    store(master, uid2, f"$Other {LONG} {LONGER}")
    third = backup.run()
    assert third.stderr.count("WARNING") == 1 and LONGER in third.stderr, third.stderr
    assert LONG not in third.stderr.replace(LONGER, "")
    got = {b: f for _, (f, _, b) in fetch_all(backup, "INBOX").items()}
    assert got[msg(2)] == {"\\Flagged", "$Other"}
    fourth = backup.run()
    assert "WARNING" not in fourth.stderr, fourth.stderr

    # the master keeps every keyword it had: nothing was taken away to match the backup
    kept = {b: f for _, (f, _, b) in fetch_all(master, "INBOX").items()}
    assert kept == {
        msg(1): {"\\Seen", "$Short", LONG},
        msg(2): {"\\Flagged", "$Other", LONG, LONGER},
    }

"""IMAP ↔ IMAP: two Dovecot users synced with a local repository of type IMAP."""

from __future__ import annotations

import imaplib
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, msg, quote, server_writes


class Pair:
    """The backup (local repository, side A) and the master (remote repository, side B)."""

    def __init__(self, dovecot: Dovecot, tmp: Path) -> None:
        self.dovecot = dovecot
        self.backup = Env(dovecot, dovecot.new_user("backup"), tmp)
        self.master = Env(dovecot, dovecot.new_user("master"), tmp)
        self.tmp = tmp
        self.write_config()

    def write_config(self, backup: str = "", master: str = "") -> None:
        def repo(user: User, extra: str) -> str:
            return (
                f"type = IMAP\nremotehost = 127.0.0.1\nremoteport = {self.dovecot.port}\n"
                f"remoteuser = {user.name}\nremotepass = {user.password}\n"
                f"ssl = no\nstarttls = no\n{extra}\n"
            )

        self.backup.config.write_text(
            f"[general]\naccounts = test\nmetadata = {self.tmp}/meta\n\n"
            "[Account test]\nlocalrepository = backup\nremoterepository = master\n\n"
            f"[Repository backup]\n{repo(self.backup.user, backup)}\n"
            f"[Repository master]\n{repo(self.master.user, master)}"
        )
        self.backup.config.chmod(0o600)  # it holds passwords (or the loader warns)

    def run(self, *args: str) -> str:
        return self.backup.run(*args).stdout


def fetch_all(env: Env, folder: str) -> dict[int, tuple[frozenset[str], str, bytes]]:
    """uid → (flags, INTERNALDATE, body)."""
    c = env.imap()
    typ, _ = c.select(quote(folder), readonly=True)
    assert typ == "OK", folder
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta = item[0].decode()
        uid = int(re.search(r"UID (\d+)", meta).group(1))  # type: ignore[union-attr]
        flags = frozenset(re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()) - {"\\Recent"}  # type: ignore[union-attr]
        date = re.search(r'INTERNALDATE "([^"]+)"', meta).group(1)  # type: ignore[union-attr]
        out[uid] = (flags, date, item[1])
    c.logout()
    return out


def view(env: Env, folder: str) -> Counter[tuple[frozenset[str], str, bytes]]:
    return Counter(fetch_all(env, folder).values())


def append(env: Env, folder: str, body: bytes, flags: str = "", date: str | None = None) -> None:
    c = env.imap()
    c.create(quote(folder))
    when = imaplib.Time2Internaldate(date) if date else None  # type: ignore[arg-type]
    typ, data = c.append(quote(folder), f"({flags})" if flags else None, when, body)
    assert typ == "OK", data
    c.logout()


@pytest.fixture
def pair(dovecot: Dovecot, tmp_path: Path) -> Pair:
    return Pair(dovecot, tmp_path)


FOLDERS = ["INBOX", "Work/Projects", "Работа"]


def fill_master(pair: Pair) -> None:
    for i, folder in enumerate(FOLDERS):
        for n in range(3):
            k = i * 10 + n
            append(
                pair.master,
                folder,
                msg(k),
                "\\Seen $Important" if n == 1 else "",
                date=f'"0{n + 1}-Mar-2021 10:00:00 +0100"',
            )


def test_initial_copy_is_exact_with_keywords_and_dates(pair: Pair) -> None:
    fill_master(pair)
    append(pair.master, "INBOX", b"Message-ID: <lf@x>\nSubject: bare LF\n\nbody\n")
    pair.run()
    for folder in FOLDERS:
        assert view(pair.backup, folder) == view(pair.master, folder), folder
    assert pair.backup.server_folders() >= set(FOLDERS)


def test_new_mail_on_each_side_copied_once_and_keeps_its_uid(pair: Pair, dovecot: Dovecot) -> None:
    fill_master(pair)
    pair.run()
    append(pair.master, "INBOX", msg(100))
    append(pair.backup, "INBOX", msg(200))
    born_master = {b: u for u, (_, _, b) in fetch_all(pair.master, "INBOX").items()}
    born_backup = {b: u for u, (_, _, b) in fetch_all(pair.backup, "INBOX").items()}
    pair.run()
    after_master = {b: u for u, (_, _, b) in fetch_all(pair.master, "INBOX").items()}
    after_backup = {b: u for u, (_, _, b) in fetch_all(pair.backup, "INBOX").items()}
    assert after_master[msg(100)] == born_master[msg(100)]  # kept its UID where it was born
    assert after_backup[msg(200)] == born_backup[msg(200)]
    assert view(pair.master, "INBOX") == view(pair.backup, "INBOX")
    for env in (pair.master, pair.backup):  # each exactly once on each side
        bodies = Counter(body for _, _, body in fetch_all(env, "INBOX").values())
        assert bodies[msg(100)] == bodies[msg(200)] == 1


def test_changes_apply_once_and_the_third_run_writes_nothing(pair: Pair, dovecot: Dovecot) -> None:
    fill_master(pair)
    pair.run()
    m = {b: u for u, (_, _, b) in fetch_all(pair.master, "INBOX").items()}
    b = {body: u for u, (_, _, body) in fetch_all(pair.backup, "INBOX").items()}
    pair.master.store("INBOX", m[msg(0)], "+FLAGS", "\\Flagged $Work")
    pair.backup.store("INBOX", b[msg(1)], "-FLAGS", "\\Seen")
    pair.master.expunge("INBOX", m[msg(2)])
    append(pair.backup, "Work/Projects", msg(300))
    pair.run()
    pair.run()
    dovecot.command_counts(reset=True)
    pair.run()
    assert server_writes(dovecot.command_counts()) == {}
    for folder in FOLDERS:
        assert view(pair.backup, folder) == view(pair.master, folder)
    flags = {body: f for f, _, body in fetch_all(pair.master, "INBOX").values()}
    assert flags[msg(0)] == {"\\Flagged", "$Work"}
    assert flags[msg(1)] == {"$Important"}
    assert msg(2) not in flags


def test_mirror_never_writes_to_a_readonly_master(pair: Pair, dovecot: Dovecot) -> None:
    pair.write_config(master="readonly = True\nsync_deletes = no")
    fill_master(pair)
    pair.run()
    m = {body: u for u, (_, _, body) in fetch_all(pair.master, "INBOX").items()}
    b = {body: u for u, (_, _, body) in fetch_all(pair.backup, "INBOX").items()}
    append(pair.backup, "INBOX", msg(400))  # changes on the backup never reach the master
    pair.backup.store("INBOX", b[msg(0)], "+FLAGS", "\\Flagged")
    pair.master.expunge("INBOX", m[msg(2)])  # kept on the backup: sync_deletes = no
    pair.master.store("INBOX", m[msg(1)], "+FLAGS", "\\Answered")  # flags flow to the backup
    dovecot.command_counts(reset=True)
    pair.run()
    pair.run()
    master_bodies = {body for _, _, body in fetch_all(pair.master, "INBOX").values()}
    assert msg(400) not in master_bodies and msg(2) not in master_bodies
    backup = {body: f for f, _, body in fetch_all(pair.backup, "INBOX").values()}
    assert msg(2) in backup and msg(400) in backup
    assert "\\Answered" in backup[msg(1)]
    master_flags = {body: f for f, _, body in fetch_all(pair.master, "INBOX").values()}
    assert "\\Flagged" not in master_flags[msg(0)]


def test_rebuild_without_state_transfers_only_the_new(pair: Pair, dovecot: Dovecot) -> None:
    pair.write_config(master="readonly = True")
    fill_master(pair)
    append(pair.master, "INBOX", msg(0))  # a true duplicate on the master stays two
    pair.run()
    append(pair.backup, "INBOX", msg(500))  # only on the backup: kept
    shutil.rmtree(pair.tmp / "meta")
    append(pair.master, "INBOX", msg(600))
    dovecot.command_counts(reset=True)
    p = pair.backup.run()
    assert "1 messages are only on the local side and stay there" in p.stderr
    counts = dovecot.command_counts()
    assert counts.get("APPEND", 0) == 1
    backup = Counter(body for _, _, body in fetch_all(pair.backup, "INBOX").values())
    master = Counter(body for _, _, body in fetch_all(pair.master, "INBOX").values())
    assert backup == master + Counter([msg(500)])
    assert backup[msg(0)] == 2
    dovecot.command_counts(reset=True)
    pair.run()
    assert server_writes(dovecot.command_counts()) == {}

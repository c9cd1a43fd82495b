"""Daemon-ish behaviour of the CLI: autorefresh until a signal, --info, -u quiet, -l."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, msg


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config()
    return e


def test_autorefresh_repeats_until_sigterm(env: Env) -> None:
    env.write_config(account="autorefresh = 0.01")  # 0.6 s between syncs
    env.append("INBOX", msg(1), create=False)
    log = env.tmp / "log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailtwin", "-c", str(env.config), "-l", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def count() -> int:  # the folder may be half created when we look
        try:
            return len(env.local("INBOX"))
        except FileNotFoundError:
            return 0

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and count() < 1:
            time.sleep(0.2)
        env.append("INBOX", msg(2), create=False)
        while time.monotonic() < deadline and count() < 2:
            time.sleep(0.2)
        assert len(env.local("INBOX")) == 2, "the second round did not sync the new message"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert log.read_text().count("account test: done") >= 2


@contextmanager
def daemon(env: Env, account: str, remote: str = "", *args: str) -> Iterator[Popen[str]]:
    """mailtwin in autorefresh mode (``account`` sets autorefresh and the hooks), killed by its
    PID if the test leaves it running."""
    env.write_config(account=account, remote=remote)
    cmd = [sys.executable, "-m", "mailtwin", "-c", str(env.config), "-u", "quiet", *args]
    proc = Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def ended(proc: Popen[str], sig: int) -> str:
    """Send ``sig`` and wait for the daemon to exit; its stderr."""
    proc.send_signal(sig)
    return proc.communicate(timeout=30)[1]


def counted(env: Env, minutes: float) -> tuple[str, Path]:
    """Account settings for a daemon whose post-hook writes a line per finished round."""
    rounds = env.tmp / "rounds"
    return f"autorefresh = {minutes}\npostsynchook = echo round >> {rounds}", rounds


def wait_rounds(proc: Popen[str], rounds: Path, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if rounds.exists() and len(rounds.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no round {n} (exit code {proc.poll()})")


def test_sigusr1_syncs_now_and_sigusr2_ends_after_the_sync(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    account, rounds = counted(env, 60)  # an hour between rounds: only a signal brings the next
    with daemon(env, account) as proc:
        wait_rounds(proc, rounds, 1)
        env.append("INBOX", msg(2), create=False)
        proc.send_signal(signal.SIGUSR1)
        wait_rounds(proc, rounds, 2)
        assert len(env.local("INBOX")) == 2, "the woken round did not sync"
        err = ended(proc, signal.SIGUSR2)  # while it waits: it ends instead of waiting on
    assert proc.returncode == 0, err
    assert rounds.read_text().splitlines() == ["round", "round"]


def test_sighup_stops_a_daemon_as_sigterm_does(env: Env) -> None:
    account, rounds = counted(env, 60)
    with daemon(env, account) as proc:
        wait_rounds(proc, rounds, 1)
        err = ended(proc, signal.SIGHUP)
    assert proc.returncode == 0, err


def test_idlefolders_sync_a_change_at_once(env: Env) -> None:
    """IDLE on INBOX between rounds an hour apart: new mail there arrives within moments, and
    the daemon still ends on a signal while it idles."""
    env.append("INBOX", msg(1), create=False)
    account, rounds = counted(env, 60)
    log = env.tmp / "log"
    with daemon(env, account, "idlefolders = ['INBOX']", "-l", str(log)) as proc:
        wait_rounds(proc, rounds, 1)
        for n in (2, 3):
            env.append("INBOX", msg(n), create=False)
            wait_rounds(proc, rounds, n)
            assert len(env.local("INBOX")) == n
        err = ended(proc, signal.SIGTERM)
    assert proc.returncode == 0, err
    assert "WARNING" not in err and "ERROR" not in err, err
    assert log.read_text().count("account test: done") == 3


def test_idle_sees_mail_that_came_after_the_round_looked(env: Env) -> None:
    """Mail that reaches a watched folder after the round listed it and before IDLE began is
    not left for the next round, an hour away: here the post-hook delivers it, once."""
    env.append("INBOX", msg(1), create=False)
    once = env.tmp / "delivered"
    deliver = env.tmp / "deliver.py"
    deliver.write_text(
        "import imaplib, sys\n"
        f"c = imaplib.IMAP4('127.0.0.1', {env.dovecot.port})\n"
        f"c.login({env.user.name!r}, {env.user.password!r})\n"
        f"c.append('INBOX', None, None, {msg(2)!r})\n"
        "c.logout()\n"
    )
    hook = f"test -e {once} || ({sys.executable} {deliver} && touch {once})"
    account = f"autorefresh = 60\npostsynchook = {hook}"
    with daemon(env, account, "idlefolders = ['INBOX']") as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if len(env.local("INBOX")) == 2:
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        assert len(env.local("INBOX")) == 2, "the mail the post-hook delivered did not arrive"
        err = ended(proc, signal.SIGTERM)
    assert proc.returncode == 0, err


def test_info_shows_repositories_and_folders(env: Env) -> None:
    env.append("Работа", msg(1))
    p = env.run("--info")
    assert "remote repository test-remote: IMAP 127.0.0.1" in p.stdout
    assert "folder Работа" in p.stdout
    assert "IMAP4REV1" in p.stdout.upper()
    assert not env.maildir.exists() or not any(env.maildir.iterdir())


def test_quiet_prints_nothing_on_success(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    p = env.run("-u", "quiet")
    assert p.stdout == "" and p.stderr == ""
    assert len(env.local("INBOX")) == 1


def test_config_warnings_reach_the_log_file(env: Env) -> None:
    """They are said before the log file opens: it gets them all the same (-u quiet too)."""
    env.write_config(general="autorefesh = 5")  # a typo: warned, then the run goes on
    log = env.tmp / "log"
    p = env.run("-u", "quiet", "-l", str(log))
    assert p.stderr == ""
    assert "[general] autorefesh: unknown option" in log.read_text()

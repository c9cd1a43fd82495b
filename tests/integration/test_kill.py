"""kill -9 at a random moment of a big initial sync and of a push, then resume.

Each seed picks a moment; the run is killed there (SIGKILL: no cleanup at all), run again to
the end, and then: both sides hold the same messages, none twice, none lost, and one more run
writes nothing. A few seeds run in CI; `pytest -m slow` runs many more.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg, server_writes

INITIAL = 2000
PUSH = 200


def body(n: int) -> bytes:
    # a few kilobytes each, some bigger, so a kill can fall inside a body
    return msg(n, body="x" * (200 + (n * 7919) % 30_000))


@pytest.fixture(scope="module")
def server_template(dovecot: Dovecot) -> User:
    """A user holding INITIAL messages in two folders, filled once and copied per test."""
    user = dovecot.new_user("killbase")
    c = dovecot.client(user)
    c.create("Archive")
    for n in range(INITIAL):
        typ, data = c.append("INBOX" if n % 3 else "Archive", None, None, body(n))
        assert typ == "OK", data
    c.logout()
    return user


def timed_run(env: Env) -> float:
    start = time.monotonic()
    env.run()
    return time.monotonic() - start


@pytest.fixture(scope="module")
def initial_seconds(
    dovecot: Dovecot, server_template: User, tmp_path_factory: pytest.TempPathFactory
) -> float:
    """How long the whole initial sync takes here: the kills fall inside it."""
    user = dovecot.new_user("killtime")
    subprocess.run(["cp", "-a", str(server_template.home), str(user.home)], check=True)
    env = Env(dovecot, user, tmp_path_factory.mktemp("killtime"))
    env.write_config()
    return timed_run(env)


def kill_at_random(env: Env, seed: int, span: float) -> int:
    """Start a sync and SIGKILL it at a moment drawn from the seed within ``span`` seconds
    (start-up included); its exit code."""
    delay = random.Random(seed).uniform(0.05, 0.95) * span
    p = subprocess.Popen(
        [sys.executable, "-m", "mailtwin", "-c", str(env.config), "-o", "-u", "quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    return p.wait(timeout=60)


def assert_same(env: Env, folder: str, local_name: str, want: Counter[bytes]) -> None:
    srv = Counter(lf(b) for _, b in env.server(folder).values())
    loc = Counter(b for _, b, _ in env.local(local_name).values())
    assert srv == want, "server differs"
    assert loc == want, "Maildir differs"


def assert_quiet_next_run(env: Env, dovecot: Dovecot) -> None:
    before = env.listing()
    dovecot.command_counts(reset=True)
    env.run()
    used = set(server_writes(dovecot.command_counts()))
    assert not used & {"APPEND", "STORE", "EXPUNGE", "CREATE"}, used
    assert env.listing() == before


def initial_sync_killed(
    seed: int, dovecot: Dovecot, template: User, tmp: Path, span: float
) -> None:
    user = dovecot.new_user("kill")
    subprocess.run(["cp", "-a", str(template.home), str(user.home)], check=True)
    env = Env(dovecot, user, tmp)
    env.write_config()
    kill_at_random(env, seed, span)
    env.run()
    want_inbox = Counter(lf(body(n)) for n in range(INITIAL) if n % 3)
    want_archive = Counter(lf(body(n)) for n in range(INITIAL) if not n % 3)
    assert_same(env, "INBOX", "INBOX", want_inbox)
    assert_same(env, "Archive", "Archive", want_archive)
    assert_quiet_next_run(env, dovecot)


def push_killed(seed: int, dovecot: Dovecot, imap_user: User, tmp: Path) -> None:
    env = Env(dovecot, imap_user, tmp)
    env.write_config()
    env.run()  # an empty account, synced: INBOX exists on both sides
    for n in range(PUSH):
        env.add_local("INBOX", f"17000{n:05d}.push.host", lf(body(10_000 + n)), "S")
    kill_at_random(env, seed, span=0.6)
    env.run()
    assert_same(env, "INBOX", "INBOX", Counter(lf(body(10_000 + n)) for n in range(PUSH)))
    assert_quiet_next_run(env, dovecot)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_initial_sync_killed_then_resumed(
    seed: int, dovecot: Dovecot, server_template: User, tmp_path: Path, initial_seconds: float
) -> None:
    initial_sync_killed(seed, dovecot, server_template, tmp_path, initial_seconds)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_push_killed_then_resumed(
    seed: int, dovecot: Dovecot, imap_user: User, tmp_path: Path
) -> None:
    push_killed(seed, dovecot, imap_user, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 30))
def test_initial_sync_killed_many_seeds(
    seed: int, dovecot: Dovecot, server_template: User, tmp_path: Path, initial_seconds: float
) -> None:
    initial_sync_killed(seed, dovecot, server_template, tmp_path, initial_seconds)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 30))
def test_push_killed_many_seeds(
    seed: int, dovecot: Dovecot, imap_user: User, tmp_path: Path
) -> None:
    push_killed(seed, dovecot, imap_user, tmp_path)

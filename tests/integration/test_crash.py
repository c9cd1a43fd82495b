"""Crash at every step of a sync, then resume: nothing lost, nothing duplicated, converged.

One scenario downloads, uploads, changes flags both ways, deletes both ways and creates a folder
on each side; one folder only changes flags and deletes (a crash there leaves no journal). It is
built once and saved (the server's mail directory, the Maildir, the state); each test restores a
copy, runs mailtwin with MAILTWIN_TEST_CRASH_AT=k (the process ends at its k-th journaled step,
as kill -9 would end it), runs it again, and checks the result.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dovecot import Dovecot
from tests.integration.helpers import Env, lf, msg, server_writes

# The scenario's number of crash points. When the engine gains or loses a step, the count test
# below fails and says the new number: update it here.
STEPS = 25
CRASHED = 86  # crashpoint.EXIT_CODE
# one folder at a time, so the k-th step is the same one in every run (test_kill kills runs
# that sync folders side by side, at random moments)
ONE_AT_A_TIME = "maxconnections = 1"

FINAL = {
    "INBOX": {1: {"\\Seen", "\\Flagged"}, 3: {"\\Seen"}, 5: set(), 7: set(), 9: {"\\Seen"}},
    "Archive": {6: {"\\Seen", "\\Flagged"}},
    "ServerNew": {8: set()},
    "LocalNew": {10: set()},
}


@dataclass
class Saved:
    base: Path
    server_home: Path  # the Dovecot user's whole home, mail and indexes
    tmp: Path


@pytest.fixture(scope="module")
def saved(dovecot: Dovecot, tmp_path_factory: pytest.TempPathFactory) -> Saved:
    tmp = tmp_path_factory.mktemp("crash-template")
    env = Env(dovecot, dovecot.new_user("crashbase"), tmp)
    env.write_config(remote=ONE_AT_A_TIME)
    for n in (1, 2, 3, 4, 5):
        env.append("INBOX", msg(n), "\\Seen" if n == 1 else "", create=False)
    env.append("Archive", msg(6), "\\Seen")
    env.append("Archive", msg(11))
    env.run()
    # changes on the server
    uid = {lf(b): u for u, (_, b) in env.server("INBOX").items()}
    env.append("INBOX", msg(7), create=False)
    env.store("INBOX", uid[lf(msg(1))], "+FLAGS", "\\Flagged")
    env.expunge("INBOX", uid[lf(msg(2))])
    env.append("ServerNew", msg(8))
    # a folder without copies: its sync point is recorded alone, before the first change
    arch = {lf(b): u for u, (_, b) in env.server("Archive").items()}
    env.store("Archive", arch[lf(msg(6))], "+FLAGS", "\\Flagged")
    env.expunge("Archive", arch[lf(msg(11))])
    # changes in the Maildir
    env.add_local("INBOX", "1700000009.crash.host", lf(msg(9)), "S")
    for _key, (_, body, path) in env.local("INBOX").items():
        if body == lf(msg(3)):
            path.rename(path.with_name(path.name.split(":")[0] + ":2,S"))
        if body == lf(msg(4)):
            path.unlink()
    env.add_local("LocalNew", "1700000010.crash.host", lf(msg(10)))
    return Saved(tmp, env.user.home, tmp)


def restore(saved: Saved, dovecot: Dovecot, tmp: Path) -> Env:
    user = dovecot.new_user("crash")
    subprocess.run(["cp", "-a", str(saved.server_home), str(user.home)], check=True)
    env = Env(dovecot, user, tmp)
    shutil.copytree(saved.tmp / "Mail", env.maildir, symlinks=True)
    shutil.copytree(saved.tmp / "meta", tmp / "meta", symlinks=True)
    env.write_config(remote=ONE_AT_A_TIME)
    return env


def check_converged(env: Env) -> None:
    for folder, want in FINAL.items():
        local_name = folder
        srv = Counter((lf(b), f) for f, b in env.server(folder).values())
        loc = Counter((b, f) for f, b, _ in env.local(local_name).values())
        expected = Counter((lf(msg(n)), frozenset(fl)) for n, fl in want.items())
        assert srv == expected, f"server {folder}: {srv} != {expected}"
        assert loc == expected, f"local {folder}: {loc} != {expected}"


def test_scenario_without_crash_and_step_count(
    saved: Saved, dovecot: Dovecot, tmp_path: Path
) -> None:
    env = restore(saved, dovecot, tmp_path)
    log = tmp_path / "steps"
    env.run(env={"MAILTWIN_TEST_CRASH_LOG": str(log)})
    check_converged(env)
    steps = log.read_text().splitlines()
    assert len(steps) == STEPS, f"the scenario now has {len(steps)} crash points:\n" + "\n".join(
        steps
    )


@pytest.mark.parametrize("k", range(1, STEPS + 1))
def test_crash_at_step_then_resume(saved: Saved, dovecot: Dovecot, tmp_path: Path, k: int) -> None:
    env = restore(saved, dovecot, tmp_path)
    p = env.run(check=False, env={"MAILTWIN_TEST_CRASH_AT": str(k)})
    assert p.returncode == CRASHED, (p.returncode, p.stderr)
    env.run()
    check_converged(env)
    # and the run after that changes nothing
    before = env.listing()
    dovecot.command_counts(reset=True)
    env.run()
    used = set(server_writes(dovecot.command_counts()))
    assert not used & {"APPEND", "STORE", "EXPUNGE", "CREATE"}, used
    assert env.listing() == before

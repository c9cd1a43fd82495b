"""presynchook and postsynchook, end to end: the pre-hook runs before the sync looks at either
side (mail it brings is synced in the same run), the post-hook after it, on a run the pre-flight
check settles too; a failing hook is a warning, not a failed sync; a refused login skips the
post-hook; a dry run runs neither; each autorefresh round runs both."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, age, lf, msg


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    return Env(dovecot, imap_user, tmp_path)


def hooks(env: Env, pre: str, post: str) -> Path:
    """Write the config with both hooks; the log file each may append to."""
    log = env.tmp / "hooks.log"
    account = f"presynchook = {pre}\npostsynchook = {post}".replace("LOG", shlex.quote(str(log)))
    env.write_config(account=account)
    return log


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_pre_hook_runs_before_the_sync_and_post_hook_after(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    brought = env.tmp / "brought"
    brought.write_bytes(lf(msg(2)))
    inbox = env.maildir / "INBOX"
    # the pre-hook delivers a message as a fetchmail or a filter would; the post-hook counts
    # what the Maildir holds once the sync is done
    pre = (
        f"mkdir -p {inbox}/cur {inbox}/new {inbox}/tmp && "
        f"cp {brought} {inbox}/new/1700000000.hook.host && echo pre >> LOG && echo fetched 1"
    )
    post = f"echo post $(find {inbox}/cur {inbox}/new -type f | wc -l) >> LOG"
    log = hooks(env, pre, post)
    p = env.run()
    # once each, though the pre-flight check ran the pre-hook and then handed over to the engine
    assert lines(log) == ["pre", "post 2"], p.stdout + p.stderr
    assert sorted(b for _, b in env.server("INBOX").values()) == sorted([msg(1), msg(2)])
    out = p.stdout
    assert "account test: presynchook: mkdir" in out and "\n    fetched 1\n" in out, out
    assert out.index("presynchook") < out.index("account test: syncing")
    assert out.index("account test: done") < out.index("postsynchook")


def test_hooks_run_on_a_run_with_nothing_to_do(env: Env, dovecot: Dovecot) -> None:
    env.append("INBOX", msg(1), create=False)
    log = hooks(env, "echo pre >> LOG", "echo post >> LOG")
    env.run()
    age(env)
    env.run()  # the run after one that wrote records the stamps
    age(env)
    dovecot.command_counts(reset=True)
    probe = (
        "import sys; from mailtwin.cli import main; rc = main(sys.argv[1:]); "
        "print('ENGINE' if 'asyncio' in sys.modules else 'LIGHT'); sys.exit(rc)"
    )
    p = subprocess.run(
        [sys.executable, "-c", probe, "-c", str(env.config), "-o"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0 and p.stdout.strip().endswith("LIGHT"), p.stdout + p.stderr
    used = {k: v for k, v in dovecot.command_counts().items() if v}
    assert used == {"LIST": 1, "LOGOUT": 1}, used
    assert lines(log) == ["pre", "post"] * 3


def test_a_failing_hook_is_a_warning_and_the_sync_goes_on(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    pre = "echo pre >> LOG; echo 'no route to fetchmail' >&2; exit 3"
    log = hooks(env, pre, "echo post >> LOG")
    p = env.run("-u", "quiet")
    assert p.returncode == 0
    assert "WARNING: account test: presynchook exited with code 3: echo pre" in p.stderr
    assert "\n    no route to fetchmail" in p.stderr
    assert [b for _, b, _ in env.local("INBOX").values()] == [lf(msg(1))]
    assert lines(log) == ["pre", "post"]
    # a hook that ends by a signal, or one whose command does not exist
    log.unlink()
    hooks(env, "kill -TERM $$", "echo post >> LOG; no-such-command-anywhere")
    p = env.run("-u", "quiet")
    assert p.returncode == 0
    assert "WARNING: account test: presynchook was ended by signal 15: kill" in p.stderr
    assert "WARNING: account test: postsynchook exited with code 127: echo post" in p.stderr
    assert lines(log) == ["post"]


def test_no_post_hook_after_a_refused_login(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    log = hooks(env, "echo pre >> LOG", "echo post >> LOG")
    text = env.config.read_text()
    # no state yet: the engine meets the refusal
    env.config.write_text(text.replace(f"remotepass = {env.user.password}", "remotepass = wrong"))
    p = env.run("-u", "quiet", check=False)
    assert p.returncode == 1, p.stderr
    assert lines(log) == ["pre"]
    # with a state: the pre-flight check meets it
    env.config.write_text(text)
    env.run()
    age(env)
    log.unlink()
    env.config.write_text(text.replace(f"remotepass = {env.user.password}", "remotepass = wrong"))
    p = env.run("-u", "quiet", check=False)
    assert p.returncode == 1, p.stderr
    assert lines(log) == ["pre"]


def test_dry_run_runs_no_hook(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    log = hooks(env, "echo pre >> LOG", "echo post >> LOG")
    p = env.run("--dry-run")
    assert not log.exists()
    assert "account test: would run presynchook: echo pre" in p.stdout
    assert "account test: would run postsynchook: echo post" in p.stdout


def test_each_autorefresh_round_runs_both_hooks(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    log = hooks(env, "echo pre >> LOG", "echo post >> LOG")
    # 0.005 minutes: a round every 0.3 s
    cmd = [sys.executable, "-m", "mailtwin", "-c", str(env.config), "-u", "quiet"]
    cmd += ["-k", "Account_test:autorefresh=0.005"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while lines(log).count("post") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = lines(log)
    assert got.count("post") >= 3, got
    # pre and post alternate; a round stopped by the signal may lack its post-hook
    assert got[: 2 * got.count("post")] == ["pre", "post"] * got.count("post"), got
    assert got[2 * got.count("post") :] in ([], ["pre"]), got


def test_newmail_hook_on_unread_mail_from_the_inbox(env: Env) -> None:
    """As OfflineIMAP: the remote repository's newmail_hook runs once unread mail was copied out
    of its INBOX; read mail, mail in another folder, and mail going up do not count."""
    calls = env.tmp / "calls"
    (env.tmp / "helpers.py").write_text(
        f"def notify():\n    open({str(calls)!r}, 'a').write('new\\n')\n"
        "def broken():\n    raise RuntimeError('no display')\n"
    )
    general = f"pythonfile = {env.tmp}/helpers.py"
    env.write_config(general=general, remote="newmail_hook = notify")
    env.append("INBOX", msg(1), create=False)
    env.run()
    assert lines(calls) == ["new"]
    env.append("INBOX", msg(2), "\\Seen", create=False)
    env.append("Work", msg(3))
    env.add_local("INBOX", "1700000000.local.host", lf(msg(4)))
    env.run()
    assert lines(calls) == ["new"]
    assert len(env.local("Work")) == 1 and len(env.server("INBOX")) == 3
    # a failing hook is a warning; the sync is done all the same
    env.write_config(general=general, remote="newmail_hook = broken")
    env.append("INBOX", msg(5), create=False)
    p = env.run("-u", "quiet")
    assert "WARNING: account test: folder INBOX: newmail_hook failed: RuntimeError" in p.stderr
    assert len(env.local("INBOX")) == 4

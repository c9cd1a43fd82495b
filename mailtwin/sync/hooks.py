"""presynchook and postsynchook: a shell command before and after each sync of an account.

As OfflineIMAP runs them: through the shell (``sh -c``), in mailtwin's environment and working
directory, once per sync (every round of autorefresh), the pre-hook before anything is looked
at (it may fetch mail into the Maildir), the post-hook once the sync got through, even when
some folders failed; not after an account-wide failure (a refused login, a locked account), and
neither once a signal asked the run to stop. A hook's exit status never changes the sync's.
Unlike OfflineIMAP, a hook gets no standard input (a cron run must not wait on a terminal) and a
failing hook is reported as a warning, with what it wrote.
"""

from __future__ import annotations

import subprocess

from mailtwin.ui import events as ev

PRE, POST = "presynchook", "postsynchook"


def _said(out: bytes, err: bytes) -> str:
    return (out + err).decode("utf-8", "replace")


def _not_run(account: str, hook: str, command: str, emit: ev.Emit, dry_run: bool) -> bool:
    """No hook set, or a dry run (which says what it would run)."""
    if command and dry_run:
        emit(ev.HookRan(account, hook, command, None, dry_run=True))
    return not command or dry_run


def run(account: str, hook: str, command: str, emit: ev.Emit, dry_run: bool = False) -> None:
    """Run ``command`` and wait for it (the pre-flight path: nothing else runs meanwhile)."""
    if _not_run(account, hook, command, emit, dry_run):
        return
    try:
        done = subprocess.run(
            command, shell=True, stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
    except OSError as e:
        emit(ev.HookRan(account, hook, command, None, e.strerror or str(e)))
        return
    emit(ev.HookRan(account, hook, command, done.returncode, _said(done.stdout, done.stderr)))


async def run_async(
    account: str, hook: str, command: str, emit: ev.Emit, dry_run: bool = False
) -> None:
    """The same in the engine, where other accounts sync meanwhile: the event loop goes on, and
    a run that is cut short (a second Ctrl-C) ends the hook with it."""
    if _not_run(account, hook, command, emit, dry_run):
        return
    import asyncio  # loaded by the engine already; the pre-flight path never comes here

    try:
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as e:
        emit(ev.HookRan(account, hook, command, None, e.strerror or str(e)))
        return
    try:
        out, err = await proc.communicate()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    assert proc.returncode is not None
    emit(ev.HookRan(account, hook, command, proc.returncode, _said(out, err)))

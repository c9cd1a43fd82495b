"""How a hook's run is reported, and that a cut-short engine run ends the hook it waits on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mailtwin.sync import hooks
from mailtwin.ui import events as ev
from mailtwin.ui.text import render


def test_a_hook_that_went_well_is_news_with_what_it_printed() -> None:
    line, problem = render(ev.HookRan("Work", "postsynchook", "notmuch new", 0, "Added 3\n"))
    assert (line, problem) == ("account Work: postsynchook: notmuch new\n    Added 3", False)


def test_a_failed_hook_is_a_problem() -> None:
    line, problem = render(ev.HookRan("Work", "presynchook", "fetch", 2, "out\nerr\n"))
    assert problem
    assert line == "WARNING: account Work: presynchook exited with code 2: fetch\n    out\n    err"
    line, _ = render(ev.HookRan("Work", "presynchook", "fetch", -9))
    assert line == "WARNING: account Work: presynchook was ended by signal 9: fetch"
    line, _ = render(ev.HookRan("Work", "presynchook", "fetch", None, "No such file"))
    assert line == "WARNING: account Work: presynchook could not start (No such file): fetch"


def test_dry_run_says_what_it_would_run() -> None:
    line, problem = render(ev.HookRan("Work", "presynchook", "fetch", None, dry_run=True))
    assert (line, problem) == ("account Work: would run presynchook: fetch", False)


def test_hooks_capture_both_streams_and_the_status(tmp_path: Path) -> None:
    got: list[ev.Event] = []
    hooks.run("Work", hooks.PRE, "echo out; echo err >&2; exit 4", got.append)
    asyncio.run(hooks.run_async("Work", hooks.POST, "echo out; echo err >&2", got.append))
    assert got == [
        ev.HookRan("Work", "presynchook", "echo out; echo err >&2; exit 4", 4, "out\nerr\n"),
        ev.HookRan("Work", "postsynchook", "echo out; echo err >&2", 0, "out\nerr\n"),
    ]
    hooks.run("Work", hooks.PRE, "", got.append)  # no hook: nothing at all
    assert len(got) == 2


def test_no_standard_input() -> None:
    got: list[ev.Event] = []
    hooks.run("Work", hooks.PRE, "cat; echo done", got.append)  # EOF at once, no wait
    assert isinstance(got[0], ev.HookRan) and got[0].output == "done\n"


def test_a_cancelled_engine_run_ends_its_hook(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    async def main() -> None:
        cmd = f"echo $$ > {pidfile}; exec sleep 60"
        task = asyncio.create_task(hooks.run_async("Work", hooks.PRE, cmd, lambda e: None))
        for _ in range(400):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.025)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the hook's task was not cancelled")

    asyncio.run(main())
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass  # ended and reaped
    else:
        raise AssertionError(f"hook process {pid} still runs")

"""Text renderers: basic (a line per account and per changed folder) and quiet (problems only).

OfflineIMAP's other interface names (ttyui, blinkenlights, machineui, syslog) are shown as basic
until their own renderers exist; ``-l`` copies every line to a file and ``-s`` to syslog.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from mailtwin.model import SIDE_NAME, Side
from mailtwin.ui import events as ev
from mailtwin.ui import output


def _counts(label: str, c: dict[Side, int]) -> str | None:
    sides = [f"{c[s]} {SIDE_NAME[s]}" for s in Side if c[s]]
    return f"{label} {', '.join(sides)}" if sides else None


def summary(copies: dict[Side, int], flags: dict[Side, int], dels: dict[Side, int]) -> str:
    """What landed on each side, e.g. "new 82 local, 3 remote; flags 2 local; deleted 1 remote"."""
    parts = [_counts("new", copies), _counts("flags", flags), _counts("deleted", dels)]
    return "; ".join(p for p in parts if p) or "no changes"


def render(e: ev.Event) -> tuple[str | None, bool]:
    """The line for an event (None: nothing to say at this level), and whether it is a problem."""
    if isinstance(e, ev.Failed):
        where = f" folder {e.folder}:" if e.folder else ""
        # no account: a failure of the run's own (the mbnames file)
        line = f"ERROR: account {e.account}:{where} {e.text}" if e.account else f"ERROR: {e.text}"
        if e.hint:
            line += f"\n  hint: {e.hint}"
        return line, True
    if isinstance(e, ev.Warning):
        where = f" folder {e.folder}:" if e.folder else ""
        return f"WARNING: account {e.account}:{where} {e.text}", True
    if isinstance(e, ev.AccountStarted):
        return f"account {e.account}: syncing", False
    if isinstance(e, ev.AccountDone):
        state = "done" if e.ok else "finished with errors"
        return f"account {e.account}: {state} in {e.seconds:.2f} s", False
    if isinstance(e, ev.FolderCreated):
        side = SIDE_NAME[e.side]
        verb = "would create" if e.dry_run else "created"
        return f"  {verb} folder {e.name} on the {side} side", False
    if isinstance(e, ev.FolderPlanned):
        head = f"  folder {e.folder} (dry run): {summary(e.copies, e.flags, e.deletions)}"
        return "\n".join([head, *(f"    {d}" for d in e.details)]), False
    if isinstance(e, ev.FolderDone):
        s = summary(e.copies, e.flags, e.deletions)
        if s == "no changes" and not e.failed:
            return None, False
        return f"  folder {e.folder}: {s}", False
    if isinstance(e, ev.Info):
        return "\n".join(e.lines), False
    if isinstance(e, ev.HookRan):
        return _hook(e)
    return None, False


def _hook(e: ev.HookRan) -> tuple[str, bool]:
    """A hook that went well is news (with what it printed); one that failed is a problem,
    though not the sync's: OfflineIMAP goes on after a failed hook, and so does mailtwin."""
    if e.dry_run:
        return f"account {e.account}: would run {e.hook}: {e.command}", False
    said = [f"    {line}" for line in e.output.splitlines()]
    if e.code == 0:
        return "\n".join([f"account {e.account}: {e.hook}: {e.command}", *said]), False
    if e.code is None:
        why, said = f"could not start ({e.output.strip()})", []
    elif e.code < 0:
        why = f"was ended by signal {-e.code}"
    else:
        why = f"exited with code {e.code}"
    return "\n".join([f"WARNING: account {e.account}: {e.hook} {why}: {e.command}", *said]), True


def make_ui(
    name: str,
    logfile: Path | None = None,
    syslog: bool = False,
    out: TextIO | None = None,
    capture: bool = True,
) -> Callable[[ev.Event], None]:
    """``capture``: route Python's logging here now (output.capture_logging); the pre-flight
    check leaves that to just before the engine starts, sparing a no-op run the import."""
    verbose = name != "quiet"
    stdout = out or sys.stdout
    log = open(logfile, "a", encoding="utf-8") if logfile else None  # noqa: SIM115 - lives as long as the run
    output.set_log(log)  # debug lines and crash reports go there too
    if capture:
        output.capture_logging()
    if syslog:
        import syslog as sl

        sl.openlog("mailtwin", sl.LOG_PID, sl.LOG_MAIL)

    def emit(e: ev.Event) -> None:
        line, problem = render(e)
        if line is None:
            return
        if not (problem or verbose or syslog or output.has_log()):
            return  # quiet, and no log to copy it to: nothing to clean
        line = output.clean(line)
        output.log_line(line)
        if syslog:
            sl.syslog(sl.LOG_ERR if problem else sl.LOG_INFO, line)
        if problem:
            print(line, file=sys.stderr, flush=True)
        elif verbose:
            print(line, file=stdout, flush=True)

    return emit

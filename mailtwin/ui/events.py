"""Events: the only way the sync core talks to a user interface.

Plain frozen classes (model.Frozen), not dataclasses: this module is imported by every run,
also by a no-op one, whose whole budget a dozen dataclasses would eat.
"""

from __future__ import annotations

from collections.abc import Callable

from mailtwin.model import Frozen, Side, _set


class Event(Frozen):
    __match_args__ = ("account",)
    __slots__ = __match_args__
    account: str

    def __init__(self, account: str) -> None:
        _set(self, "account", account)


class AccountStarted(Event):
    __slots__ = ()


class AccountDone(Event):
    __match_args__ = ("account", "ok", "seconds")
    __slots__ = ("ok", "seconds")
    ok: bool
    seconds: float

    def __init__(self, account: str, ok: bool, seconds: float) -> None:
        _set(self, "account", account)
        _set(self, "ok", ok)
        _set(self, "seconds", seconds)


class FolderCreated(Event):
    __match_args__ = ("account", "side", "name", "dry_run")
    __slots__ = ("dry_run", "name", "side")
    side: Side
    name: str  # as shown to people (decoded)
    dry_run: bool

    def __init__(self, account: str, side: Side, name: str, dry_run: bool = False) -> None:
        _set(self, "account", account)
        _set(self, "side", side)
        _set(self, "name", name)
        _set(self, "dry_run", dry_run)


class FolderPlanned(Event):
    __match_args__ = ("account", "folder", "copies", "flags", "deletions", "details")
    __slots__ = ("copies", "deletions", "details", "flags", "folder")
    folder: str  # as shown to people
    # what lands on each side: copies, flag changes, deletions
    copies: dict[Side, int]
    flags: dict[Side, int]
    deletions: dict[Side, int]
    details: tuple[str, ...]  # one line per action, filled for --dry-run

    def __init__(
        self,
        account: str,
        folder: str,
        copies: dict[Side, int],
        flags: dict[Side, int],
        deletions: dict[Side, int],
        details: tuple[str, ...] = (),
    ) -> None:
        _set(self, "account", account)
        _set(self, "folder", folder)
        _set(self, "copies", copies)
        _set(self, "flags", flags)
        _set(self, "deletions", deletions)
        _set(self, "details", details)


class FolderDone(Event):
    __match_args__ = ("account", "folder", "copies", "flags", "deletions", "failed")
    __slots__ = ("copies", "deletions", "failed", "flags", "folder")
    folder: str
    copies: dict[Side, int]
    flags: dict[Side, int]
    deletions: dict[Side, int]
    failed: int

    def __init__(
        self,
        account: str,
        folder: str,
        copies: dict[Side, int],
        flags: dict[Side, int],
        deletions: dict[Side, int],
        failed: int = 0,
    ) -> None:
        _set(self, "account", account)
        _set(self, "folder", folder)
        _set(self, "copies", copies)
        _set(self, "flags", flags)
        _set(self, "deletions", deletions)
        _set(self, "failed", failed)


class Warning(Event):
    __match_args__ = ("account", "text", "folder")
    __slots__ = ("folder", "text")
    text: str
    folder: str | None

    def __init__(self, account: str, text: str, folder: str | None = None) -> None:
        _set(self, "account", account)
        _set(self, "text", text)
        _set(self, "folder", folder)


class Failed(Event):
    __match_args__ = ("account", "text", "folder", "hint")
    __slots__ = ("folder", "hint", "text")
    text: str
    folder: str | None
    hint: str | None

    def __init__(
        self, account: str, text: str, folder: str | None = None, hint: str | None = None
    ) -> None:
        _set(self, "account", account)
        _set(self, "text", text)
        _set(self, "folder", folder)
        _set(self, "hint", hint)


class HookRan(Event):
    """A presynchook or postsynchook: ``code`` is its exit status (negative: the signal that
    ended it), None when it was not run (a dry run) or could not start (``output`` says why)."""

    __match_args__ = ("account", "hook", "command", "code", "output", "dry_run")
    __slots__ = ("code", "command", "dry_run", "hook", "output")
    hook: str  # the option's name
    command: str
    code: int | None
    output: str  # what it wrote, stdout then stderr
    dry_run: bool

    def __init__(
        self,
        account: str,
        hook: str,
        command: str,
        code: int | None,
        output: str = "",
        dry_run: bool = False,
    ) -> None:
        _set(self, "account", account)
        _set(self, "hook", hook)
        _set(self, "command", command)
        _set(self, "code", code)
        _set(self, "output", output)
        _set(self, "dry_run", dry_run)


class Info(Event):
    """Lines of --info output."""

    __match_args__ = ("account", "lines")
    __slots__ = ("lines",)
    lines: tuple[str, ...]

    def __init__(self, account: str, lines: tuple[str, ...] = ()) -> None:
        _set(self, "account", account)
        _set(self, "lines", lines)


Emit = Callable[[Event], None]

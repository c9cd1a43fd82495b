"""The exception tree. Raise by blast radius; catch at that boundary only."""

from __future__ import annotations


class MailtwinError(Exception):
    """Base of every error mailtwin reports; ``hint`` says what the user can do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(MailtwinError):
    """Bad command line or an unsupported flag."""

    exit_code = 2


class ConfigError(MailtwinError):
    """A config value is wrong or missing; names the section and option."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        section: str | None = None,
        option: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if section and option:
            where = f"[{section}] {option}: "
        elif section:
            where = f"[{section}]: "
        super().__init__(where + message, hint)
        self.section = section
        self.option = option


class StateError(MailtwinError):
    """The status database is locked, corrupt, or from a newer mailtwin."""


class LockedError(StateError):
    """Another process syncs this account."""

    exit_code = 3


class SafetyStop(MailtwinError):
    """A folder stopped before doing damage (a side emptied, a synced folder gone)."""


class StoreError(MailtwinError):
    """Something went wrong in a store."""


class MessageError(StoreError):
    """One message could not be handled; skip it."""


class FolderError(StoreError):
    """One folder could not be handled; skip that folder pair."""


class ConnectionFailed(StoreError):
    """The connection could not be made or was lost; ends the account."""

    def __init__(self, message: str, hint: str | None = None, retry: bool = True) -> None:
        super().__init__(message, hint)
        self.retry = retry


class AuthError(ConnectionFailed):
    """The server refused our credentials."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, retry=False)


class ProtocolError(ConnectionFailed):
    """The IMAP conversation broke."""


class ServerProtocolError(ProtocolError):
    """The server said something we cannot understand."""


class ResponseFlood(ServerProtocolError):
    """The server sent more than a response can hold (more folders than any account has): the
    connection is dropped rather than read to its end, and not tried again."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.retry = False


class ClientProtocolError(ProtocolError):
    """We sent something the server rejected as BAD: a bug on our side."""


class InternalError(MailtwinError):
    """A broken invariant: a bug."""


def cut(line: str | bytes, limit: int = 200) -> str:
    """A server line made safe for a message: decoded, one line, at most ``limit`` characters."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.replace("\r", " ").replace("\n", " ")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def shown(name: str, limit: int = 100) -> str:
    """A name from a server or a disk for a message: its repr (control characters escaped,
    quotes shown), cut to ``limit`` characters."""
    return cut(repr(name), limit)

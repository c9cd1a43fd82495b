"""~/.netrc, read with several entries per host told apart by login.

The stdlib ``netrc`` module keeps only the last entry of each host, and OfflineIMAP inherits
that; mailtwin follows netrc(5)'s grammar itself so one host can hold several logins. Tokens are
separated by blanks or newlines; a token may be double-quoted (backslash escapes the next
character); ``#`` starts a comment where a token could start; ``macdef`` bodies run to the next
empty line and are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Entry:
    machine: str | None  # None: the ``default`` entry
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    account: str | None = field(default=None, repr=False)


class NetrcError(ValueError):
    """The file does not follow the grammar; the message names the line."""


def _tokens(text: str) -> Iterator[tuple[str, int]]:
    """(token, line number); a ``macdef`` body comes as one token."""
    i, n, line = 0, len(text), 1
    after_macdef = 0  # 2: the macro name is next, 1: the body is next
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            if after_macdef == 1:  # the body starts on the next line, ends at an empty line
                end = text.find("\n\n", i)
                end = n if end < 0 else end + 1
                line += text.count("\n", i, end)
                i, after_macdef = end, 0
            continue
        if c.isspace():
            i += 1
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        start_line = line
        chars: list[str] = []
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                if text[i] == "\n":
                    line += 1
                chars.append(text[i])
                i += 1
            i += 1  # the closing quote
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
        token = "".join(chars)
        if after_macdef == 2:
            after_macdef = 1
        elif token == "macdef":
            after_macdef = 2
        yield token, start_line


def parse(text: str) -> list[Entry]:
    """Every ``machine`` and ``default`` entry, in file order."""
    entries: list[Entry] = []
    current: dict[str, str | None] | None = None
    tokens = _tokens(text)

    def finish() -> None:
        if current is not None:
            entries.append(
                Entry(current["machine"], current.get("login"), current.get("password"),
                      current.get("account"))
            )  # fmt: skip

    for token, line in tokens:
        if token in ("machine", "default"):
            finish()
            name: str | None = None
            if token == "machine":
                nxt = next(tokens, None)
                if nxt is None:
                    raise NetrcError(f"line {line}: machine without a name")
                name = nxt[0]
            current = {"machine": name}
        elif token in ("login", "password", "account"):
            nxt = next(tokens, None)
            if nxt is None:
                raise NetrcError(f"line {line}: {token} without a value")
            if current is None:
                raise NetrcError(f"line {line}: {token} before any machine")
            current[token] = nxt[0]
        elif token == "macdef":
            next(tokens, None)  # its name; the body was skipped by the tokenizer
        else:
            raise NetrcError(f"line {line}: unexpected {token[:20]!r}")
    finish()
    return entries


def find(entries: Sequence[Entry], host: str, login: str | None) -> Entry | None:
    """The first entry for ``host`` whose login is ``login`` (any login when None), else a
    ``default`` entry that fits the same way."""
    for wanted in (host, None):
        for e in entries:
            if e.machine == wanted and (login is None or e.login in (None, login)):
                return e
    return None


def default_paths() -> list[Path]:
    """As OfflineIMAP: ~/.netrc, then /etc/netrc."""
    return [Path(os.path.expanduser("~/.netrc")), Path("/etc/netrc")]


def lookup(host: str, login: str | None, paths: Sequence[Path] | None = None) -> Entry | None:
    """The entry for ``host`` and ``login`` from the first netrc file that exists."""
    for path in default_paths() if paths is None else paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise NetrcError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from e
        try:
            return find(parse(text), host, login)
        except NetrcError as e:
            raise NetrcError(f"{path}: {e}") from None
    return None

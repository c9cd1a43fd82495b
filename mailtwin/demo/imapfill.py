"""Fill a demo server over IMAP, and count what it holds: the demo's independent view of it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from imapclient import IMAPClient

from mailtwin.demo.mailgen import DemoMessage, Folder
from mailtwin.demo.server import HOST, User


def connect(port: int, user: User) -> IMAPClient:
    """A logged-in imapclient; folder names are str here, modified UTF-7 on the wire."""
    c = IMAPClient(HOST, port, ssl=False, timeout=30)
    c.login(user.name, user.password)
    return c


def delimiter(c: IMAPClient) -> str:
    """The server's hierarchy delimiter, from `LIST "" ""`."""
    for _flags, delim, _name in c.list_folders("", ""):
        if delim:
            return delim.decode() if isinstance(delim, bytes) else str(delim)
    return "/"


def fill(port: int, user: User, messages: Sequence[DemoMessage]) -> dict[str, int]:
    """Create the messages' folders (parents first) and append the messages with their flags and
    dates; one MULTIAPPEND per folder where offered. Returns messages appended per folder name."""
    by_folder: dict[Folder, list[DemoMessage]] = defaultdict(list)
    for m in messages:
        by_folder[m.folder].append(m)
    c = connect(port, user)
    try:
        sep = delimiter(c)
        multi = b"MULTIAPPEND" in c.capabilities()
        existing = {str(name) for _f, _d, name in c.list_folders()}
        counts: dict[str, int] = {}
        for folder, msgs in by_folder.items():
            for depth in range(1, len(folder) + 1):
                name = sep.join(folder[:depth])
                if name not in existing and name.upper() != "INBOX":
                    c.create_folder(name)
                    existing.add(name)
            name = sep.join(folder)
            if multi:
                c.multiappend(
                    name, [{"msg": m.raw, "flags": m.flags, "date": m.date} for m in msgs]
                )
            else:
                for m in msgs:
                    c.append(name, m.raw, m.flags, m.date)
            counts[name] = len(msgs)
        return counts
    finally:
        c.logout()


def count_messages(port: int, user: User) -> dict[str, int]:
    """Messages per selectable folder, as the server reports them (STATUS MESSAGES)."""
    c = connect(port, user)
    try:
        counts: dict[str, int] = {}
        for flags, _delim, name in c.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & {f for f in flags if isinstance(f, bytes)}:
                continue
            counts[str(name)] = int(c.folder_status(name, [b"MESSAGES"])[b"MESSAGES"])
        return counts
    finally:
        c.logout()

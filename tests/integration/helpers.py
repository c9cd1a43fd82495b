"""Helpers for end-to-end tests: write an OfflineIMAP-format config, run the CLI, look at both
sides independently (imaplib for the server, plain file reads for the Maildir)."""

from __future__ import annotations

import imaplib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from imapclient import imap_utf7

from tests.dovecot import Dovecot, User

FLAG_LETTERS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}


@dataclass
class Env:
    dovecot: Dovecot
    user: User
    tmp: Path

    @property
    def maildir(self) -> Path:
        return self.tmp / "Mail"

    @property
    def config(self) -> Path:
        return self.tmp / "offlineimaprc"

    def write_config(
        self,
        local: str = "",
        remote: str = "",
        general: str = "",
        account: str = "",
        password: str | None = None,
        port: int | None = None,
        ssl: bool = False,
    ) -> Path:
        self.config.write_text(
            f"""[general]
accounts = test
metadata = {self.tmp}/meta
{general}

[Account test]
localrepository = test-local
remoterepository = test-remote
{account}

[Repository test-local]
type = Maildir
localfolders = {self.maildir}
{local}

[Repository test-remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {port or self.dovecot.port}
remoteuser = {self.user.name}
remotepass = {self.user.password if password is None else password}
ssl = {"yes" if ssl else "no"}
starttls = no
{remote}
"""
        )
        self.config.chmod(0o600)  # it holds a password: others may not read it (or we warn)
        return self.config

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        if not self.config.exists():
            self.write_config()
        cmd = [sys.executable, "-m", "mailtwin", "-c", str(self.config), "-o", *args]
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})}
        )
        if check and p.returncode != 0:
            raise AssertionError(f"mailtwin exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    # ---- the server side, through an independent client --------------------------------------
    def imap(self) -> imaplib.IMAP4:
        return self.dovecot.client(self.user)

    def append(self, folder: str, body: bytes, flags: str = "", create: bool = True) -> None:
        c = self.imap()
        name = quote(folder)
        if create:
            c.create(name)
        typ, data = c.append(name, f"({flags})" if flags else None, None, body)
        assert typ == "OK", data
        c.logout()

    def server(self, folder: str) -> dict[int, tuple[frozenset[str], bytes]]:
        """uid → (flags, body) of every message in a server folder."""
        c = self.imap()
        typ, _ = c.select(quote(folder), readonly=True)
        assert typ == "OK", folder
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        out: dict[int, tuple[frozenset[str], bytes]] = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta = item[0].decode()
            uid = int(re.search(r"UID (\d+)", meta).group(1))  # type: ignore[union-attr]
            fl = re.search(r"FLAGS \(([^)]*)\)", meta)
            flags = frozenset(fl.group(1).split()) - {"\\Recent"} if fl else frozenset()
            out[uid] = (flags, item[1])
        c.logout()
        return out

    def server_folders(self) -> set[str]:
        c = self.imap()
        _, data = c.list()
        names = set()
        for line in data:
            m = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)  # type: ignore[arg-type]
            assert m
            raw = m.group(2).decode()
            if raw.startswith('"'):
                raw = raw[1:-1]
            names.add(imap_utf7.decode(raw.encode()))
        c.logout()
        return names

    def store(self, folder: str, uid: int, op: str, flags: str) -> None:
        c = self.imap()
        c.select(quote(folder))
        typ, data = c.uid("STORE", str(uid), op, f"({flags})")
        assert typ == "OK", data
        c.logout()

    def expunge(self, folder: str, uid: int) -> None:
        c = self.imap()
        c.select(quote(folder))
        c.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        c.expunge()
        c.logout()

    # ---- the Maildir side -------------------------------------------------------------------
    def local(self, folder: str) -> dict[str, tuple[frozenset[str], bytes, Path]]:
        """key → (flags, body, path) of every message in a local folder."""
        out = {}
        base = self.maildir / folder
        for sub in ("new", "cur"):
            for p in sorted((base / sub).iterdir()):
                key, _, info = p.name.partition(":")
                letters = info[2:] if info.startswith("2,") else ""
                flags = frozenset(FLAG_LETTERS[x] for x in letters if x in FLAG_LETTERS)
                out[key] = (flags, p.read_bytes(), p)
        return out

    def listing(self) -> list[str]:
        return sorted(str(p.relative_to(self.maildir)) for p in self.maildir.rglob("*"))

    def add_local(
        self, folder: str, name: str, body: bytes, flags: str = "", sub: str = "cur"
    ) -> Path:
        base = self.maildir / folder
        for d in ("cur", "new", "tmp"):
            (base / d).mkdir(parents=True, exist_ok=True)
        p = base / sub / (f"{name}:2,{flags}" if sub == "cur" else name)
        p.write_bytes(body)
        return p


WRITE_COMMANDS = {"APPEND", "STORE", "EXPUNGE", "CREATE", "DELETE", "RENAME", "MOVE", "COPY"}


def server_writes(counts: dict[str, int]) -> dict[str, int]:
    """The commands that change a server, from Dovecot's counts (UID STORE is "UID_STORE")."""
    return {
        name: n
        for name, n in counts.items()
        if n and name.upper().removeprefix("UID_") in WRITE_COMMANDS
    }


def quote(folder: str) -> str:
    enc = imap_utf7.encode(folder).decode()
    return '"' + enc.replace("\\", "\\\\").replace('"', '\\"') + '"'


def server_file(env: Env, folder_dir: str, n: int | str) -> Path:
    """The file of message ``n`` (``msg(n)``) in the server's own Maildir."""
    base = env.user.maildir / folder_dir
    for sub in ("cur", "new"):
        for f in (base / sub).iterdir():
            if f"<m{n}@example.org>".encode() in f.read_bytes():
                return f
    raise AssertionError(f"message {n} not found under {base}")


def age(env: Env) -> None:
    """Make every new/ and cur/ changed in the last 5 s look changed 100 s earlier: a Maildir
    stamp younger than 2 s is not trusted, and tests should not sleep."""
    now = time.time_ns()
    for d in env.maildir.glob("**/*"):
        if d.name in ("new", "cur") and d.is_dir():
            m = d.stat().st_mtime_ns
            if now - m < 5_000_000_000:
                t = m - 100_000_000_000
                os.utime(d, ns=(t, t))


def lf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n")


def msg(n: int | str, extra: str = "", body: str = "hello") -> bytes:
    return (
        f"From: a@example.org\r\nTo: b@example.org\r\nSubject: test {n}\r\n"
        f"Message-ID: <m{n}@example.org>\r\n{extra}\r\n{body} {n}\r\n"
    ).encode()

"""`mailtwin demo`: a throwaway IMAP server on 127.0.0.1, a generated mailbox, two real syncs.

Dovecot when installed, else pymap (the `demo` extra). The syncs run through `mailtwin.cli.main`
with an OfflineIMAP-format config, exactly as a user's would; the second must change nothing.
The server is always stopped by its PID; the temp directory goes unless --keep (or a failure).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import cast

from mailtwin.demo.server import (
    DOVECOT,
    HOST,
    Dovecot,
    NoServerError,
    Server,
    ServerKind,
    User,
    start_server,
)

CONFIG_NAME = "mailtwin.conf"


class DemoFailed(Exception):
    """A step of the demo did not do what it should; the message says which."""


# ---- testable parts ------------------------------------------------------------------------
def write_config(tmp: Path, port: int, user: User) -> Path:
    """An OfflineIMAP-format config syncing ``user`` on 127.0.0.1:``port`` to ``tmp``/Maildir."""
    cfg = tmp / CONFIG_NAME
    cfg.write_text(
        f"""\
# written by `mailtwin demo`: a throwaway account on a local test server
[general]
accounts = demo
metadata = {tmp / "state"}

[Account demo]
localrepository = demo-local
remoterepository = demo-remote

[Repository demo-local]
type = Maildir
localfolders = {tmp / "Maildir"}

[Repository demo-remote]
type = IMAP
remotehost = {HOST}
remoteport = {port}
remoteuser = {user.name}
remotepass = {user.password}
# the demo server speaks plain IMAP on loopback; real accounts want ssl = yes
ssl = no
starttls = no
"""
    )
    cfg.chmod(0o600)
    return cfg


def maildir_counts(root: Path) -> dict[str, int]:
    """Messages (files in cur/ and new/) per Maildir folder under ``root``, by relative path."""
    counts: dict[str, int] = {}
    for dirpath, dirnames, _files in os.walk(root):
        dirnames.sort()
        if "cur" in dirnames and "new" in dirnames:
            d = Path(dirpath)
            n = sum(
                1
                for sub in ("cur", "new")
                for e in os.scandir(d / sub)
                if e.is_file() and not e.name.startswith(".")
            )
            counts[str(d.relative_to(root))] = n
        dirnames[:] = [n for n in dirnames if n not in ("cur", "new", "tmp")]
    return counts


def maildir_listing(root: Path) -> list[str]:
    """Every file under ``root`` by relative path (flags live in the names, so they count)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def sync(cfg: Path) -> int:
    """One sync through the user's code path; returns its exit code."""
    from mailtwin.cli import main as cli_main

    try:
        rc = cli_main(["-c", str(cfg), "-o", "-u", "basic"])
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    if rc == 130:  # the CLI turned Ctrl-C into its exit code: unwind the demo too
        raise KeyboardInterrupt
    return rc


# ---- the run -------------------------------------------------------------------------------
def _say(text: str = "") -> None:
    print(text, flush=True)


def _show(name: str) -> str:
    """A folder name as a person reads it, with its modified UTF-7 form when that differs."""
    from imapclient import imap_utf7

    try:
        decoded = str(imap_utf7.decode(name.encode("ascii")))
    except (UnicodeError, ValueError):
        return name
    return name if decoded == name else f"{decoded} ({name})"


def _sort_key(name: str) -> tuple[bool, str]:
    return (name != "INBOX", _show(name).casefold())


def _table(counts: dict[str, int]) -> None:
    rows = [(_show(k), v) for k, v in sorted(counts.items(), key=lambda kv: _sort_key(kv[0]))]
    width = max((len(r[0]) for r in rows), default=0)
    for name, n in rows:
        _say(f"    {name:<{width}}  {n:>4}")
    _say(f"    {'total':<{width}}  {sum(counts.values()):>4}")


def _check_second_sync(rc: int, before: list[str], after: list[str]) -> None:
    if rc != 0:
        raise DemoFailed(f"the second sync failed (exit {rc})")
    if before != after:
        gone, new = sorted(set(before) - set(after)), sorted(set(after) - set(before))
        lines = [f"  - {p}" for p in gone[:5]] + [f"  + {p}" for p in new[:5]]
        raise DemoFailed(
            f"the second sync changed the Maildir ({len(gone)} files gone, {len(new)} new):\n"
            + "\n".join(lines)
        )


def run(tmp: Path, server: Server, n: int, seed: int) -> None:
    """The demo's steps on a started ``server``; raises DemoFailed."""
    from mailtwin.demo.imapfill import count_messages, fill
    from mailtwin.demo.mailgen import generate

    user = server.new_user("demo")
    _say(f"  {server.description} on {HOST}:{server.port} (pid {server.pid}), user {user.name}")
    fill(server.port, user, generate(n, seed))
    on_server = count_messages(server.port, user)
    _say(f"Filled it over IMAP with {n} generated messages:")
    _table(on_server)

    maildir = tmp / "Maildir"
    maildir.mkdir()
    cfg = write_config(tmp, server.port, user)
    _say(f"Wrote an OfflineIMAP-format config: {cfg}")
    _say()
    _say(f"First sync: mailtwin -c {cfg} -o -u basic")
    rc = sync(cfg)
    if rc != 0:
        raise DemoFailed(f"the first sync failed (exit {rc})")
    local = maildir_counts(maildir)
    _say(f"First sync done. The Maildir {maildir} now holds:")
    _table(local)
    if sum(local.values()) != sum(on_server.values()):
        raise DemoFailed(
            f"the Maildir holds {sum(local.values())} messages, the server "
            f"{sum(on_server.values())}"
        )
    _say()
    _say("Second sync: nothing changed on either side, so it must change nothing.")
    before = maildir_listing(maildir)
    rc = sync(cfg)
    _check_second_sync(rc, before, maildir_listing(maildir))
    _say("Second sync changed nothing: every message was already in place.")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C, so the server is stopped either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _kept(tmp: Path, server: Server | None) -> None:
    _say(f"Kept everything in {tmp}:")
    _say(f"  config   {tmp / CONFIG_NAME}")
    _say(f"  Maildir  {tmp / 'Maildir'}")
    _say(f"  state    {tmp / 'state'}")
    _say(f"  server   {tmp / 'server'} (stopped)")
    if isinstance(server, Dovecot):
        conf = server.base / "etc" / "dovecot.conf"
        _say("To sync again, start the server again, sync, and stop it:")
        _say(f"  {DOVECOT} -c {conf}")
        _say(f"  mailtwin -c {tmp / CONFIG_NAME} -o")
        _say(f"  kill $(cat {server.base / 'run' / 'master.pid'})")
    elif server is not None:
        _say("pymap held its mail in memory only, so there is no server to sync with again;")
        _say("with Dovecot installed, --keep keeps the server's mail too.")


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(
        prog="mailtwin demo",
        description="Sync a generated mailbox on a throwaway local IMAP server into a Maildir, "
        "twice, and show what happened.",
    )
    p.add_argument("--keep", action="store_true", help="keep the Maildir, config and state")
    p.add_argument(
        "--server",
        choices=["auto", "dovecot", "pymap"],
        default="auto",
        help="IMAP server to use (auto: Dovecot when installed, else pymap)",
    )
    p.add_argument("--messages", type=int, default=200, metavar="N", help="default: 200")
    p.add_argument("--seed", type=int, default=1, help="seed of the generated mail")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="mailtwin-demo-"))
    tmp.chmod(0o711)  # Dovecot's mail user must pass through to server/mail
    server: Server | None = None
    code = 1
    try:
        with _sigterm_as_interrupt():
            try:
                _say("Starting a throwaway IMAP server on 127.0.0.1 ...")
                server = start_server(tmp / "server", cast(ServerKind, args.server))
                run(tmp, server, args.messages, args.seed)
                code = 0
            except (DemoFailed, NoServerError) as e:
                print(f"mailtwin demo: {e}", file=sys.stderr, flush=True)
            except KeyboardInterrupt:
                print("mailtwin demo: interrupted", file=sys.stderr, flush=True)
                code = 130
            finally:
                if server is not None and server.pid is not None:
                    pid = server.pid
                    server.stop()
                    _say(f"Stopped the server (pid {pid}).")
    finally:
        if args.keep or code == 1:
            _kept(tmp, server)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            _say(f"Removed {tmp} (--keep keeps it).")
    return code

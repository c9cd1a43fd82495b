"""Changes made by someone else while we sync: another IMAP client adds, expunges and re-flags
messages on the server; a mail client renames (flag change) and moves files between Maildir
folders. They happen at a chosen command of ours (the proxy in front of Dovecot holds that
command until the change is done). Afterwards, and after one more run, both sides hold the
same messages: nothing lost, nothing twice on the server; a further run writes nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg, quote
from tests.proxy import Proxy

WRITES = {"APPEND", "STORE", "EXPUNGE", "CREATE", "DELETE", "RENAME", "MOVE", "COPY"}
MID = re.compile(rb"^Message-ID: <m([^@>]*)@", re.M | re.I)


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path, proxy: Proxy) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    # folders one after another: each hook below fires at the moment of one folder's sync
    e.write_config(port=proxy.port, general="socktimeout = 10", remote="maxconnections = 1")
    return e


def name(body: bytes) -> str:
    m = MID.search(body)
    assert m, body[:200]
    return m.group(1).decode()


def server_state(env: Env, folder: str) -> dict[str, frozenset[str]]:
    """Message name → flags; a message twice fails the test."""
    items = [(name(b), f) for f, b in env.server(folder).values()]
    counts = Counter(n for n, _ in items)
    assert set(counts.values()) <= {1}, f"server {folder}: twice: {counts}"
    return dict(items)


def local_state(env: Env, folder: str) -> dict[str, frozenset[str]]:
    items = [(name(b), f) for f, b, _ in env.local(folder).values()]
    counts = Counter(n for n, _ in items)
    assert set(counts.values()) <= {1}, f"local {folder}: twice: {counts}"
    return dict(items)


def converged(env: Env, dovecot: Dovecot, want: dict[str, set[str]]) -> None:
    """Both sides hold exactly ``want`` (folder → message names), with the same flags, and a
    further run writes nothing."""
    for folder, names in want.items():
        srv, loc = server_state(env, folder), local_state(env, folder)
        assert set(srv) == names, (folder, sorted(set(srv) ^ names))
        assert srv == loc, (folder, srv, loc)
    before = env.listing()
    dovecot.command_counts(reset=True)
    p = env.run()
    used = {k for k, v in dovecot.command_counts().items() if v and k.upper() in WRITES}
    assert not used, used
    assert env.listing() == before
    assert p.stderr == ""


class Other:
    """Another IMAP client, straight to Dovecot (not through the proxy)."""

    def __init__(self, env: Env) -> None:
        self.env = env

    def uids(self, folder: str = "INBOX") -> dict[str, int]:
        return {name(b): uid for uid, (_, b) in self.env.server(folder).items()}

    def expunge(self, *names: str, folder: str = "INBOX") -> None:
        uids = self.uids(folder)
        c = self.env.imap()
        c.select(quote(folder))
        for n in names:
            c.uid("STORE", str(uids[n]), "+FLAGS.SILENT", "(\\Deleted)")
        c.uid("EXPUNGE", ",".join(str(uids[n]) for n in names))
        c.logout()

    def store(self, n: str, op: str, flags: str, folder: str = "INBOX") -> None:
        self.env.store(folder, self.uids(folder)[n], op, flags)

    def add(self, *names: str, folder: str = "INBOX") -> None:
        for n in names:
            self.env.append(folder, msg(n), create=False)


def fill(env: Env, names: list[str], folder: str = "INBOX") -> None:
    c = env.imap()
    if folder != "INBOX":
        c.create(quote(folder))
    for n in names:
        typ, data = c.append(quote(folder), None, None, msg(n))
        assert typ == "OK", data
    c.logout()


def names(*ns: object) -> list[str]:
    return [str(n) for n in ns]


# ---- another IMAP client -------------------------------------------------------------------


def test_server_changes_during_download(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill(env, names(*range(1, 11)))
    env.run()
    fill(env, names(*range(11, 31)))
    other = Other(env)

    def meanwhile(_: bytes) -> None:
        other.expunge("12", "3")  # one we are about to download, one synced before
        other.add("31")
        other.store("5", "+FLAGS", "\\Flagged")
        other.store("6", "+FLAGS", "\\Seen")

    hook = proxy.on_client(b"BODY.PEEK[]", meanwhile)
    env.run()
    assert hook.calls == 1 and not proxy.errors, proxy.errors
    env.run()
    want = set(names(*range(1, 32))) - {"3", "12"}
    converged(env, dovecot, {"INBOX": want})
    assert local_state(env, "INBOX")["5"] == {"\\Flagged"}
    assert local_state(env, "INBOX")["6"] == {"\\Seen"}


def test_server_changes_during_upload(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill(env, names(*range(1, 6)))
    env.run()
    for i in range(1, 21):
        env.add_local("INBOX", f"17000000{i:02d}.mua.host", lf(msg(f"L{i}")), "S" if i % 2 else "")
    other = Other(env)

    def meanwhile(_: bytes) -> None:
        other.add("S1", "S2")  # UIDs taken between ours
        other.expunge("2")
        other.store("4", "+FLAGS", "\\Answered")

    hook = proxy.on_client(b"APPEND", meanwhile)
    env.run()
    assert hook.calls == 1 and not proxy.errors, proxy.errors
    env.run()
    want = {"1", "3", "4", "5", "S1", "S2"} | {f"L{i}" for i in range(1, 21)}
    converged(env, dovecot, {"INBOX": want})
    srv = server_state(env, "INBOX")
    assert srv["4"] == {"\\Answered"}
    assert all(srv[f"L{i}"] == ({"\\Seen"} if i % 2 else set()) for i in range(1, 21)), srv


def test_server_flags_race_our_flag_changes(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill(env, names(*range(1, 6)))
    env.run()
    for key, (_, _, path) in env.local("INBOX").items():  # read everything in the MUA
        path.rename(path.parent.parent / "cur" / f"{key}:2,S")
    other = Other(env)

    def meanwhile(_: bytes) -> None:
        other.store("1", "+FLAGS", "\\Flagged")  # a flag of its own on a message we change
        other.expunge("2")  # gone just before we change its flags
        other.store("3", "+FLAGS", "\\Seen \\Answered")  # the same change, and one more

    hook = proxy.on_client(b"STORE", meanwhile)
    env.run()
    assert hook.calls == 1 and not proxy.errors, proxy.errors
    env.run()
    converged(env, dovecot, {"INBOX": {"1", "3", "4", "5"}})
    srv = server_state(env, "INBOX")
    assert srv["1"] == {"\\Seen", "\\Flagged"}
    assert srv["3"] == {"\\Seen", "\\Answered"}
    assert srv["4"] == srv["5"] == {"\\Seen"}


def test_our_expunge_spares_messages_another_client_marked(
    env: Env, dovecot: Dovecot, proxy: Proxy
) -> None:
    fill(env, names(*range(1, 6)))
    env.run()
    for _, body, path in env.local("INBOX").values():
        if name(body) == "1":
            path.unlink()
    other = Other(env)

    def meanwhile(_: bytes) -> None:
        other.store("3", "+FLAGS", "\\Deleted")  # marked, not expunged: not ours to expunge

    hook = proxy.on_client(b"\\Deleted", meanwhile)
    env.run()
    assert hook.calls == 1 and not proxy.errors, proxy.errors
    assert set(server_state(env, "INBOX")) == {"2", "3", "4", "5"}
    assert "\\Deleted" in server_state(env, "INBOX")["3"]
    env.run()
    converged(env, dovecot, {"INBOX": {"2", "3", "4", "5"}})


# ---- a mail client on the Maildir ----------------------------------------------------------


def test_maildir_renames_and_moves_during_sync(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill(env, names(*range(1, 7)))
    fill(env, ["a1", "a2"], "Archive")
    env.run()
    other = Other(env)
    other.store("1", "+FLAGS", "\\Answered")  # makes us rename message 1's file
    other.add("7")  # makes us download into INBOX
    env.add_local("INBOX", "1700000100.mua.host", lf(msg("L1")), sub="new")
    inbox, archive = env.maildir / "INBOX", env.maildir / "Archive"

    def path_of(n: str) -> Path:
        return next(p for _, b, p in env.local("INBOX").values() if name(b) == n)

    selected: list[bytes] = []
    done: list[bool] = []

    def on_select(sent: bytes) -> None:
        m = re.search(rb"(?:SELECT|EXAMINE) (\S+)", sent[sent.rfind(b"SELECT") :])
        selected.append(m.group(1) if m else b"?")

    def mua(_: bytes) -> None:
        # our scan of INBOX is done, the server's listing is on its way: the mail client acts
        if done or selected[-1:] != [b"INBOX"]:
            return
        done.append(True)
        p1 = path_of("1")  # flagged in the mail client: a rename
        p1.rename(p1.with_name(p1.name.split(":")[0] + ":2,F"))
        p2 = path_of("2")  # filed into Archive
        p2.rename(archive / "cur" / p2.name)
        p3 = path_of("3")  # read: new/ → cur/
        p3.rename(inbox / "cur" / (p3.name.split(":")[0] + ":2,S"))
        new = inbox / "new" / "1700000100.mua.host"  # a new message filed at once
        new.rename(archive / "cur" / "1700000100.mua.host:2,S")

    proxy.on_client(b"SELECT ", on_select, once=False)
    proxy.on_client(b"(UID FLAGS)", mua, once=False)
    env.run()
    assert done and not proxy.errors, proxy.errors
    env.run()
    converged(
        env, dovecot, {"INBOX": {"1", "3", "4", "5", "6", "7"}, "Archive": {"a1", "a2", "2", "L1"}}
    )
    loc = local_state(env, "INBOX")
    assert loc["1"] == {"\\Answered", "\\Flagged"}
    assert loc["3"] == {"\\Seen"}
    assert local_state(env, "Archive")["L1"] == {"\\Seen"}


def test_maildir_file_moved_while_we_upload_it(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    """A new local message moves to another folder after our scan, before we read it."""
    fill(env, ["1"])
    fill(env, ["a1"], "Archive")
    env.run()
    env.add_local("INBOX", "1700000200.mua.host", lf(msg("L2")))
    env.add_local("INBOX", "1700000201.mua.host", lf(msg("L3")))

    def mua(_: bytes) -> None:
        src = env.maildir / "INBOX" / "cur" / "1700000200.mua.host:2,"
        if src.exists():
            src.rename(env.maildir / "Archive" / "cur" / src.name)

    proxy.on_client(b"(UID FLAGS)", mua)  # the first listing is INBOX's (synced first)
    env.run()
    env.run()
    converged(env, dovecot, {"INBOX": {"1", "L3"}, "Archive": {"a1", "L2"}})

"""A changed folder costs only its changes (CONDSTORE / QRESYNC, RFC 7162).

After a sync that left every server message paired, the next snapshot of that folder asks the
server only for what changed since the recorded HIGHESTMODSEQ: one ``UID FETCH 1:* (UID FLAGS)
(CHANGEDSINCE m VANISHED)`` with QRESYNC, or the same FETCH and the folder's UID list with
CONDSTORE alone, never every message's flags. The client's lines (``-d imap``) show which. The
store-level tests compare each derived snapshot with a full listing of the same folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mailtwin.model import MessageId, Since, Snapshot
from mailtwin.stores.imap.store import ImapSettings, ImapStore
from tests.contract.test_imap_store import settings
from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, age, lf, msg, quote, server_file

FULL_FETCH = re.compile(r"C: \S+ UID FETCH 1:\* \(UID FLAGS\)$", re.M)
CHANGED_FETCH = re.compile(
    r"C: \S+ UID FETCH 1:\* \(UID FLAGS\) \(CHANGEDSINCE \d+ VANISHED\)$", re.M
)
# the server's answers that carry a message's flags (a listing sends one per message)
FLAG_LINES = re.compile(r"S: \* \d+ FETCH \(.*FLAGS", re.M)
N = 200


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config()
    return e


def fill(env: Env, folder: str, n: int) -> None:
    """``n`` messages in a new server folder, over one connection."""
    c = env.imap()
    c.create(quote(folder))
    for i in range(n):
        typ, data = c.append(quote(folder), None, None, msg(f"{folder}{i}"))
        assert typ == "OK", data
    c.logout()


def uids(env: Env, folder: str) -> dict[bytes, int]:
    return {lf(b): uid for uid, (_, b) in env.server(folder).items()}


def local(env: Env, folder: str) -> dict[bytes, frozenset[str]]:
    return {b: f for f, b, _ in env.local(folder).values()}


def synced(env: Env) -> str:
    """A run with the client's lines shown; its debug output."""
    age(env)
    return env.run("-d", "imap").stderr


def test_changes_cost_only_themselves(env: Env) -> None:
    fill(env, "Big", N)
    out = synced(env)
    assert len(FULL_FETCH.findall(out)) >= 1  # the first sync lists the folder in full
    assert len(local(env, "Big")) == N
    srv = uids(env, "Big")
    env.store("Big", srv[lf(msg("Big7"))], "+FLAGS", "\\Flagged")
    env.append("Big", msg("Big-new"), create=False)
    out = synced(env)
    assert not FULL_FETCH.findall(out), out[-3000:]
    assert CHANGED_FETCH.findall(out)
    # the changed message and the new one (and the new one's flags as we set them), not 200
    assert len(FLAG_LINES.findall(out)) <= 4, FLAG_LINES.findall(out)
    loc = local(env, "Big")
    assert loc[lf(msg("Big7"))] == {"\\Flagged"}
    assert lf(msg("Big-new")) in loc and len(loc) == N + 1

    # an expunge on the server shows as VANISHED and is deleted here
    env.expunge("Big", srv[lf(msg("Big3"))])
    out = synced(env)
    assert not FULL_FETCH.findall(out)
    assert re.search(r"S: \* VANISHED \(EARLIER\) \d+", out), out[-3000:]
    assert lf(msg("Big3")) not in local(env, "Big")
    assert len(local(env, "Big")) == N


def test_changes_on_both_sides_converge(env: Env) -> None:
    fill(env, "Both", 20)
    env.run()
    synced(env)
    srv = uids(env, "Both")
    files = {b: p for _, b, p in env.local("Both").values()}
    # server: a flag, a new message, an expunge; here: a flag, a new message, a deletion
    env.store("Both", srv[lf(msg("Both1"))], "+FLAGS", "\\Seen")
    env.append("Both", msg("Both-srv"), create=False)
    env.expunge("Both", srv[lf(msg("Both2"))])
    p = files[lf(msg("Both3"))]
    key, _, letters = p.name.partition(":2,")
    p.rename(p.with_name(f"{key}:2,{''.join(sorted(letters + 'F'))}"))
    files[lf(msg("Both4"))].unlink()
    env.add_local("Both", "1700000001.mua.host", lf(msg("Both-loc")))
    out = synced(env)
    assert not FULL_FETCH.findall(out)
    out = synced(env)  # the server got our changes: seen as changes, still no full listing
    assert not FULL_FETCH.findall(out)
    server = {lf(b): f for f, b in env.server("Both").values()}
    assert server == local(env, "Both")
    assert server[lf(msg("Both1"))] == {"\\Seen"}
    assert server[lf(msg("Both3"))] == {"\\Flagged"}
    assert lf(msg("Both-srv")) in server and lf(msg("Both-loc")) in server
    assert lf(msg("Both2")) not in server and lf(msg("Both4")) not in server
    assert len(server) == 20


def test_a_failed_copy_is_listed_in_full_next_time(env: Env) -> None:
    """A message that did not sync has a UID below the recorded UIDNEXT and no new
    mod-sequence: only a full listing finds it again."""
    fill(env, "Fail", 3)
    env.run()
    synced(env)
    env.append("Fail", msg("Fail-late"), create=False)
    os.chmod(server_file(env, ".Fail", "Fail-late"), 0)  # Dovecot (not root) cannot read it
    try:
        p = env.run(check=False)
    finally:
        os.chmod(server_file(env, ".Fail", "Fail-late"), 0o600)
    assert p.returncode == 1, p.stdout + p.stderr
    assert lf(msg("Fail-late")) not in local(env, "Fail")
    out = synced(env)
    assert FULL_FETCH.findall(out), out[-3000:]
    assert lf(msg("Fail-late")) in local(env, "Fail")
    out = synced(env)
    assert not FULL_FETCH.findall(out)


def test_renumbered_folder_is_listed_in_full_and_rematched(env: Env) -> None:
    fill(env, "Renum", 5)
    env.run()
    synced(env)
    before = local(env, "Renum")
    c = env.imap()
    c.delete(quote("Renum"))
    c.logout()
    fill(env, "Renum", 5)  # the same messages, new UIDVALIDITY
    p = env.run("-d", "imap")
    assert FULL_FETCH.findall(p.stderr)
    assert "UIDVALIDITY changed" in p.stdout + p.stderr
    assert local(env, "Renum") == before


def test_server_restored_with_lower_modseq_is_listed_in_full(env: Env) -> None:
    """Only flags changed since the backup: same UIDVALIDITY and UIDNEXT, but HIGHESTMODSEQ
    back below the recorded one. The changes since that point are unknowable: full listing."""
    fill(env, "Back", 4)
    env.run()
    synced(env)
    backup = env.tmp / "server-backup"
    subprocess.run(["cp", "-a", str(env.user.home), str(backup)], check=True)
    srv = uids(env, "Back")
    for n in range(4):
        env.store("Back", srv[lf(msg(f"Back{n}"))], "+FLAGS", "\\Flagged")
    synced(env)
    assert all(f == {"\\Flagged"} for f in local(env, "Back").values())
    shutil.rmtree(env.user.home)
    subprocess.run(["cp", "-a", str(backup), str(env.user.home)], check=True)
    p = env.run("-d", "imap")
    assert "HIGHESTMODSEQ went back" in p.stderr
    assert FULL_FETCH.findall(p.stderr)
    server = {lf(b): f for f, b in env.server("Back").values()}
    assert server == local(env, "Back") and len(server) == 4


# ---- the store alone: a derived snapshot equals a full listing ----------------------------------


def flags_of(snap: Snapshot) -> dict[MessageId, frozenset[str]]:
    return {m: i.flags - {"\\Recent"} for m, i in snap.messages.items()}


def since_of(snap: Snapshot) -> Since:
    assert snap.modseq is not None
    return Since(snap.uidvalidity, snap.uidnext, snap.modseq, flags_of(snap))


async def _snapshots(st: ImapSettings, folder: str, since: Since | None) -> tuple[Snapshot, ...]:
    store = ImapStore(st)
    await store.connect()
    try:
        f = await store.open_folder(folder, True)
        derived = await f.snapshot(since)
        if st.debug is not None:
            st.debug("-- full --")
        full = await f.snapshot()
        return derived, full
    finally:
        await store.close()


@pytest.mark.parametrize(
    "ignore", [(), ("QRESYNC",), ("QRESYNC", "ESEARCH")], ids=["qresync", "condstore", "search"]
)
def test_derived_snapshot_equals_full_listing(
    dovecot: Dovecot, imap_user: User, tmp_path: Path, ignore: tuple[str, ...]
) -> None:
    env = Env(dovecot, imap_user, tmp_path)
    fill(env, "S", 30)
    lines: list[str] = []
    st = settings(dovecot, imap_user, ignore_caps=frozenset(ignore), debug=lines.append)
    _, base = asyncio.run(_snapshots(st, "S", None))
    srv = sorted(base.messages, key=int)
    env.store("S", int(srv[0]), "+FLAGS", "\\Answered")
    env.store("S", int(srv[1]), "+FLAGS", "\\Seen")
    for u in srv[5:25]:
        env.expunge("S", int(u))
    env.append("S", msg("S-new"), create=False)
    lines.clear()
    derived, full = asyncio.run(_snapshots(st, "S", since_of(base)))
    assert derived.derived and not full.derived
    assert flags_of(derived) == flags_of(full)
    assert (derived.uidvalidity, derived.uidnext, derived.modseq) == (
        full.uidvalidity,
        full.uidnext,
        full.modseq,
    )
    sent = "\n".join(lines).partition("-- full --")[0]
    assert ("VANISHED)" in sent) == (not ignore)
    assert ("UID SEARCH RETURN (ALL) ALL" in sent) == (ignore == ("QRESYNC",))
    assert len(FLAG_LINES.findall(sent)) == 3  # the two changed and the new one, of 11


@pytest.mark.parametrize("why", ["uidvalidity", "modseq", "uidnext", "nocondstore"])
def test_snapshot_since_a_point_that_does_not_hold_is_full(
    dovecot: Dovecot, imap_user: User, tmp_path: Path, why: str
) -> None:
    env = Env(dovecot, imap_user, tmp_path)
    fill(env, "P", 3)
    st = settings(dovecot, imap_user)
    _, base = asyncio.run(_snapshots(st, "P", None))
    s = since_of(base)
    known: dict[MessageId, frozenset[str]] = {**s.known, 999: frozenset()}  # not on the server
    bad = {
        "uidvalidity": Since(s.uidvalidity + 1, s.uidnext, s.modseq, known),
        "modseq": Since(s.uidvalidity, s.uidnext, s.modseq + 100, known),  # restored backup
        "uidnext": Since(s.uidvalidity, s.uidnext + 5, s.modseq, known),
        "nocondstore": Since(s.uidvalidity, s.uidnext, s.modseq, known),
    }[why]
    if why == "nocondstore":
        st = settings(dovecot, imap_user, ignore_caps=frozenset({"CONDSTORE", "QRESYNC"}))
    snap, _ = asyncio.run(_snapshots(st, "P", bad))
    assert not snap.derived
    assert 999 not in snap.messages and len(snap.messages) == 3


def test_enable_qresync_once_per_connection(dovecot: Dovecot, imap_user: User) -> None:
    lines: list[str] = []
    st = settings(dovecot, imap_user, debug=lines.append, maxconnections=1)

    async def body() -> None:
        store = ImapStore(st)
        await store.connect()
        try:
            for _ in range(2):
                f = await store.open_folder("INBOX", True)
                await f.snapshot()
        finally:
            await store.close()

    asyncio.run(body())
    assert sum("ENABLE QRESYNC" in x for x in lines if x.startswith("C: ")) == 1
    assert any(re.match(r"S: \* ENABLED.*QRESYNC", x) for x in lines)

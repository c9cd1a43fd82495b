"""Taking over an account the real OfflineIMAP synced: same config, same Maildir, same metadata.

OfflineIMAP 8 (Debian's offlineimap3, /usr/bin/offlineimap) fills the Maildir and its state from
the Dovecot fixture; mailtwin then runs with the same config and must adopt it all: nothing
copied, renamed or written on the server, OfflineIMAP's files untouched; later changes sync.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from imapclient import imap_utf7

from mailtwin.state.offlineimap import MAGIC, Adopted, adopt, folder_basename, read_plain_status
from mailtwin.stores.imap.store import ImapSettings, ImapStore
from mailtwin.stores.maildir import MaildirStore
from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg, quote

OFFLINEIMAP = Path("/usr/bin/offlineimap")
# Dovecot counts "UID STORE" as UID_STORE: a write whatever its prefix
WRITES = {"APPEND", "STORE", "EXPUNGE", "CREATE", "DELETE", "RENAME", "MOVE", "COPY"}

# server folder → [(message, flags)]: nested, non-ASCII, and each flag at least once
MAIL: dict[str, list[tuple[bytes, str]]] = {
    "INBOX": [(msg(1), ""), (msg(2), "\\Seen \\Flagged"), (msg(3), "\\Seen \\Answered")],
    "Work": [(msg(10), "\\Seen")],
    "Work/Projects": [(msg(20), ""), (msg(21), "\\Seen"), (msg(22), "\\Draft")],
    "Работа": [(msg(30), "\\Seen \\Flagged")],
}


def writes(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v and k.upper().removeprefix("UID_") in WRITES}


def local_name(folder: str, sep: str) -> str:
    """The Maildir folder OfflineIMAP (and mailtwin) make for a server folder."""
    return str(imap_utf7.encode(folder).decode()).replace("/", sep)


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    if not OFFLINEIMAP.exists():
        if os.environ.get("CI"):
            pytest.fail("offlineimap is not installed (CI must install offlineimap3)")
        pytest.skip("offlineimap is not installed: apt-get install offlineimap3")
    return Env(dovecot, imap_user, tmp_path)


def offlineimap(env: Env) -> None:
    p = subprocess.run(
        [str(OFFLINEIMAP), "-c", str(env.config), "-o", "-u", "quiet"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert p.returncode == 0 and "ERROR" not in p.stderr, f"offlineimap: {p.stdout}\n{p.stderr}"


def fill(env: Env) -> None:
    for folder, items in MAIL.items():
        for i, (body, flags) in enumerate(items):
            env.append(folder, body, flags, create=i == 0 and folder != "INBOX")


def synced_by_offlineimap(env: Env, sep: str, backend: str = "sqlite") -> None:
    """Fill the server, let OfflineIMAP sync it, and check that it did."""
    env.write_config(local=f"sep = {sep}")
    fill(env)
    offlineimap(env)
    for folder, items in MAIL.items():
        loc = env.local(local_name(folder, sep))
        assert sorted(b for _, b, _ in loc.values()) == sorted(lf(b) for b, _ in items)
        assert all(",U=" in k and ",FMD5=" in k for k in loc)
    if backend == "plain":
        to_plain(env.tmp / "meta" / "Account-test")


def to_plain(acct: Path) -> None:
    """Turn OfflineIMAP's SQLite status into the plain format older OfflineIMAPs wrote."""
    (acct / "LocalStatus").mkdir()
    for db in sorted((acct / "LocalStatus-sqlite").iterdir()):
        con = sqlite3.connect(db)
        rows = con.execute("SELECT id, flags, mtime, labels FROM status").fetchall()
        con.close()
        lines = [MAGIC % 2] + [f"{u}|{f}|{m}|{lb}" for u, f, m, lb in rows]
        (acct / "LocalStatus" / db.name).write_text("\n".join(lines) + "\n")
        db.unlink()
    (acct / "LocalStatus-sqlite").rmdir()


def offlineimap_state(env: Env) -> dict[str, tuple[bytes, int]]:
    """OfflineIMAP's own state files: content and mtime."""
    meta = env.tmp / "meta"
    files = [*meta.glob("Account-test/LocalStatus*/*"), *meta.glob("Repository-*/**/*")]
    return {
        str(p.relative_to(meta)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(files)
        if p.is_file()
    }


def bodies(env: Env, folder: str, sep: str) -> tuple[Counter[bytes], Counter[bytes]]:
    """(server, local) message bodies of a folder, as multisets, LF line ends."""
    srv = Counter(lf(b) for _, b in env.server(folder).values())
    loc = Counter(b for _, b, _ in env.local(local_name(folder, sep)).values())
    return srv, loc


def flags_by_body(env: Env, folder: str, sep: str) -> tuple[dict[bytes, set[str]], ...]:
    srv = {lf(b): set(f) for f, b in env.server(folder).values()}
    loc = {b: set(f) for f, b, _ in env.local(local_name(folder, sep)).values()}
    return srv, loc


CASES = [("sqlite", "."), ("sqlite", "/"), ("plain", ".")]
IDS = ["sqlite-sep-dot", "sqlite-sep-slash", "plain-sep-dot"]


# ---- adopt() on what OfflineIMAP wrote (runs before the wiring into sync_folder, too) -----------
async def adopt_all(env: Env, sep: str, notes: list[str]) -> dict[str, Adopted | None]:
    local = MaildirStore(env.maildir, sep=sep)
    remote = ImapStore(
        ImapSettings(
            host="127.0.0.1",
            port=env.dovecot.port,
            user=env.user.name,
            password=env.user.password,
            ssl=False,
            starttls=False,
            timeout=10,
            readonly=True,
            expunge=False,
        )
    )
    await remote.connect()
    out: dict[str, Adopted | None] = {}
    try:
        for f in await remote.list_folders():
            if not f.selectable:
                continue
            name_a = f.name.replace(f.sep, sep)
            fa = await local.open_folder(name_a, True)
            fb = await remote.open_folder(f.name, True)
            try:
                a, b = await fa.snapshot(), await fb.snapshot()
            finally:
                await fb.close()
                await fa.close()
            meta = env.tmp / "meta"
            out[imap_utf7.decode(f.name.encode())] = adopt(
                meta, "test", "test-remote", "test-local", name_a, f.name, sep, a, b, fa.fmd5,
                warn=notes.append,
            )  # fmt: skip
    finally:
        await remote.close()
    return out


@pytest.mark.parametrize(("backend", "sep"), CASES, ids=IDS)
def test_adopt_reads_what_offlineimap_wrote(env: Env, backend: str, sep: str) -> None:
    synced_by_offlineimap(env, sep, backend)
    before = offlineimap_state(env)
    notes: list[str] = []
    got = asyncio.run(adopt_all(env, sep, notes))
    assert notes == []
    assert set(got) == set(MAIL)
    for folder, adopted in got.items():
        assert adopted is not None, folder
        kind = "LocalStatus-sqlite" if backend == "sqlite" else "LocalStatus"
        assert adopted.source.parent.name == kind
        assert adopted.source.name == folder_basename(local_name(folder, "."))
        assert adopted.known == len(MAIL[folder]) == len(adopted.rows)
        server = env.server(folder)
        loc = env.local(local_name(folder, sep))
        for row in adopted.rows:
            assert isinstance(row.a, str) and isinstance(row.b, int)
            flags, body = server[row.b]
            lflags, lbody, _ = loc[row.a]
            assert lf(body) == lbody  # the pair is one message
            assert row.flags == flags == lflags
    assert offlineimap_state(env) == before


# ---- mailtwin takes over ---------------------------------------------------------------------
@pytest.mark.parametrize(("backend", "sep"), CASES, ids=IDS)
def test_takeover_copies_nothing_and_later_changes_sync(
    env: Env, dovecot: Dovecot, backend: str, sep: str
) -> None:
    synced_by_offlineimap(env, sep, backend)
    listing = env.listing()
    state = offlineimap_state(env)
    dovecot.command_counts(reset=True)
    env.run()
    assert writes(dovecot.command_counts()) == {}
    assert env.listing() == listing  # nothing added, removed, renamed or moved to cur/
    assert offlineimap_state(env) == state  # OfflineIMAP's files are never written

    # a flag, a new message and a deletion on each side
    inbox = {lf(b): uid for uid, (_, b) in env.server("INBOX").items()}
    env.store("INBOX", inbox[lf(msg(1))], "+FLAGS", "\\Flagged")
    env.append("INBOX", msg(4), create=False)
    work = {lf(b): uid for uid, (_, b) in env.server("Work").items()}
    env.expunge("Work", work[lf(msg(10))])
    loc = {b: p for _, b, p in env.local("INBOX").values()}
    p2 = loc[lf(msg(2))]
    p2.rename(p2.with_name(p2.name.split(":")[0] + ":2,S"))  # \Flagged taken off
    loc[lf(msg(3))].unlink()
    env.add_local(local_name("Work/Projects", sep), "1700000100.local.host", lf(msg(23)), "S")
    env.run()

    want = {
        "INBOX": {lf(msg(n)) for n in (1, 2, 4)},
        "Work": set(),
        "Work/Projects": {lf(msg(n)) for n in (20, 21, 22, 23)},
        "Работа": {lf(msg(30))},
    }
    for folder, expected in want.items():
        srv, loc_bodies = bodies(env, folder, sep)
        assert srv == loc_bodies == Counter(expected), folder
    srv_flags, loc_flags = flags_by_body(env, "INBOX", sep)
    assert srv_flags == loc_flags
    assert srv_flags[lf(msg(1))] == {"\\Flagged"}
    assert srv_flags[lf(msg(2))] == {"\\Seen"}
    assert srv_flags[lf(msg(4))] == set()
    for folder in ("Work/Projects", "Работа"):
        srv_flags, loc_flags = flags_by_body(env, folder, sep)
        assert srv_flags == loc_flags, folder

    # and then there is nothing left to do
    listing = env.listing()
    dovecot.command_counts(reset=True)
    env.run()
    assert writes(dovecot.command_counts()) == {}
    assert env.listing() == listing
    assert offlineimap_state(env) == state


def test_flags_changed_since_offlineimap_go_the_way_they_were_changed(env: Env) -> None:
    # Only OfflineIMAP's status tells a flag taken off one side from one never set on the
    # other: matching by content alone would put \Flagged and \Seen back.
    sep = "."
    synced_by_offlineimap(env, sep)
    p2 = next(p for _, b, p in env.local("INBOX").values() if b == lf(msg(2)))
    p2.rename(p2.with_name(p2.name.split(":")[0] + ":2,S"))  # \Flagged off, locally
    work = {lf(b): uid for uid, (_, b) in env.server("Work/Projects").items()}
    env.store("Work/Projects", work[lf(msg(21))], "-FLAGS", "\\Seen")  # \Seen off, on the server
    env.run()
    srv_flags, loc_flags = flags_by_body(env, "INBOX", sep)
    assert srv_flags[lf(msg(2))] == loc_flags[lf(msg(2))] == {"\\Seen"}
    srv_flags, loc_flags = flags_by_body(env, "Work/Projects", sep)
    assert srv_flags[lf(msg(21))] == loc_flags[lf(msg(21))] == set()


def test_uidvalidity_changed_since_offlineimap_is_noticed(env: Env, dovecot: Dovecot) -> None:
    sep = "."
    synced_by_offlineimap(env, sep)
    validity = env.tmp / "meta" / "Repository-test-remote" / "FolderValidity" / "Work.Projects"
    old = int(validity.read_text())
    # the folder is made again, its messages in another order: old UIDs name other messages now
    c = env.imap()
    typ, data = c.delete(quote("Work/Projects"))
    assert typ == "OK", data
    c.logout()
    for i, (body, flags) in enumerate(reversed(MAIL["Work/Projects"])):
        env.append("Work/Projects", body, flags, create=i == 0)
    c = env.imap()
    typ, data = c.status(quote("Work/Projects"), "(UIDVALIDITY)")
    c.logout()
    assert typ == "OK" and f"UIDVALIDITY {old} " not in data[0].decode() + " "

    p = env.run(check=False)  # it stops that folder or re-matches it: either way, loses nothing
    out = p.stdout + p.stderr
    assert "UIDVALIDITY" in out, out
    for _ in range(2):
        for folder, items in MAIL.items():
            srv, loc = bodies(env, folder, sep)
            assert srv == loc == Counter(lf(b) for b, _ in items), (folder, out)
            srv_flags, loc_flags = flags_by_body(env, folder, sep)
            assert srv_flags == loc_flags, (folder, out)  # no flags carried over by stale UIDs
        assert flags_by_body(env, "Work/Projects", sep)[0] == {
            lf(msg(20)): set(),
            lf(msg(21)): {"\\Seen"},
            lf(msg(22)): {"\\Draft"},
        }
        p = env.run(check=False)
        out = p.stdout + p.stderr


# ---- going back ------------------------------------------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "carryover.md"


def files_offlineimap_would_upload(maildir: Path) -> list[Path]:
    """Run the listing script of docs/carryover.md, as a user would."""
    m = re.search(r"python3 - \S+ <<'EOF'\n(.*?)\n\s*EOF\n", DOC.read_text(), re.DOTALL)
    assert m, "docs/carryover.md lost its listing script"
    code = textwrap.dedent(m.group(1))
    p = subprocess.run(
        [sys.executable, "-", str(maildir)], input=code, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    return [Path(line) for line in p.stdout.splitlines()]


def test_the_safe_way_back_to_offlineimap(env: Env, dovecot: Dovecot) -> None:
    sep = "."
    synced_by_offlineimap(env, sep)
    env.run()
    # what mailtwin then syncs: new mail both ways, a move by a mail client, a flag, deletions
    env.append("INBOX", msg(5), create=False)
    env.add_local("INBOX", "1700000200.mua.host", lf(msg(6)), "S")
    p21 = next(p for _, b, p in env.local("Work.Projects").values() if b == lf(msg(21)))
    p21.rename(env.maildir / "Work" / "cur" / p21.name)
    p1 = next(p for _, b, p in env.local("INBOX").values() if b == lf(msg(1)))
    p1.rename(p1.with_name(p1.name.split(":")[0] + ":2,S"))
    next(p for _, b, p in env.local("INBOX").values() if b == lf(msg(3))).unlink()
    work = {lf(b): uid for uid, (_, b) in env.server("Work/Projects").items()}
    env.expunge("Work/Projects", work[lf(msg(22))])
    env.run()

    aside = env.tmp / "aside"
    listed = files_offlineimap_would_upload(env.maildir)
    assert sorted(p.name for p in listed) == sorted(["1700000200.mua.host:2,S", p21.name])
    for p in listed:
        dst = aside / p.relative_to(env.maildir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        p.rename(dst)
    dovecot.command_counts(reset=True)
    offlineimap(env)
    assert writes(dovecot.command_counts()) == {}
    want = {
        "INBOX": [msg(1), msg(2), msg(5), msg(6)],
        "Work": [msg(10), msg(21)],
        "Work/Projects": [msg(20)],
        "Работа": [msg(30)],
    }
    for folder, items in want.items():
        srv, loc = bodies(env, folder, sep)
        assert srv == loc == Counter(lf(b) for b in items), folder
    assert flags_by_body(env, "INBOX", sep)[1][lf(msg(1))] == {"\\Seen"}
    listing = env.listing()
    offlineimap(env)
    assert writes(dovecot.command_counts()) == {}
    assert env.listing() == listing


# ---- the fixtures of the unit tests, checked against OfflineIMAP's own code --------------------
def offlineimap_python(code: str) -> str:
    """Run ``code`` in the Python OfflineIMAP runs with, its package importable."""
    root = OFFLINEIMAP.resolve().parent
    p = subprocess.run(
        ["/usr/bin/python3", "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n{code}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_folder_basename_matches_offlineimap(env: Env) -> None:
    names = ["INBOX", "Work/Projects", "Work.Projects", "&BCAEMAQxBD4EQgQw-", "", ".", "a/.", "/"]
    out = offlineimap_python(
        "import json\n"
        "from offlineimap.folder.Base import BaseFolder\n"
        "f = BaseFolder.__new__(BaseFolder)\n"
        "res = []\n"
        f"for n in {names!r}:\n"
        "    f.name = n\n"
        "    res.append(f.getfolderbasename())\n"
        "print(json.dumps(res))"
    )
    assert json.loads(out) == [folder_basename(n) for n in names]


def test_plain_status_reads_as_in_offlineimap(env: Env, tmp_path: Path) -> None:
    p = tmp_path / "INBOX"
    p.write_text(f"{MAGIC % 2}\n1||0|\n2|FS|1700000000|\n3|RS|0|work, home\n17|DFRST|0|\n2|S|0|\n")
    out = offlineimap_python(
        "import json\n"
        "from offlineimap.folder.LocalStatus import LocalStatusFolder\n"
        "f = LocalStatusFolder.__new__(LocalStatusFolder)\n"
        f"f.filename = {str(p)!r}\n"
        "f.messagelist = {}\n"
        "f.cachemessagelist()\n"
        "print(json.dumps({u: ''.join(sorted(m['flags'])) for u, m in f.messagelist.items()}))"
    )
    theirs = {int(u): f for u, f in json.loads(out).items()}
    ours = {u: "".join(sorted(f)) for u, f in read_plain_status(p).items()}
    assert ours == theirs == {1: "", 2: "S", 3: "RS", 17: "DFRST"}


def test_windows_compatible_names_carry_over_and_stay(env: Env, dovecot: Dovecot) -> None:
    """maildir-windows-compatible: '!' before the flags instead of ':'. OfflineIMAP's files are
    taken over as they are, and what mailtwin writes or renames keeps that form."""
    env.write_config(local="sep = /", account="maildir-windows-compatible = yes")
    fill(env)
    offlineimap(env)

    def files() -> dict[str, Path]:
        return {p.name: p for p in env.maildir.rglob("*") if p.parent.name in ("cur", "new")}

    names = list(files())
    assert len(names) == sum(len(v) for v in MAIL.values())
    assert all(":" not in n for n in names) and any(n.endswith("!2,FS") for n in names)
    listing = env.listing()
    dovecot.command_counts(reset=True)
    env.run()
    assert writes(dovecot.command_counts()) == {}
    assert env.listing() == listing

    # a flag set in the Maildir reaches the server; mail from the server lands with '!' names
    seen_flagged = next(p for p in files().values() if p.read_bytes() == lf(msg(2)))
    assert seen_flagged.name.endswith("!2,FS")
    seen_flagged.rename(seen_flagged.with_name(seen_flagged.name.replace("!2,FS", "!2,FRS")))
    env.append("INBOX", msg(4), "\\Seen", create=False)
    env.run()
    flags = {lf(b): f for f, b in env.server("INBOX").values()}
    assert "\\Answered" in flags[lf(msg(2))]
    new = [p for p in files().values() if p.read_bytes() == lf(msg(4))]
    assert len(new) == 1 and new[0].name.endswith("!2,S") and ":" not in new[0].name
    assert all(":" not in n for n in files())

"""A hostile or broken server, end to end: folder names that would reach outside the Maildir
root or break it, and responses that are malformed, endless or huge. Each fails its folder (or
its account) with clear ERROR lines and exit 1, writes nothing outside the Maildir root, holds
memory bounded (the server cannot push its bytes into us), and leaves the other folders and the
other account (on Dovecot) synced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailtwin.stores.imap import probe, sasl
from tests.dovecot import Dovecot, User
from tests.fakeimap import FakeImap, Message, Request, Session
from tests.integration.helpers import msg

FILLER = 256 * 1024 * 1024  # what a hostile server tries to push: far more than any cap
BOUNDED = 64 * 1024 * 1024  # what it may get out before we hang up (caps + socket buffers)
BODY = b"Message-ID: <good@fake>\r\nSubject: hello\r\n\r\nhello\r\n"


@pytest.fixture
def fake() -> Iterator[FakeImap]:
    f = FakeImap(folders={b"INBOX": [Message(1, BODY)], b"Good": [Message(1, BODY)]})
    with f.running():
        yield f


def config(tmp: Path, fake: FakeImap, dovecot: Dovecot | None, user: User | None, sep: str) -> Path:
    text = f"""[general]
accounts = fake{", real" if dovecot else ""}
metadata = {tmp}/meta
socktimeout = 10

[Account fake]
localrepository = fake-local
remoterepository = fake-remote

[Repository fake-local]
type = Maildir
localfolders = {tmp}/root/Fake
sep = {sep}

[Repository fake-remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {fake.port}
remoteuser = joe
remotepass = pw-fake-joe
ssl = no
starttls = no
"""
    if dovecot is not None and user is not None:
        text += f"""
[Account real]
localrepository = real-local
remoterepository = real-remote

[Repository real-local]
type = Maildir
localfolders = {tmp}/root/Real

[Repository real-remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {dovecot.port}
remoteuser = {user.name}
remotepass = {user.password}
ssl = no
starttls = no
"""
    path = tmp / "rc"
    path.write_text(text)
    path.chmod(0o600)
    return path


def run(rc: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailtwin", "-c", str(rc), "-o"],
        capture_output=True,
        text=True,
        timeout=240,
    )


def errors(p: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in p.stderr.splitlines() if line.startswith("ERROR:")]


def messages(folder: Path) -> list[bytes]:
    return [f.read_bytes() for sub in ("new", "cur") for f in sorted((folder / sub).iterdir())]


def tree(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*")}


# ---- folder names -----------------------------------------------------------------------------

HOSTILE = [
    b"..",
    b"../x",
    b"a/../../b",
    b"/abs",
    b".",
    b"",
    b"a\x00b",
    b"a\x1b[2Jb",
    b"tab\there",
    b"y" * 1000,
    b"z/" + b"w" * 300,
    b"cur",
    b"tmp",
    b"Good/new",
    b"\xff\xfe",
]


@pytest.mark.parametrize("sep", ["/", "."])
def test_hostile_folder_names_fail_alone(tmp_path: Path, fake: FakeImap, sep: str) -> None:
    for name in HOSTILE:
        fake.folders[name] = [Message(1, BODY)]
    rc = config(tmp_path, fake, None, None, sep)
    p = run(rc)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    root = tmp_path / "root" / "Fake"
    # the good folders synced
    assert messages(root / "INBOX") == [BODY.replace(b"\r\n", b"\n")]
    assert messages(root / "Good") == [BODY.replace(b"\r\n", b"\n")]
    # nothing outside the root, and the root itself is no Maildir
    assert sorted(os.listdir(tmp_path)) == ["meta", "rc", "root"]
    assert os.listdir(tmp_path / "root") == ["Fake"]
    assert not {"cur", "new", "tmp"} & set(os.listdir(root))
    # with sep '.', a '/' from the server becomes '.': "../x" is the plain directory "...x"
    fine = ["Good", "INBOX"] + (["../x", "/abs", "Good/new", "a/../../b"] if sep == "." else [])
    created = [line for line in p.stdout.splitlines() if "created folder" in line]
    assert sorted(created) == [f"  created folder {n} on the local side" for n in sorted(fine)]
    # one ERROR line per refused folder, naming it; no raw control character reaches the screen
    lines = errors(p)
    assert all(len(line) < 600 for line in lines), lines
    assert not any(c in p.stderr + p.stdout for c in "\x00\x1b\r"), p.stderr
    refused = {line.split(": folder ", 2)[1] for line in lines}
    assert len(lines) == len(refused), lines
    for name in (b"..", b"/abs", b".", b"a\x00b", b"a\x1b[2Jb", b"cur", b"tmp", b"\xff\xfe"):
        shown = repr(name.decode("utf-8", "surrogateescape"))
        if sep == "." and b"/" in name:
            continue  # '/' becomes '.': "/abs" is the plain directory ".abs" there
        assert any(shown in line for line in lines), (shown, lines)
    if sep == "/":
        assert any("'Good/new'" in line and "Maildir's own" in line for line in lines), lines
        assert any("'../x'" in line for line in lines), lines
        assert any("longer than 255 bytes" in line for line in lines), lines
    # no second run re-creates or re-fails anything differently: same errors, same tree
    before = tree(tmp_path / "root")
    again = run(rc)
    assert again.returncode == 1 and sorted(errors(again)) == sorted(lines)
    assert tree(tmp_path / "root") == before


def test_dry_run_refuses_the_names_a_real_run_refuses(tmp_path: Path, fake: FakeImap) -> None:
    """--dry-run says "would create" only for what a real run creates, and the same ERRORs."""
    for name in HOSTILE:
        fake.folders[name] = [Message(1, BODY)]
    rc = config(tmp_path, fake, None, None, "/")
    dry = subprocess.run(
        [sys.executable, "-m", "mailtwin", "-c", str(rc), "-o", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert dry.returncode == 1, dry.stderr
    assert not (tmp_path / "root").exists() or not list((tmp_path / "root").rglob("cur"))
    would = sorted(ln for ln in dry.stdout.splitlines() if "would create folder" in ln)
    real = run(rc)
    created = sorted(ln for ln in real.stdout.splitlines() if "created folder" in ln)
    assert [ln.replace("would create", "created") for ln in would] == created, (would, created)
    assert sorted(errors(dry)) == sorted(errors(real))


def test_bad_modified_utf7_names_sync_as_they_are(tmp_path: Path, fake: FakeImap) -> None:
    """Names stay in modified UTF-7 on disk (as OfflineIMAP keeps them): a name that is not
    valid modified UTF-7 is no danger there, only shown undecoded."""
    names = ["&Jjo", "R&D", "&AGE-", "&-&"]
    for raw in names:
        fake.folders[raw.encode()] = [Message(1, BODY)]
    p = run(config(tmp_path, fake, None, None, "/"))
    assert p.returncode == 0, p.stderr
    root = tmp_path / "root" / "Fake"
    for name in names:
        assert len(messages(root / name)) == 1
        assert f"folder {name}:" in p.stdout, p.stdout  # shown as sent, not decoded to a guess


# ---- malformed responses ----------------------------------------------------------------------


# the folder-level faults hit INBOX only: folder Good must sync all the same


async def huge_body(s: Session, r: Request) -> bool:
    if b"BODY.PEEK[]" not in r.line or s.selected != b"INBOX":
        return False
    await s.stream(b"* 1 FETCH (UID 1 BODY[] {1000000000000}\r\n", FILLER, "body")
    return True


async def huge_literal(s: Session, r: Request) -> bool:
    await s.stream(b'* LIST () "/" {1000000000000}\r\n', FILLER, "literal")
    return True


async def endless_line(s: Session, r: Request) -> bool:
    await s.stream(b"* OK ", FILLER, "line")
    return True


async def list_flood(s: Session, r: Request) -> bool:
    # well-formed lines, without end: only a count can stop it
    await s.stream(b"", FILLER, "flood", block=b'* LIST () "/" Folder\r\n' * 3000)
    return True


async def garbage(s: Session, r: Request) -> bool:
    if b"BODY.PEEK[]" in r.line or s.selected != b"INBOX":
        return False
    await s.send(
        b"* 1 FETCH (UID 1 FLAGS " + b"(" * 5000 + b")\r\n"
        b"* 2 FETCH \x00\xff{}[\r\n* 3 FETCH (UID x)\r\n" + r.tag + b" OK done\r\n"
    )
    return True


async def bad(s: Session, r: Request) -> bool:
    if r.args[:1] != [b"INBOX"]:
        return False
    await s.send(r.tag + b" BAD [PARSE] what is this\r\n")
    return True


async def bye(s: Session, r: Request) -> bool:
    if s.selected != b"INBOX":
        return False
    await s.send(b"* BYE shutting down now\r\n")
    s.writer.close()
    return True


SCENARIOS = {
    # name: (command, handler, words of the error, key of the streamed bytes); a fault in LIST
    # fails the whole account, one in a folder that folder only
    "huge body": ("UID FETCH", huge_body, "1000000000000-byte message", "body"),
    "huge literal": ("LIST", huge_literal, "1000000000000-byte literal", "literal"),
    "endless line": ("LIST", endless_line, "longer than", "line"),
    "LIST flood": ("LIST", list_flood, "lists more than 100,000 folders", "flood"),
    "garbage": ("UID FETCH", garbage, "nests deeper", None),
    "tagged BAD": ("SELECT", bad, "rejected our SELECT", None),
    "BYE mid-command": ("UID FETCH", bye, "shutting down now", None),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_broken_server_fails_its_account_only(
    tmp_path: Path, fake: FakeImap, dovecot: Dovecot, imap_user: User, scenario: str
) -> None:
    command, handler, words, key = SCENARIOS[scenario]
    fake.on(command, handler)
    real = msg(1)
    c = dovecot.client(imap_user)
    c.append("INBOX", None, None, real)
    c.logout()
    p = run(config(tmp_path, fake, dovecot, imap_user, "/"))
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    lines = errors(p)
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("ERROR: account fake:") and words in lines[0], (words, p.stderr)
    assert len(lines[0]) < 600, lines
    if key is not None:  # we hung up long before the server got its bytes out
        assert 0 < fake.sent_after(key) < BOUNDED, fake.sent_after(key)
    # nothing half-written on the fake account's side; the real account synced
    fake_root = tmp_path / "root" / "Fake"
    for tmpdir in fake_root.rglob("tmp"):
        assert not list(tmpdir.iterdir()), list(tmpdir.iterdir())
    if command != "LIST":
        assert "folder INBOX:" in lines[0]
        assert messages(fake_root / "Good") == [BODY.replace(b"\r\n", b"\n")]
    if scenario == "huge body":
        assert messages(fake_root / "INBOX") == []
    assert "account real: done" in p.stdout, p.stdout
    assert messages(tmp_path / "root" / "Real" / "INBOX") == [real.replace(b"\r\n", b"\n")]


def test_pre_flight_look_hangs_up_on_a_list_flood(fake: FakeImap) -> None:
    """The blocking look before the engine keeps the same bound, and leaves it to the engine."""

    async def login(s: Session, r: Request) -> bool:
        await s.send(r.tag + b" OK [CAPABILITY IMAP4rev1 LIST-STATUS CONDSTORE] in\r\n")
        return True

    fake.on("AUTHENTICATE", login)
    fake.on("LIST", list_flood)
    login_as = probe.Login(
        "127.0.0.1", fake.port, "joe", sasl.Password("pw-fake-joe"), ("PLAIN",), "", 10.0, None,
        False,
    )  # fmt: skip
    assert probe.look(login_as) is None
    assert 0 < fake.sent_after("flood") < BOUNDED, fake.sent_after("flood")

"""`mailtwin demo`: its server, fill, config and Maildir parts on their own, and the whole run."""

from __future__ import annotations

import configparser
import email
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailtwin.demo import maildir_counts, maildir_listing, write_config
from mailtwin.demo.imapfill import count_messages, fill
from mailtwin.demo.mailgen import FOLDERS, generate
from mailtwin.demo.server import (
    HOST,
    ServerKind,
    User,
    dovecot_installed,
    pid_alive,
    pymap_installed,
    start_server,
)

KINDS: list[ServerKind] = ["dovecot", "pymap"]
REPO = Path(__file__).resolve().parents[2]


def require(kind: str) -> None:
    """A missing server skips on a workstation; in CI it fails (CI installs both)."""
    if dovecot_installed() if kind == "dovecot" else pymap_installed():
        return
    what = "dovecot-imapd" if kind == "dovecot" else "pymap (pip install -e '.[demo]')"
    if os.environ.get("CI"):
        pytest.fail(f"{kind} is not installed (CI must install {what})")
    pytest.skip(f"{kind} is not installed: install {what}")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory Dovecot's mail user (nobody, when we are root) can pass through."""
    d = Path(tempfile.mkdtemp(prefix="mailtwin-demo-test-"))
    d.chmod(0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def demo_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


# ---- parts that need no sync engine ----------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_server_fill_count_stop(kind: ServerKind, scratch: Path) -> None:
    require(kind)
    server = start_server(scratch / "server", kind)
    pid = server.pid
    assert pid is not None and pid_alive(pid)
    try:
        user = server.new_user("demo")
        msgs = generate(60, seed=7)
        expected = Counter("/".join(m.folder) for m in msgs)
        assert fill(server.port, user, msgs) == dict(expected)
        counts = count_messages(server.port, user)
        assert {k: v for k, v in counts.items() if v} == dict(expected)
        # the flags came along: an independent client counts \Flagged in INBOX
        c = server.client(user)
        c.select("INBOX", readonly=True)
        _, data = c.search(None, "FLAGGED")
        c.logout()
        flagged = sum(1 for m in msgs if m.folder == ("INBOX",) and "\\Flagged" in m.flags)
        assert len(data[0].split()) == flagged
    finally:
        server.stop()
    assert server.pid is None
    assert not pid_alive(pid)
    with pytest.raises(OSError), socket.create_connection((HOST, server.port), timeout=2):
        pass


def test_mailgen_is_deterministic_and_realistic() -> None:
    msgs = generate(200, seed=1)
    assert msgs == generate(200, seed=1)
    assert msgs != generate(200, seed=2)
    assert {m.folder for m in msgs} == {f for f, _ in FOLDERS}
    ids = set()
    for m in msgs:
        assert b"\n" not in m.raw.replace(b"\r\n", b"")  # CRLF only
        parsed = email.message_from_bytes(m.raw)
        for h in ("From", "To", "Subject", "Date", "Message-ID"):
            assert parsed[h], h
        ids.add(parsed["Message-ID"])
    assert len(ids) == len(msgs)
    assert sum(b"Content-Transfer-Encoding: base64" in m.raw for m in msgs) >= 3
    flags = Counter(f for m in msgs for f in m.flags)
    assert flags["\\Seen"] and flags["\\Flagged"] and flags["\\Answered"]
    assert any(m.raw.count(b"\r\n") > 10 for m in msgs)


def test_write_config(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 1143, User("demo", "secret", tmp_path))
    assert cfg.stat().st_mode & 0o077 == 0  # holds a password
    ini = configparser.ConfigParser()
    ini.read(cfg)
    assert ini["general"]["accounts"] == "demo"
    assert ini["general"]["metadata"] == str(tmp_path / "state")
    assert ini["Account demo"]["localrepository"] == "demo-local"
    assert ini["Account demo"]["remoterepository"] == "demo-remote"
    assert dict(ini["Repository demo-local"]) == {
        "type": "Maildir",
        "localfolders": str(tmp_path / "Maildir"),
    }
    remote = ini["Repository demo-remote"]
    assert (remote["type"], remote["remotehost"], remote["remoteport"]) == ("IMAP", HOST, "1143")
    assert (remote["remoteuser"], remote["remotepass"]) == ("demo", "secret")
    assert (remote["ssl"], remote["starttls"]) == ("no", "no")


def test_maildir_counts_and_listing(tmp_path: Path) -> None:
    def folder(rel: str, cur: int, new: int) -> None:
        for sub in ("cur", "new", "tmp"):
            (tmp_path / rel / sub).mkdir(parents=True)
        for i in range(cur):
            (tmp_path / rel / "cur" / f"{i}.demo:2,S").write_text("x")
        for i in range(new):
            (tmp_path / rel / "new" / f"n{i}.demo").write_text("x")
        (tmp_path / rel / "tmp" / "partial").write_text("x")  # tmp/ is not mail yet

    folder("INBOX", 2, 1)
    folder("Work.Projects", 0, 4)
    folder("Work", 1, 0)
    folder("Work/Nested", 1, 1)  # a nested layout too
    assert maildir_counts(tmp_path) == {
        "INBOX": 3,
        "Work": 1,
        "Work.Projects": 4,
        "Work/Nested": 2,
    }
    listing = maildir_listing(tmp_path)
    assert "INBOX/cur/0.demo:2,S" in listing and len(listing) == 14


FAKE_CLI = textwrap.dedent(
    """\
    # a stand-in for mailtwin.cli that blocks in the first sync, to interrupt the demo there
    import sys, time, types
    from pathlib import Path
    def main(argv):
        Path(sys.argv[1]).write_text("syncing")
        time.sleep(60)
        return 0
    sys.modules["mailtwin.cli"] = types.ModuleType("mailtwin.cli")
    sys.modules["mailtwin.cli"].main = main
    from mailtwin.demo import main as demo
    raise SystemExit(demo(sys.argv[2:]))
    """
)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_demo_stops_its_server(how: signal.Signals, tmp_path: Path) -> None:
    if not dovecot_installed() and not pymap_installed():
        require("dovecot")
    marker = tmp_path / "syncing"
    p = subprocess.Popen(
        [sys.executable, "-c", FAKE_CLI, str(marker), "--messages", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=demo_env(),
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), p.communicate()[0]
        os.killpg(p.pid, how)  # Ctrl-C hits the whole foreground group
        out = p.communicate(timeout=60)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, out
    pid = int(re.findall(r"\(pid (\d+)\)", out)[0])
    assert f"Stopped the server (pid {pid})" in out
    assert not pid_alive(pid)
    removed = re.search(r"^Removed (\S+) ", out, re.M)
    assert removed and not Path(removed[1]).exists(), out


# ---- the whole demo: waits for the sync engine -------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_demo_runs_two_syncs(kind: str) -> None:
    require(kind)
    if importlib.util.find_spec("mailtwin.cli") is None:
        pytest.skip("waits for mailtwin.cli and the sync engine")
    r = subprocess.run(
        [sys.executable, "-m", "mailtwin", "demo", "--server", kind],
        capture_output=True,
        text=True,
        timeout=240,
        env=demo_env(),
        stdin=subprocess.DEVNULL,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "First sync" in out
    assert "Second sync changed nothing" in out
    assert re.search(r"^\s+total\s+200$", out, re.M), out
    pid = int(re.findall(r"\(pid (\d+)\)", out)[0])
    assert not pid_alive(pid)

"""Network and server faults, end to end through the CLI, with a proxy in front of Dovecot.

A connection cut or stalled in the middle of a download or an upload, a refused connection, a
folder the server will not open, a message the server will not take: each run that meets one
exits non-zero with one clear line, deletes nothing, leaves no partial file, and the next run
(without the fault) converges with no duplicate; the run after that writes nothing.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg, server_file
from tests.proxy import Proxy

TIMEOUT = 2  # socktimeout, seconds
WRITES = {"APPEND", "STORE", "EXPUNGE", "CREATE", "DELETE", "RENAME", "MOVE", "COPY"}
BIG = 300_000  # bytes of a large message's body: a cut at a few hundred KB falls inside one


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path, proxy: Proxy) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    # one connection: a fault armed by the first matching command then meets the bytes that
    # follow it (with three, the next batch may go out on another connection); test_kill and
    # test_parallel cover runs with folders side by side
    e.write_config(port=proxy.port, general=f"socktimeout = {TIMEOUT}", remote="maxconnections = 1")
    return e


def message(n: int) -> bytes:
    """Every tenth message is large (its body a few hundred KB), the others small."""
    if n % 10 == 5:
        return msg(n, body="x" * 76 + "\r\n" + ("y" * 78 + "\r\n") * (BIG // 80))
    return msg(n)


MID = re.compile(rb"^Message-ID: (<[^>]*>)", re.M | re.I)


def ids(bodies: list[bytes]) -> Counter[str]:
    """Message-IDs of ``bodies``, counted (a duplicate shows as 2)."""
    out: Counter[str] = Counter()
    for b in bodies:
        m = MID.search(b)
        out[m.group(1).decode() if m else "<none>"] += 1
    return out


def server_ids(env: Env, folder: str = "INBOX") -> Counter[str]:
    return ids([b for _, b in env.server(folder).values()])


def local_ids(env: Env, folder: str = "INBOX") -> Counter[str]:
    return ids([b for _, b, _ in env.local(folder).values()])


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR:")]


def one_clear_error(p: object, *words: str) -> str:
    """The run failed with exactly one ERROR line holding ``words``, and no traceback."""
    stderr = p.stderr  # type: ignore[attr-defined]
    assert p.returncode == 1, (p.returncode, stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr, stderr
    lines = errors(stderr)
    assert len(lines) == 1, stderr
    for w in words:
        assert w.lower() in lines[0].lower(), (w, stderr)
    return lines[0]


def no_partial_files(env: Env, folder: str, server: set[bytes]) -> None:
    """Every file in new/ and cur/ is a whole message the server has; tmp/ is empty."""
    base = env.maildir / folder
    if not base.exists():
        return
    assert not any((base / "tmp").iterdir()), list((base / "tmp").iterdir())
    for _, body, path in env.local(folder).values():
        assert body in server, f"{path} is not a whole message ({len(body)} bytes)"


def converges(env: Env, dovecot: Dovecot, folders: dict[str, int]) -> None:
    """Run again (no fault): both sides hold the same messages, once each; then a run that
    writes nothing."""
    p = env.run(check=False)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    for folder, n in folders.items():
        srv, loc = server_ids(env, folder), local_ids(env, folder)
        assert srv == loc, (folder, srv - loc, loc - srv)
        assert len(srv) == n and set(srv.values()) == {1}, (folder, srv)
        assert not any((env.maildir / folder / "tmp").iterdir())
    before = env.listing()
    dovecot.command_counts(reset=True)
    p = env.run()
    used = {k for k, v in dovecot.command_counts().items() if v and k.upper() in WRITES}
    assert not used, used
    assert env.listing() == before
    assert p.stderr == ""


def fill_server(env: Env, n: int, folder: str = "INBOX") -> None:
    c = env.imap()
    if folder != "INBOX":
        c.create(folder)
    for i in range(1, n + 1):
        typ, data = c.append(folder, None, None, message(i))
        assert typ == "OK", data
    c.logout()


def fill_local(env: Env, n: int, folder: str = "INBOX") -> None:
    for i in range(1, n + 1):
        env.add_local(folder, f"1700000{i:03d}.local.host", lf(message(i)), "S" if i % 3 else "")


# ---- the proxy itself ----------------------------------------------------------------------


def test_proxy_cuts_and_stalls_where_told(env: Env, proxy: Proxy) -> None:
    import imaplib

    fill_server(env, 6)  # uid 5 is large
    c = imaplib.IMAP4("127.0.0.1", proxy.port, timeout=5)
    c.login(env.user.name, env.user.password)
    c.select("INBOX")
    cut = proxy.fault("cut", "server", 1000, trigger=b"BODY.PEEK[]")
    with pytest.raises(imaplib.IMAP4.abort):
        c.uid("FETCH", "5", "(BODY.PEEK[])")
    assert cut.fired.is_set()
    c = imaplib.IMAP4("127.0.0.1", proxy.port, timeout=1)
    c.login(env.user.name, env.user.password)
    c.select("INBOX")
    stall = proxy.fault("stall", "server", 1000, trigger=b"BODY.PEEK[]")
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        c.uid("FETCH", "5", "(BODY.PEEK[])")
    assert stall.fired.is_set() and time.monotonic() - start < 3
    proxy.refuse()
    with pytest.raises(imaplib.IMAP4.abort):
        imaplib.IMAP4("127.0.0.1", proxy.port, timeout=5)
    seen: list[int] = []
    proxy.on_client(b"NOOP", lambda _: seen.append(1))
    c = imaplib.IMAP4("127.0.0.1", proxy.port, timeout=5)
    c.login(env.user.name, env.user.password)
    c.noop()
    c.noop()  # a hook fires once
    c.logout()
    assert seen == [1] and proxy.refused == 1


# ---- connection cut ------------------------------------------------------------------------


def test_cut_mid_fetch_of_initial_sync(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill_server(env, 50)
    server = {lf(b) for _, b in env.server("INBOX").values()}
    # the second large message is being received when the connection goes
    fault = proxy.fault("cut", "server", BIG + BIG // 2, trigger=b"BODY.PEEK[]")
    p = env.run(check=False)
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "INBOX", "closed the connection", "127.0.0.1")
    assert len(env.server("INBOX")) == 50  # nothing deleted
    no_partial_files(env, "INBOX", server)
    got = len(env.local("INBOX"))
    assert 0 < got < 50, got  # what came before the cut stayed
    converges(env, dovecot, {"INBOX": 50})


def test_cut_mid_append_of_push(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill_local(env, 50)
    fault = proxy.fault("cut", "client", BIG + BIG // 2, trigger=b"APPEND")
    p = env.run(check=False)
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "INBOX", "127.0.0.1")
    assert len(env.local("INBOX")) == 50  # nothing deleted
    assert set(server_ids(env).values()) <= {1}
    converges(env, dovecot, {"INBOX": 50})


def test_cut_after_append_landed_before_we_heard(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    """The server took the upload, the connection went before its OK reached us: the next
    run finds the copies by content and uploads nothing again."""
    fill_local(env, 50)
    fault = proxy.fault("cut", "server", 0, trigger=b"APPEND")
    p = env.run(check=False)
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "INBOX", "closed the connection")
    assert len(server_ids(env)) == 50 and set(server_ids(env).values()) == {1}
    dovecot.command_counts(reset=True)
    env.run()
    assert dovecot.command_counts().get("APPEND", 0) == 0
    converges(env, dovecot, {"INBOX": 50})


def test_cut_after_part_of_an_upload_landed(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    """Several upload batches: the first lands, the cut falls in a later one."""
    fill_local(env, 50)
    c = env.imap()
    c.create("Other")
    c.logout()
    env.add_local("Other", "1700001000.other.host", lf(msg(1000)))
    # each large message is a batch of its own
    huge = "z" * 78 + "\r\n"
    for i in range(3):
        env.add_local("INBOX", f"1700002{i:03d}.huge.host", lf(msg(f"h{i}", body=huge * 110_000)))
    fault = proxy.fault("cut", "client", 12_000_000, trigger=b"APPEND")
    p = env.run(check=False)
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "127.0.0.1")
    assert len(env.local("INBOX")) == 53
    landed = server_ids(env)
    assert set(landed.values()) <= {1}
    converges(env, dovecot, {"INBOX": 53, "Other": 1})


def test_cut_mid_listing_deletes_nothing(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    """A folder's listing cut short must not read as "those messages were deleted"."""
    fill_server(env, 50)
    env.run()
    env.add_local("INBOX", "1700009999.local.host", lf(msg(9999)))
    # every message changed: the listing (of changes since the last sync) is long enough to cut
    c = env.imap()
    c.select("INBOX")
    c.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Flagged)")
    c.logout()
    before = env.listing()
    fault = proxy.fault("cut", "server", 600, trigger=b"(UID FLAGS)")
    p = env.run(check=False)
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "INBOX", "closed the connection")
    assert env.listing() == before
    assert len(env.server("INBOX")) == 50
    converges(env, dovecot, {"INBOX": 51})


@pytest.mark.parametrize("at", [b"STORE", b"EXPUNGE"])
def test_cut_while_writing_flags_and_deletions(
    env: Env, dovecot: Dovecot, proxy: Proxy, at: bytes
) -> None:
    fill_server(env, 20)
    env.run()
    for key, (_, body, path) in env.local("INBOX").items():
        n = int(MID.search(body).group(1)[2:-13])  # type: ignore[union-attr]
        if n <= 5:
            path.rename(path.parent.parent / "cur" / f"{key}:2,FS")
        elif n <= 10:
            path.unlink()
    env.store("INBOX", 20, "+FLAGS", "\\Answered")
    fault = proxy.fault("cut", "server", 0, trigger=at)  # the command may or may not be done
    p = env.run(check=False)
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "INBOX", "closed the connection")
    converges(env, dovecot, {"INBOX": 15})
    srv = {ids([b]).most_common(1)[0][0]: f for f, b in env.server("INBOX").values()}
    for n in range(1, 6):
        assert srv[f"<m{n}@example.org>"] == {"\\Flagged", "\\Seen"}
    assert srv["<m20@example.org>"] == {"\\Answered"}


# ---- a server that stops answering ---------------------------------------------------------


def test_stall_mid_fetch_times_out(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill_server(env, 50)
    server = {lf(b) for _, b in env.server("INBOX").values()}
    fault = proxy.fault("stall", "server", BIG + BIG // 2, trigger=b"BODY.PEEK[]")
    start = time.monotonic()
    p = env.run(check=False)
    took = time.monotonic() - start
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "INBOX", f"no answer within {TIMEOUT}")
    assert took < TIMEOUT + 8, took
    assert len(env.server("INBOX")) == 50
    no_partial_files(env, "INBOX", server)
    converges(env, dovecot, {"INBOX": 50})


def test_stall_mid_append_times_out(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill_local(env, 50)
    fault = proxy.fault("stall", "client", BIG + BIG // 2, trigger=b"APPEND")
    start = time.monotonic()
    p = env.run(check=False)
    took = time.monotonic() - start
    assert fault.fired.is_set()
    one_clear_error(p, "account test", "INBOX", f"within {TIMEOUT}")
    assert took < TIMEOUT + 8, took
    assert len(env.local("INBOX")) == 50
    converges(env, dovecot, {"INBOX": 50})


def test_stall_at_login_times_out(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill_server(env, 3)
    proxy.fault("stall", "server", 0, trigger=b"LOGIN")  # after the greeting: nothing more
    proxy.fault("stall", "server", 0, trigger=b"AUTHENTICATE")
    p = env.run(check=False)
    one_clear_error(p, "account test", f"no answer within {TIMEOUT}", "127.0.0.1")
    assert not (env.maildir / "INBOX").exists() or not env.local("INBOX")
    proxy.clear()
    converges(env, dovecot, {"INBOX": 3})


def test_no_greeting_times_out(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill_server(env, 3)
    proxy.fault("stall", "server", 0)  # the connection opens, the greeting never comes
    p = env.run(check=False)
    one_clear_error(p, "account test", f"no answer within {TIMEOUT}", "127.0.0.1")
    converges(env, dovecot, {"INBOX": 3})


def test_refused_connection(env: Env, dovecot: Dovecot, proxy: Proxy) -> None:
    fill_server(env, 3)
    env.run()
    env.append("INBOX", msg(100), create=False)
    before = env.listing()
    proxy.refuse(100)  # every connection of this run: the pre-flight look's and the engine's
    p = env.run(check=False)
    one_clear_error(p, "account test", "127.0.0.1")
    assert env.listing() == before
    proxy.clear()
    converges(env, dovecot, {"INBOX": 4})


# ---- a folder the server will not open -----------------------------------------------------


def test_folder_refused_by_server_fails_alone(env: Env, dovecot: Dovecot) -> None:
    fill_server(env, 3)
    fill_server(env, 4, "Locked")
    fill_server(env, 2, "Open")
    env.add_local("INBOX", "1700009999.local.host", lf(msg(9999)))
    locked = env.user.maildir / ".Locked"
    mode = locked.stat().st_mode
    os.chmod(locked, 0)  # Dovecot (not root) cannot open it: SELECT → NO [SERVERBUG]
    try:
        p = env.run(check=False)
    finally:
        os.chmod(locked, mode)
    one_clear_error(p, "account test", "Locked")
    # the other folders synced, both ways
    assert len(local_ids(env, "Open")) == 2
    assert len(local_ids(env)) == 4 and len(server_ids(env)) == 4
    assert not env.local("Locked") if (env.maildir / "Locked").exists() else True
    converges(env, dovecot, {"INBOX": 4, "Locked": 4, "Open": 2})


def test_folder_deleted_between_list_and_select(env: Env, proxy: Proxy) -> None:
    fill_server(env, 2)
    fill_server(env, 2, "Gone")
    fill_server(env, 2, "Stays")

    def delete_gone(_: bytes) -> None:
        c = env.imap()
        typ, data = c.delete("Gone")
        assert typ == "OK", data
        c.logout()

    # after our LIST listed it, just before our SELECT of it reaches the server
    hook = proxy.on_client(b"SELECT Gone", delete_gone)
    p = env.run(check=False)
    assert hook.calls == 1 and not proxy.errors, proxy.errors
    one_clear_error(p, "account test", "Gone")
    assert len(local_ids(env, "Stays")) == 2 and len(local_ids(env)) == 2


# ---- a message the server will not take ----------------------------------------------------


def test_message_refused_by_server_fails_alone(env: Env, dovecot: Dovecot) -> None:
    fill_local(env, 20)
    # Dovecot refuses a zero-byte message ("NO Can't save a zero byte message")
    env.add_local("INBOX", "1700000999.empty.host", b"")
    dovecot.command_counts(reset=True)
    p = env.run(check=False)
    assert "Traceback" not in p.stderr
    assert p.returncode == 1, p.stderr
    problems = [line for line in p.stderr.splitlines() if "1700000999.empty.host" in line]
    assert len(problems) == 1, p.stderr
    assert "INBOX" in problems[0] and "zero byte" in problems[0], problems
    assert len(server_ids(env)) == 20 and set(server_ids(env).values()) == {1}
    # the next runs upload nothing else, and report the refused message again, once
    for _ in range(2):
        dovecot.command_counts(reset=True)
        p = env.run(check=False)
        assert p.returncode == 1, p.stderr
        assert dovecot.command_counts().get("APPEND", 0) == 1
        problems = [line for line in p.stderr.splitlines() if "1700000999.empty.host" in line]
        assert len(problems) == 1, p.stderr
        assert len(server_ids(env)) == 20 and set(server_ids(env).values()) == {1}
    assert len(env.local("INBOX")) == 21


def server_count(env: Env, folder: str = "INBOX") -> int:
    """Messages in a server folder, counted without reading any."""
    c = env.imap()
    typ, data = c.select(folder, readonly=True)
    c.logout()
    assert typ == "OK", data
    return int(data[0] or 0)


def test_message_the_server_cannot_read_fails_alone(env: Env, dovecot: Dovecot) -> None:
    """Dovecot hangs up ("BYE FETCH failed") on a message it cannot read: that message is
    reported, the others of the folder and the other folders sync."""
    fill_server(env, 12)
    fill_server(env, 2, "Archive")
    env.add_local("INBOX", "1700009999.local.host", lf(msg(9999)))
    os.chmod(server_file(env, "", 4), 0)  # Dovecot (not root) cannot open it
    try:
        for _ in range(2):  # and the run after that does the same, no more
            dovecot.command_counts(reset=True)
            p = env.run(check=False)
            assert "Traceback" not in p.stderr, p.stderr
            assert p.returncode == 1, p.stderr
            lines = [x for x in p.stderr.splitlines() if x.startswith(("ERROR", "WARNING"))]
            assert len(lines) == 1, p.stderr
            assert "INBOX" in lines[0] and "UID 4" in lines[0], lines
            want = {f"<m{n}@example.org>" for n in (*range(1, 13), 9999)} - {"<m4@example.org>"}
            assert local_ids(env) == Counter(want)
            assert server_count(env) == 13
            assert len(local_ids(env, "Archive")) == 2
            assert dovecot.command_counts().get("APPEND", 0) <= 1
    finally:
        os.chmod(server_file(env, "", 4), 0o600)  # where Dovecot moved it meanwhile
    converges(env, dovecot, {"INBOX": 13, "Archive": 2})

"""A run with nothing to do is settled before the engine starts: one LIST-STATUS per IMAP side,
no SELECT, and neither asyncio nor imapclient imported. Any change, on either side, still goes
to the engine; so does anything the pre-flight check is unsure of (a locked account, a lost
state, a folder only one side has)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, age, lf, msg
from tests.proxy import Proxy

# runs the CLI in-process and reports whether the engine's modules were imported
PROBE = (
    "import sys; from mailtwin.cli import main; rc = main(sys.argv[1:]); "
    "print('ENGINE' if {'asyncio', 'imapclient'} & set(sys.modules) else 'LIGHT'); sys.exit(rc)"
)


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config()
    return e


def run(env: Env, *args: str) -> tuple[int, str, str]:
    p = subprocess.run(
        [sys.executable, "-c", PROBE, "-c", str(env.config), "-o", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    *out, kind = p.stdout.strip().splitlines()
    return p.returncode, kind, "\n".join(out) + p.stderr


def loaded_after_run(env: Env, modules: tuple[str, ...]) -> tuple[int, list[str] | None, str]:
    """A quiet run of the CLI in-process: its exit code, which of ``modules`` it imported, and
    its output (for the assertion message)."""
    code = (
        "import sys; from mailtwin.cli import main; rc = main(sys.argv[1:]); "
        f"print(sorted(set({modules!r}) & set(sys.modules))); sys.exit(rc)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, "-c", str(env.config), "-o", "-u", "quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    last = (p.stdout.strip().splitlines() or [""])[-1]
    loaded = ast.literal_eval(last) if last.startswith("[") else None  # None: it never got there
    return p.returncode, loaded, p.stdout + p.stderr


def test_noop_run_is_settled_without_the_engine(env: Env, dovecot: Dovecot) -> None:
    env.append("INBOX", msg(1), create=False)
    env.append("Work/Sub", msg(2))
    env.append("Caf\u00e9", msg(3))
    env.run()
    age(env)
    env.run()  # the run after one that wrote records the stamps
    age(env)
    dovecot.command_counts(reset=True)
    rc, kind, out = run(env)
    assert (rc, kind) == (0, "LIGHT"), out
    assert "account test: syncing" in out and "account test: done" in out
    # (Dovecot counts the commands after login; LOGIN itself is the login process's)
    used = {k: v for k, v in dovecot.command_counts().items() if v}
    assert used == {"LIST": 1, "LOGOUT": 1}, used


def test_noop_run_imports_little(env: Env) -> None:
    """Start-up is most of a no-op run's cost: what only the engine, a failure or a rare option
    needs stays unimported (the logging capture, base64, the idna codec for an ASCII host)."""
    env.append("INBOX", msg(1), create=False)
    env.run()
    age(env)
    env.run()
    age(env)
    extra = "logging", "base64", "encodings.idna", "mailtwin.secrets.netrc", "mailtwin.sync.runner"
    rc, loaded, out = loaded_after_run(env, extra)
    assert (rc, loaded) == (0, []), out


def test_an_engine_run_against_dovecot_leaves_imapclient_unimported(env: Env) -> None:
    """Every response Dovecot sends an incremental sync (LIST-STATUS, SELECT with QRESYNC,
    VANISHED, FETCH of flags and bodies, APPENDUID) takes parse.py's fast paths: imapclient,
    with what it imports, is loaded only for a shape those do not take."""
    env.append("INBOX", msg(1), create=False)
    env.append("INBOX", msg(2), create=False)
    env.append("Caf\u00e9", msg(3))  # a modified UTF-7 name
    env.run()
    env.append("INBOX", msg(4), create=False)
    env.store("INBOX", 1, "+FLAGS", "\\Seen")
    env.expunge("INBOX", 2)
    env.add_local("Caf&AOk-", "1700000005.local.host", lf(msg(5)))  # named as OfflineIMAP does
    rc, loaded, out = loaded_after_run(env, ("asyncio", "imapclient"))
    assert (rc, loaded) == (0, ["asyncio"]), out
    assert len(env.local("INBOX")) == 2 and len(env.server("Caf\u00e9")) == 2


@pytest.mark.parametrize("change", ["server_new", "server_flag", "server_folder", "local_new"])
def test_any_change_goes_to_the_engine(env: Env, change: str) -> None:
    env.append("INBOX", msg(1), create=False)
    env.run()
    age(env)
    env.run()
    age(env)
    assert run(env)[1] == "LIGHT"
    if change == "server_new":
        env.append("INBOX", msg(2), create=False)
    elif change == "server_flag":
        env.store("INBOX", next(iter(env.server("INBOX"))), "+FLAGS", "\\Flagged")
    elif change == "server_folder":
        env.append("Fresh", msg(3))
    else:
        env.add_local("INBOX", "local1", lf(msg(4)))
        age(env)  # old enough to be trusted: only the content tells
    rc, kind, out = run(env)
    assert (rc, kind) == (0, "ENGINE"), out
    if change == "server_new":
        assert len(env.local("INBOX")) == 2
    elif change == "server_flag":
        assert any("\\Flagged" in f for f, _, _ in env.local("INBOX").values())
    elif change == "server_folder":
        assert len(env.local("Fresh")) == 1
    else:
        assert len(env.server("INBOX")) == 2
    age(env)
    env.run()  # the engine's own run after a write records the stamps
    age(env)
    assert run(env)[1] == "LIGHT"


def test_doubt_goes_to_the_engine(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    env.run()
    age(env)
    env.run()
    age(env)
    # -d, --dry-run and -f want the engine's own output
    assert run(env, "-d", "imap")[1] == "ENGINE"
    assert run(env, "--dry-run")[1] == "ENGINE"
    assert run(env, "-f", "INBOX")[1] == "ENGINE"
    # a lost state: the engine rebuilds it by content, without copying anything
    db = env.tmp / "meta" / "Account-test" / "mailtwin.db"
    for p in db.parent.glob("mailtwin.db*"):
        p.unlink()
    rc, kind, out = run(env)
    assert (rc, kind) == (0, "ENGINE"), out
    assert len(env.local("INBOX")) == 1 and len(env.server("INBOX")) == 1


def test_tls_and_the_default_mechanisms_are_the_engines(
    dovecot: Dovecot, imap_user: User, tmp_path: Path
) -> None:
    env = Env(dovecot, imap_user, tmp_path)
    # implicit TLS verified against the test CA; Dovecot offers CRAM-MD5, first by default
    env.write_config(port=dovecot.tls_port, ssl=True, remote=f"sslcacertfile = {dovecot.cert}")
    env.append("INBOX", msg(1), create=False)
    env.run()
    age(env)
    env.run()
    age(env)
    rc, kind, out = run(env)
    assert (rc, kind) == (0, "LIGHT"), out
    # a pin that does not match: the look gives up, and the engine refuses and says why
    env.write_config(port=dovecot.tls_port, ssl=True, remote="cert_fingerprint = " + "ab" * 32)
    rc, kind, out = run(env)
    assert rc == 1 and kind == "ENGINE" and "cert_fingerprint" in out, out


def test_wrong_password_reaches_the_server_once(
    dovecot: Dovecot, imap_user: User, tmp_path: Path, proxy: Proxy
) -> None:
    env = Env(dovecot, imap_user, tmp_path)
    env.write_config(port=proxy.port)
    env.append("INBOX", msg(1), create=False)
    env.run()
    age(env)
    env.run()  # settled: the next run would look at the server before the engine
    age(env)
    env.write_config(port=proxy.port, password="wrong")
    before = proxy.connections
    rc, kind, out = run(env)
    assert rc == 1 and kind == "LIGHT", out
    assert out.count("ERROR") == 1 and "refused" in out, out
    assert proxy.connections == before + 1


def test_local_change_skips_the_look_at_the_server(
    dovecot: Dovecot, imap_user: User, tmp_path: Path, proxy: Proxy
) -> None:
    env = Env(dovecot, imap_user, tmp_path)
    env.write_config(port=proxy.port, remote="maxconnections = 1")
    env.append("INBOX", msg(1), create=False)
    env.run()
    age(env)
    env.run()
    age(env)
    env.add_local("INBOX", "1700000002.local.host", lf(msg(2)))
    logins = proxy.on_client(b" AUTHENTICATE ", lambda sent: None, once=False)
    before = proxy.connections
    rc, kind, out = run(env)
    assert (rc, kind) == (0, "ENGINE"), out
    # the engine's login alone: the pre-flight connection, opened ahead while the Maildir
    # was looked at, is dropped before its login
    assert logins.calls == 1
    assert proxy.connections - before in (1, 2)
    assert len(env.server("INBOX")) == 2
    age(env)
    env.run()  # the run after one that wrote records the stamps
    age(env)
    # a change on the server alone still needs the look: the pre-flight logs in, then the engine
    env.append("INBOX", msg(3), create=False)
    age(env)
    before, logins.calls = proxy.connections, 0
    rc, kind, out = run(env)
    assert (rc, kind) == (0, "ENGINE"), out
    assert proxy.connections == before + 2
    assert logins.calls == 2
    assert len(env.local("INBOX")) == 3

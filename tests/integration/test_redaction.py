"""No secret in any output: the password, its AUTHENTICATE PLAIN blobs (with and without an
authorization identity) never show on stdout, stderr or in the ``-l`` log, whatever ``-d`` asks
for, with a wrong or a right password, over AUTHENTICATE PLAIN (with and without SASL-IR),
CRAM-MD5 or LOGIN, in ``--info``, in error messages and in a crash's traceback."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, msg
from tests.proxy import Proxy

DEBUG = "imap,maildir,thread,all"


def forms(user: str, password: str) -> list[str]:
    """Every form of the secret that must never show."""
    return [
        password,
        base64.b64encode(f"\0{user}\0{password}".encode()).decode(),
        base64.b64encode(f"{user}\0{user}\0{password}".encode()).decode(),
    ]


def assert_clean(texts: dict[str, str], secrets: list[str]) -> None:
    for where, text in texts.items():
        for s in secrets:
            assert s not in text, f"{s!r} in {where}:\n{text}"


def offer(keep: bytes, sasl_ir: bool) -> Callable[[bytes], bytes]:
    """The server's capabilities cut down to the SASL mechanisms in ``keep``."""

    def rewrite(data: bytes) -> bytes:
        data = re.sub(rb" AUTH=(?!(?:%s)\b)[-\w]+" % keep, b"", data)
        return data if sasl_ir else data.replace(b" SASL-IR", b"")

    return rewrite


# the way each login goes, and what its debug line shows
AUTH_PATHS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "plain-ir": (offer(b"PLAIN", True), "AUTHENTICATE PLAIN <redacted>"),
    "plain": (offer(b"PLAIN", False), "AUTHENTICATE PLAIN"),
    "login": (offer(b"NONE", False), "LOGIN"),
    "cram-md5": (offer(b"CRAM-MD5", False), "AUTHENTICATE CRAM-MD5"),
}


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    return Env(dovecot, imap_user, tmp_path)


@pytest.mark.parametrize("auth", AUTH_PATHS)
@pytest.mark.parametrize("right", [False, True], ids=["wrong-password", "right-password"])
def test_no_secret_in_any_output(
    env: Env, proxy: Proxy, imap_user: User, tmp_path: Path, auth: str, right: bool
) -> None:
    password = imap_user.password if right else "pw-wrong-" + imap_user.name
    rewrite, shows = AUTH_PATHS[auth]
    proxy.rewrite_server(rewrite)
    env.append("INBOX", msg(1), create=False)
    env.write_config(port=proxy.port, password=password)
    env.config.chmod(0o600)
    log = tmp_path / "run.log"
    p = env.run("-d", DEBUG, "-l", str(log), check=False)
    logged = log.read_text()
    assert p.returncode == (0 if right else 1), p.stderr
    # the debug output is there (and so is the masking): the test looks at real lines
    assert "C: " in p.stderr and "C: " in logged, p.stderr
    assert "<redacted>" in logged
    assert f"]: C: M1 {shows}" in logged, logged
    # masking by shape hits the client's login lines only, not the server's capability lists
    server_lines = [line for line in logged.splitlines() if "]: S: " in line]
    assert server_lines and not any("<redacted>" in line for line in server_lines), logged
    if right:
        assert len(env.local("INBOX")) == 1
    else:
        assert "refused" in p.stderr and "refused" in logged
    assert_clean(
        {"stdout": p.stdout, "stderr": p.stderr, "log": logged},
        forms(imap_user.name, password),
    )


def test_no_secret_in_info_and_crash(env: Env, imap_user: User, tmp_path: Path) -> None:
    secrets = forms(imap_user.name, imap_user.password)
    hook = tmp_path / "hook.py"
    # a bug at the account boundary whose message (and source line) holds the password
    hook.write_text(
        "import mailtwin.sync.account as _account\n"
        "async def _boom(self, stores, db):\n"
        f"    secret = {imap_user.password!r}\n"
        f"    raise RuntimeError('boom: ' + {imap_user.password!r} + ' ' + {secrets[1]!r})\n"
        "_account.AccountSync._sync_folders = _boom\n"
    )
    env.write_config(general=f"pythonfile = {hook}")
    env.config.chmod(0o600)
    log = tmp_path / "run.log"
    info = env.run("--info", "-d", DEBUG, "-l", str(log), check=False)
    assert info.returncode == 0, info.stderr
    assert "folder INBOX" in info.stdout
    crash = env.run("-d", DEBUG, "-l", str(log), check=False)
    assert crash.returncode == 1, crash.stderr
    logged = log.read_text()
    assert "RuntimeError: boom: <redacted> <redacted>" in crash.stderr
    assert "Traceback" in logged and "secret =" not in crash.stderr  # no locals
    assert_clean(
        {
            "info stdout": info.stdout,
            "info stderr": info.stderr,
            "crash stdout": crash.stdout,
            "crash stderr": crash.stderr,
            "log": logged,
        },
        secrets,
    )


def test_no_secret_in_config_errors(env: Env, imap_user: User, tmp_path: Path) -> None:
    """The user's nametrans fails with the password in its message: the error names the
    option, not the secret."""
    env.write_config(
        remote=f"nametrans = lambda f: (_ for _ in ()).throw(ValueError({imap_user.password!r}))"
    )
    env.config.chmod(0o600)
    p = env.run("-d", DEBUG, check=False)
    assert p.returncode != 0 and "nametrans" in p.stderr, p.stderr
    assert_clean(
        {"stdout": p.stdout, "stderr": p.stderr}, forms(imap_user.name, imap_user.password)
    )

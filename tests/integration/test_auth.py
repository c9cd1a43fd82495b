"""Logging in to the real Dovecot with each mechanism, from each secret source, and failing
clearly: PLAIN, LOGIN, CRAM-MD5 against its static passdb; XOAUTH2 and OAUTHBEARER against its
oauth2 passdb, which asks our fake provider (tests/oauth_server.py) whether a token is valid."""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, msg
from tests.oauth_server import OAuthServer


@pytest.fixture(scope="module")
def oauth(dovecot: Dovecot) -> Iterator[OAuthServer]:
    """The provider, on the port Dovecot's oauth2 passdb asks (see demo/server.py)."""
    with OAuthServer(dovecot.oauth_port) as server:
        yield server


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.append("INBOX", msg(1), create=False)
    return e


def without_password(env: Env, remote: str) -> None:
    """A config whose remote repository has no remotepass line."""
    env.write_config(remote=remote)
    text = re.sub(r"(?m)^remotepass = .*\n", "", env.config.read_text())
    env.config.write_text(text)


def client_lines(p_stderr: str) -> list[str]:
    return [line for line in p_stderr.splitlines() if "C: " in line]


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_password_mechanisms_log_in_and_sync(env: Env, mech: str) -> None:
    env.write_config(remote=f"auth_mechanisms = {mech}")
    p = env.run("-d", "imap")
    sent = client_lines(p.stderr)
    if mech == "LOGIN":
        assert any(re.search(r"C: M\d+ LOGIN ", line) for line in sent), sent
    else:
        assert any(f"AUTHENTICATE {mech}" in line for line in sent), sent
    assert env.user.password not in p.stdout + p.stderr
    assert len(env.local("INBOX")) == 1


def test_default_order_picks_cram_md5_before_plain(env: Env) -> None:
    env.write_config()
    p = env.run("-d", "imap")
    assert any("AUTHENTICATE CRAM-MD5" in line for line in client_lines(p.stderr))


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_wrong_password_fails_clearly_and_touches_nothing(env: Env, mech: str) -> None:
    env.write_config(password="wrong-secret", remote=f"auth_mechanisms = {mech}")
    p = env.run(check=False)
    assert p.returncode == 1, p.stderr
    assert f"login as '{env.user.name}' ({mech}) refused" in p.stderr
    assert "wrong-secret" not in p.stdout + p.stderr
    assert not env.maildir.exists() or not any(env.maildir.iterdir())


def oauth_config(env: Env, oauth: OAuthServer, mechanisms: str | None, refresh: str) -> None:
    lines = [
        "oauth2_client_id = mailtwin-test",
        "oauth2_client_secret = client-secret-xyz",
        f"oauth2_refresh_token = {refresh}",
        f"oauth2_request_url = {oauth.url}/token",
    ]
    if mechanisms:
        lines.append(f"auth_mechanisms = {mechanisms}")
    without_password(env, "\n".join(lines))


@pytest.mark.parametrize("mech", [None, "XOAUTH2", "OAUTHBEARER"], ids=["default", "x", "bearer"])
def test_oauth2_refresh_then_login_and_sync(env: Env, oauth: OAuthServer, mech: str | None) -> None:
    refresh = f"rt-{env.user.name}"
    oauth.refresh[refresh] = env.user.name
    before = len(oauth.posts("/token"))
    oauth_config(env, oauth, mech, refresh)
    p = env.run("-d", "imap")
    assert any(f"AUTHENTICATE {mech or 'XOAUTH2'}" in line for line in client_lines(p.stderr))
    posts = oauth.posts("/token")[before:]
    assert len(posts) == 1  # one refresh for the run
    assert posts[0]["refresh_token"] == refresh
    assert posts[0]["client_secret"] == "client-secret-xyz"
    token = next(t for t, u in oauth.access.items() if u == env.user.name)
    assert any(f["token"] == token for f in oauth.posts("/introspect"))  # Dovecot checked it
    out = p.stdout + p.stderr
    assert token not in out and refresh not in out and "client-secret-xyz" not in out
    assert len(env.local("INBOX")) == 1


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_rejected_token_is_an_auth_error(env: Env, oauth: OAuthServer, mech: str) -> None:
    """The server's JSON error challenge is answered, then its NO reported."""
    without_password(env, f"oauth2_access_token = not-a-valid-token\nauth_mechanisms = {mech}")
    p = env.run(check=False)
    assert p.returncode == 1, p.stderr
    assert f"({mech}) refused" in p.stderr and "not-a-valid-token" not in p.stderr
    assert not env.maildir.exists() or not any(env.maildir.iterdir())


def test_bad_refresh_token_names_the_repository_and_error(env: Env, oauth: OAuthServer) -> None:
    oauth_config(env, oauth, None, "revoked-token")
    p = env.run(check=False)
    assert p.returncode == 1, p.stderr
    assert "[Repository test-remote]: OAuth2 token refresh" in p.stderr
    assert "HTTP 400: invalid_grant" in p.stderr and "revoked-token" not in p.stderr


def test_no_allowed_mechanism_names_both_sides(env: Env) -> None:
    env.write_config(remote="auth_mechanisms = OAUTHBEARER")  # and no OAuth2 token
    p = env.run(check=False)
    assert p.returncode == 1, p.stderr
    assert "no allowed login mechanism: the server offers" in p.stderr
    assert "CRAM-MD5" in p.stderr and "auth_mechanisms allows OAUTHBEARER" in p.stderr


def test_password_from_a_command(env: Env) -> None:
    cmd = f"{shlex.quote(sys.executable)} -c \"print('{env.user.password}')\""
    without_password(env, f"remotepasscmd = {cmd}")
    env.run()
    assert len(env.local("INBOX")) == 1


def test_password_from_netrc(env: Env, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text(
        f"machine 127.0.0.1 login someone-else password nope\n"
        f"machine 127.0.0.1 login {env.user.name} password {env.user.password}\n"
    )
    without_password(env, "")
    env.run(env={"HOME": str(home)})
    assert len(env.local("INBOX")) == 1


def test_remote_identity_is_sent_as_authorization_id(env: Env) -> None:
    """Dovecot refuses an authorization identity other than the user unless it is a master
    user: the refusal shows that PLAIN carried it."""
    env.write_config(remote="auth_mechanisms = PLAIN\nremote_identity = someone-else")
    p = env.run(check=False)
    assert p.returncode == 1 and "(PLAIN) refused" in p.stderr, p.stderr
    env.write_config(remote=f"auth_mechanisms = PLAIN\nremote_identity = {env.user.name}")
    env.run()
    assert len(env.local("INBOX")) == 1


# ---- a scripted server: the challenge-response steps the real one does not show ----------------


def scripted(lines: list[bytes], caps: bytes) -> tuple[list[bytes], list[str], Exception | None]:
    """Log in as me/pw with ``Connection`` against a server that greets with ``caps`` and
    answers each line the client sends with the next of ``lines``; (client lines, debug lines,
    the error raised)."""
    import asyncio

    from mailtwin.stores.imap.transport import Connection

    got: list[bytes] = []
    debug: list[str] = []

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"* OK [CAPABILITY IMAP4rev1 " + caps + b"] scripted\r\n")
        for answer in lines:
            got.append(await r.readline())
            w.write(answer)
            await w.drain()
        await r.read()
        w.close()

    async def main() -> Exception | None:
        srv = await asyncio.start_server(serve, "127.0.0.1", 0)
        conn = Connection("127.0.0.1", srv.sockets[0].getsockname()[1], timeout=5,
                          debug=debug.append)  # fmt: skip
        async with srv:
            await conn.open()
            try:
                await conn.login("me", "pw", ("CRAM-MD5", "PLAIN"))
            except Exception as e:
                return e
            finally:
                await conn.close()
        return None

    return got, debug, asyncio.run(main())


def test_cram_md5_answers_the_servers_challenge() -> None:
    import base64

    from mailtwin.stores.imap import sasl

    challenge = b"<1896.697170952@postoffice.example.net>"
    got, debug, err = scripted(
        [b"+ " + base64.b64encode(challenge) + b"\r\n", b"M1 OK [CAPABILITY IMAP4rev1] in\r\n"],
        b"AUTH=CRAM-MD5",
    )
    assert err is None
    assert got == [
        b"M1 AUTHENTICATE CRAM-MD5\r\n",
        base64.b64encode(sasl.cram_md5("me", "pw", challenge)) + b"\r\n",
    ]
    assert "C: <redacted>" in debug


def test_plain_without_sasl_ir_and_an_unexpected_second_challenge() -> None:
    import base64

    from mailtwin.errors import ConnectionFailed

    got, debug, err = scripted([b"+ \r\n", b"+ \r\n"], b"AUTH=PLAIN")
    assert got == [b"M1 AUTHENTICATE PLAIN\r\n", base64.b64encode(b"\0me\0pw") + b"\r\n"]
    assert isinstance(err, ConnectionFailed) and "unexpected challenge" in str(err)
    assert not any("pw" in line.split("C: ")[-1] for line in debug if "C: " in line)


def test_logindisabled_says_what_was_offered_and_what_to_do() -> None:
    from mailtwin.errors import AuthError

    got, _, err = scripted([], b"STARTTLS LOGINDISABLED")
    assert got == []  # nothing sent: no password in plain text
    assert isinstance(err, AuthError)
    assert "the server offers none; auth_mechanisms allows CRAM-MD5, PLAIN" in str(err)
    assert err.hint and "starttls = yes" in err.hint

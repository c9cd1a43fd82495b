"""TLS end to end on the real Dovecot (its certificate is self-signed, with DNS:localhost and
IP:127.0.0.1): verified by default, pinned by fingerprint, STARTTLS never dropped, plain text
only when both options say so."""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, msg
from tests.proxy import Proxy


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.append("INBOX", msg(1), create=False)
    return e


def configure(
    env: Env,
    extra: str = "",
    *,
    port: int | None = None,
    ssl: bool = True,
    starttls: bool = False,
    host: str = "127.0.0.1",
) -> None:
    env.write_config(port=port or (env.dovecot.tls_port if ssl else None), ssl=ssl, remote=extra)
    text = env.config.read_text()
    text = text.replace("remotehost = 127.0.0.1\n", f"remotehost = {host}\n")
    text = text.replace("starttls = no\n", f"starttls = {'yes' if starttls else 'no'}\n")
    env.config.write_text(text)


def der(dovecot: Dovecot) -> bytes:
    return ssl.PEM_cert_to_DER_cert(dovecot.cert.read_text())


def downloaded(env: Env) -> list[Path]:
    return [p for p in env.maildir.rglob("*") if p.is_file() and p.parent.name in ("new", "cur")]


def assert_refused(env: Env, *words: str) -> str:
    """The run failed, said so in one error line (and a hint), and downloaded nothing."""
    p = env.run(check=False)
    assert p.returncode != 0, p.stderr
    errors = [line for line in p.stderr.splitlines() if "ERROR" in line or "error" in line]
    assert len(errors) == 1, p.stderr
    for w in words:
        assert w in p.stderr, p.stderr
    assert downloaded(env) == []
    return p.stderr


def test_implicit_tls_with_the_servers_certificate_as_ca(env: Env) -> None:
    configure(env, f"sslcacertfile = {env.dovecot.cert}")
    env.run()
    assert len(env.local("INBOX")) == 1


def test_self_signed_server_is_refused_with_the_line_that_accepts_it(env: Env) -> None:
    configure(env)
    sha = hashlib.sha256(der(env.dovecot)).hexdigest()
    err = assert_refused(env, "certificate is not trusted", f"cert_fingerprint = {sha}")
    assert "sslcacertfile" in err


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_pinned_fingerprint_is_trusted_without_a_ca(env: Env, digest: str) -> None:
    pin = hashlib.new(digest, der(env.dovecot)).hexdigest()
    if digest == "sha1":  # as a Windows "thumbprint" or openssl -fingerprint shows it
        pin = ":".join(pin[i : i + 2] for i in range(0, len(pin), 2)).upper()
    configure(env, f"cert_fingerprint = {'ab' * 32}, {pin}")
    env.run()
    assert len(env.local("INBOX")) == 1


def test_wrong_fingerprint_is_refused(env: Env) -> None:
    # the CA check passes: the pin still has to match
    configure(env, f"sslcacertfile = {env.dovecot.cert}\ncert_fingerprint = {'ab' * 32}")
    sha = hashlib.sha256(der(env.dovecot)).hexdigest()
    assert_refused(env, "matches no cert_fingerprint", f"cert_fingerprint = {sha}")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_host_name_and_ip_address_are_verified(env: Env, host: str) -> None:
    configure(env, f"sslcacertfile = {env.dovecot.cert}", host=host)
    env.run()
    assert len(env.local("INBOX")) == 1


def test_starttls_verifies_the_certificate(env: Env) -> None:
    configure(env, ssl=False, starttls=True)
    sha = hashlib.sha256(der(env.dovecot)).hexdigest()
    assert_refused(env, "certificate is not trusted", f"cert_fingerprint = {sha}")
    configure(env, f"sslcacertfile = {env.dovecot.cert}", ssl=False, starttls=True)
    env.run()
    assert len(env.local("INBOX")) == 1


def test_starttls_takes_a_pinned_fingerprint(env: Env) -> None:
    pin = hashlib.sha256(der(env.dovecot)).hexdigest()
    configure(env, f"cert_fingerprint = {'ab' * 32}", ssl=False, starttls=True)
    assert_refused(env, "matches no cert_fingerprint", f"cert_fingerprint = {pin}")
    configure(env, f"cert_fingerprint = {pin}", ssl=False, starttls=True)
    env.run()
    assert len(env.local("INBOX")) == 1


def test_stripped_starttls_stops_before_any_credential(env: Env, proxy: Proxy) -> None:
    hidden: list[bytes] = []

    def strip(data: bytes) -> bytes:
        if b" STARTTLS" in data:
            hidden.append(data)
        return data.replace(b" STARTTLS", b"")

    proxy.rewrite_server(strip)
    login = proxy.on_client(b"LOGIN", lambda _: None, once=False)
    auth = proxy.on_client(b"AUTHENTICATE", lambda _: None, once=False)
    configure(env, f"sslcacertfile = {env.dovecot.cert}", port=proxy.port, ssl=False, starttls=True)
    assert_refused(env, "does not offer STARTTLS")
    assert hidden and proxy.connections >= 1  # the greeting's [CAPABILITY ...] went by
    assert login.calls == 0 and auth.calls == 0


def test_plain_text_to_this_machine_syncs_without_a_warning(env: Env) -> None:
    configure(env, ssl=False, starttls=False)
    p = env.run()
    assert len(env.local("INBOX")) == 1
    assert "unencrypted" not in p.stderr and "warning" not in p.stderr.lower()

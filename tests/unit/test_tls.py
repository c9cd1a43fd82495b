"""TLS options and contexts, without a server: option values, client certificate files, the
plain-text warning, what each context verifies, and the words of a refused certificate."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest

from mailtwin.config import load_config
from mailtwin.config import tls as opts
from mailtwin.errors import ConfigError, ConnectionFailed
from mailtwin.stores.imap import tls
from mailtwin.stores.imap.tls import TlsPolicy
from mailtwin.stores.imap.transport import Connection

S = "Repository R"
SHA256 = "3f" * 32


def _error(fn: object, *args: object) -> ConfigError:
    assert callable(fn)
    with pytest.raises(ConfigError) as info:
        fn(*args)
    return info.value


# ---- cert_fingerprint ----


def test_fingerprints_accept_colons_case_commas_and_blanks() -> None:
    sha1_colons = ":".join(["BB"] * 20)
    value = f" {sha1_colons}, {SHA256.upper()}  {'a' * 128},{'b' * 56} {'c' * 96}"
    assert opts.fingerprints(value, S) == ("bb" * 20, SHA256, "a" * 128, "b" * 56, "c" * 96)
    assert opts.fingerprints(None, S) == ()
    assert opts.fingerprints("", S) == ()
    assert opts.fingerprints(f"{SHA256},{SHA256}", S) == (SHA256,)


@pytest.mark.parametrize("bad", ["abc", "0x" + "a" * 40, "g" * 64, "a" * 63, "a" * 65])
def test_fingerprints_refuse_what_is_no_digest(bad: str) -> None:
    exc = _error(opts.fingerprints, bad, S)
    assert exc.option == "cert_fingerprint"
    assert str(exc).startswith(f"[{S}] cert_fingerprint: {bad!r} is not a certificate fingerprint")


# ---- ssl_version and tls_level ----


@pytest.mark.parametrize(
    ("ssl_version", "tls_level", "lowest"),
    [
        (None, None, None),
        ("ssl23", None, None),
        (None, "tls_compat", None),  # tls_compat alone keeps Python's default
        (None, "tls_secure", None),  # Python's default (TLS 1.2) is stricter already
        (None, "tls_no_ssl", None),
        ("tls1_2", None, "TLSv1_2"),
        ("tls1_3", "tls_secure", "TLSv1_3"),
        ("tls1", "tls_compat", "TLSv1"),
        ("tls1_1", "tls_compat", "TLSv1_1"),
    ],
)
def test_lowest_version(ssl_version: str | None, tls_level: str | None, lowest: str | None) -> None:
    assert opts.lowest_version(ssl_version, tls_level, S) == lowest


@pytest.mark.parametrize(
    ("ssl_version", "tls_level", "option", "words"),
    [
        ("tls1", None, "ssl_version", "older than TLS 1.2"),
        ("tls1_1", "tls_no_ssl", "ssl_version", "older than TLS 1.2"),
        ("ssl3", "tls_compat", "ssl_version", "SSL 3.0 is broken"),
        ("tls2", None, "ssl_version", "'tls2' is not one of tls1, tls1_1"),
        (None, "tls_paranoid", "tls_level", "'tls_paranoid' is not one of tls_secure"),
    ],
)
def test_lowest_version_errors(
    ssl_version: str | None, tls_level: str | None, option: str, words: str
) -> None:
    exc = _error(opts.lowest_version, ssl_version, tls_level, S)
    assert exc.option == option and words in str(exc)


def test_too_old_version_hint_names_tls_compat() -> None:
    exc = _error(opts.lowest_version, "tls1", None, S)
    assert exc.hint and "tls_level = tls_compat" in exc.hint


# ---- the context a policy gives ----


def test_default_context_verifies_against_the_system() -> None:
    ctx = tls.context(TlsPolicy())
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(
    ("minimum", "expected"),
    [
        ("TLSv1_2", ssl.TLSVersion.TLSv1_2),
        ("TLSv1_3", ssl.TLSVersion.TLSv1_3),
        ("TLSv1", ssl.TLSVersion.TLSv1),  # the config allows it only with tls_compat
    ],
)
def test_context_minimum_version(minimum: str, expected: ssl.TLSVersion) -> None:
    assert tls.context(TlsPolicy(minimum=minimum)).minimum_version == expected


def test_pin_without_ca_checks_only_the_pin() -> None:
    ctx = tls.context(TlsPolicy(fingerprints=(SHA256,)))
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_pin_with_ca_file_checks_both(pair: tuple[Path, Path]) -> None:
    cert, _ = pair
    ctx = tls.context(TlsPolicy(cafile=str(cert), fingerprints=(SHA256,)))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_truststore_is_used_when_installed(
    monkeypatch: pytest.MonkeyPatch, pair: tuple[Path, Path]
) -> None:
    made: list[ssl.SSLContext] = []

    def fake_context(protocol: ssl._SSLMethod) -> ssl.SSLContext:
        made.append(ssl.create_default_context())
        return made[-1]

    fake = ModuleType("truststore")
    fake.SSLContext = fake_context  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "truststore", fake)
    assert tls.context(TlsPolicy()) is made[0]
    cert, _ = pair
    tls.context(TlsPolicy(cafile=str(cert)))  # a CA file of one's own: OpenSSL's context
    assert len(made) == 1


def test_client_certificate_is_loaded(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    tls.context(TlsPolicy(clientcert=str(cert), clientkey=str(key)))
    with pytest.raises(ssl.SSLError):
        tls.context(TlsPolicy(clientcert=str(cert)))  # the key is not in that file


# ---- pins and the words of a refusal ----


def test_pin_matches_every_digest_length() -> None:
    der = b"not really DER, any bytes hash"
    for name in ("sha1", "sha224", "sha256", "sha384", "sha512"):
        assert tls.pin_matches(der, ("00" * 20, hashlib.new(name, der).hexdigest()))
    assert not tls.pin_matches(der, ("00" * 32,))


def test_refusal_shows_the_line_that_accepts_the_certificate() -> None:
    der = b"certificate"
    sha = hashlib.sha256(der).hexdigest()
    err = tls.untrusted("h:993", "self-signed certificate", der)
    assert "\n" not in str(err) and "not trusted: self-signed certificate" in str(err)
    assert err.hint and f"cert_fingerprint = {sha}" in err.hint and "sslcacertfile" in err.hint
    assert not err.retry
    err = tls.pin_mismatch("h:993", der)
    assert sha in str(err) and err.hint and f"cert_fingerprint = {sha}" in err.hint


# ---- the plain-text warning ----


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LocalHost.", "a.localhost"]
)
def test_no_plaintext_warning_for_this_machine(host: str) -> None:
    assert opts.plaintext_warning(host) is None


@pytest.mark.parametrize(
    "host",
    ["imap.example.org", "10.0.0.1", "128.0.0.1", "::2", "localhost.example", "127.256.0.1"],
)
def test_plaintext_warning_for_other_hosts(host: str) -> None:
    warning = opts.plaintext_warning(host)
    assert warning is not None and host in warning and "unencrypted" in warning


def _config(tmp_path: Path, remote: str) -> Path:
    path = tmp_path / "rc"
    path.write_text(
        f"""[general]
accounts = A
metadata = {tmp_path}/meta

[Account A]
localrepository = L
remoterepository = R

[Repository L]
type = Maildir
localfolders = {tmp_path}/mail

[Repository R]
type = IMAP
remoteuser = me
{remote}
"""
    )
    return path


def test_plaintext_warning_comes_from_the_config(tmp_path: Path) -> None:
    warnings: list[str] = []
    plain = "ssl = no\nstarttls = no"
    load_config(_config(tmp_path, f"remotehost = imap.example.org\n{plain}"), (), warnings.append)
    assert warnings == [
        "[Repository R] ssl = no and starttls = no: the password and mail cross the network "
        "to imap.example.org unencrypted"
    ]
    warnings.clear()
    load_config(_config(tmp_path, f"remotehost = 127.0.0.1\n{plain}"), (), warnings.append)
    load_config(_config(tmp_path, "remotehost = x.org\nssl = no"), (), warnings.append)  # STARTTLS
    assert warnings == []


# ---- certificate files in the config ----


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, in two PEM files."""
    d = tmp_path_factory.mktemp("pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=client", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


def test_tls_options_reach_the_repository(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    cert, key = pair
    config = load_config(
        _config(
            tmp_path,
            f"remotehost = h\nsslclientcert = {cert}\nsslclientkey = {key}\n"
            f"cert_fingerprint = {SHA256}\nssl_version = tls1_3",
        ),
        (),
        lambda _: None,
    )
    repo = config.accounts["A"].remote
    assert (repo.sslclientcert, repo.sslclientkey) == (cert, key)
    assert repo.cert_fingerprint == (SHA256,) and repo.tls_version == "TLSv1_3"


@pytest.mark.parametrize(
    ("lines", "option", "words"),
    [
        ("sslclientcert = {cert}\nsslclientkey = {tmp}/nope.key", "sslclientkey", "cannot read"),
        ("sslclientcert = ~/nope.pem", "sslclientcert", "cannot read"),
        ("sslclientkey = {key}", "sslclientkey", "needs sslclientcert too"),
        ("sslclientcert = {cert}", "sslclientcert", "not a PEM certificate with its unencrypted"),
        ("sslclientcert = {cert}\nsslclientkey = {cert}", "sslclientkey", "not a PEM certificate"),
        ("sslcacertfile = {tmp}", "sslcacertfile", ""),
    ],
)
def test_bad_certificate_files_are_config_errors(
    tmp_path: Path, pair: tuple[Path, Path], lines: str, option: str, words: str
) -> None:
    cert, key = pair
    remote = "remotehost = h\n" + lines.format(cert=cert, key=key, tmp=tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, remote), (), lambda _: None)
    assert info.value.option == option and f"[Repository R] {option}: " in str(info.value)
    assert words in str(info.value)


def test_encrypted_client_key_fails_without_asking(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    cert, key = pair
    locked = tmp_path / "locked.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:x", "-out", str(locked)],
        check=True, capture_output=True,
    )  # fmt: skip
    exc = _error(opts.check_files, S, None, cert, locked)
    assert exc.option == "sslclientkey" and "unencrypted private key" in str(exc)


# ---- a blocking socket (the look before the engine starts) ----


def _serve_tls(pair: tuple[Path, Path]) -> tuple[socket.socket, threading.Thread]:
    """The client end of a socket pair whose other end does a TLS handshake with ``pair``."""
    client, server = socket.socketpair()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pair)

    def handshake() -> None:
        with contextlib.suppress(OSError), ctx.wrap_socket(server, server_side=True) as s:
            s.recv(1)  # until the client closes

    t = threading.Thread(target=handshake, daemon=True)
    t.start()
    return client, t


def test_wrap_blocking_verifies_then_checks_the_pin(pair: tuple[Path, Path]) -> None:
    sha = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pair[0].read_text())).hexdigest()
    cases: list[tuple[TlsPolicy, type[Exception] | None]] = [
        (TlsPolicy(), ssl.SSLCertVerificationError),  # self-signed, no CA
        (TlsPolicy(fingerprints=("ab" * 32,)), ConnectionFailed),
        (TlsPolicy(fingerprints=(sha,)), None),
    ]
    for policy, error in cases:
        sock, t = _serve_tls(pair)
        try:
            if error is None:
                tls.wrap_blocking(sock, policy, "client").close()
            else:
                with pytest.raises(error):
                    tls.wrap_blocking(sock, policy, "client")
        finally:
            sock.close()
            t.join(10)


# ---- the connection: SNI and the pin, against a one-line TLS server ----


def test_connection_sends_sni_for_names_and_checks_the_pin(pair: tuple[Path, Path]) -> None:
    sha = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pair[0].read_text())).hexdigest()
    names: list[str | None] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*pair)
    ctx.sni_callback = lambda _obj, name, _ctx: names.append(name)

    async def greet(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"* OK [CAPABILITY IMAP4rev1] hello\r\n")
        await w.drain()

    async def main() -> list[str]:
        server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        errors = []
        async with server:
            for host, pin in [("localhost", sha), ("127.0.0.1", sha), ("127.0.0.1", "ab" * 32)]:
                conn = Connection(
                    host, port, tls=True, timeout=10, tls_policy=TlsPolicy(fingerprints=(pin,))
                )
                try:
                    await conn.open()
                    assert "IMAP4REV1" in conn.caps
                except ConnectionFailed as e:
                    errors.append(str(e))
                finally:
                    await conn.close()
        return errors

    errors = asyncio.run(main())
    assert names == ["localhost", None, None]  # no SNI for an IP address (RFC 6066)
    assert len(errors) == 1 and f"(SHA-256 {sha}) matches no cert_fingerprint" in errors[0]

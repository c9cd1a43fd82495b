"""The login mechanisms as pure functions: choice and payloads (RFC 4616, 2195, 7628)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from mailtwin.stores.imap import sasl

DEFAULT = sasl.DEFAULT_MECHANISMS
DOVECOT = ["IMAP4REV1", "SASL-IR", "AUTH=PLAIN", "AUTH=LOGIN", "AUTH=CRAM-MD5", "AUTH=XOAUTH2"]


def test_default_order_is_offlineimaps() -> None:
    assert DEFAULT == ("GSSAPI", "XOAUTH2", "CRAM-MD5", "PLAIN", "LOGIN")


def test_first_allowed_that_the_server_offers() -> None:
    assert sasl.choose(DEFAULT, DOVECOT, has_token=False).mechanism == "CRAM-MD5"
    assert sasl.choose(DEFAULT, DOVECOT, has_token=True).mechanism == "XOAUTH2"
    assert sasl.choose(["PLAIN", "CRAM-MD5"], DOVECOT, False).mechanism == "PLAIN"
    # GSSAPI is skipped even when offered: mailtwin does not do it
    assert sasl.choose(DEFAULT, ["AUTH=GSSAPI", "AUTH=PLAIN"], False).mechanism == "PLAIN"


def test_login_command_counts_as_offered_unless_logindisabled() -> None:
    assert sasl.choose(["LOGIN"], ["IMAP4REV1"], False).mechanism == "LOGIN"
    caps = ["IMAP4REV1", "LOGINDISABLED", "AUTH=LOGIN"]  # AUTH=LOGIN is not the LOGIN command
    choice = sasl.choose(["LOGIN", "PLAIN"], caps, False)
    assert choice.mechanism is None and choice.offered == ()


def test_nothing_allowed_is_offered() -> None:
    choice = sasl.choose(["XOAUTH2"], DOVECOT, has_token=False)
    assert choice.mechanism is None
    assert choice.offered == ("CRAM-MD5", "PLAIN", "XOAUTH2", "LOGIN")


def test_plain_with_and_without_authorization_identity() -> None:
    assert sasl.plain("me", "pw") == b"\0me\0pw"
    assert sasl.plain("admin", "pä", "boss") == b"boss\0admin\0p\xc3\xa4"


def test_cram_md5_is_rfc_2195() -> None:
    # the example of RFC 2195 section 2
    challenge = b"<1896.697170952@postoffice.reston.mci.net>"
    answer = sasl.cram_md5("tim", "tanstaaftanstaaf", challenge)
    assert answer == b"tim b913a602c7eda7a495b4e6e7334d3890"
    expected = hmac.new(b"pw", b"c", hashlib.md5).hexdigest().encode()
    assert sasl.cram_md5("u", "pw", b"c") == b"u " + expected


def test_xoauth2_initial_response() -> None:
    assert sasl.xoauth2("me@example.org", "tok") == (
        b"user=me@example.org\x01auth=Bearer tok\x01\x01"
    )


def test_oauthbearer_initial_response_escapes_the_user() -> None:
    got = sasl.oauthbearer("a,b=c", "tok", "imap.example.org", 993)
    assert got == b"n,a=a=2Cb=3Dc,\x01host=imap.example.org\x01port=993\x01auth=Bearer tok\x01\x01"


def test_error_challenge_and_its_answer() -> None:
    status = base64.b64decode(base64.b64encode(b'{"status":"invalid_token"}'))
    assert sasl.error_challenge("OAUTHBEARER", status)
    assert sasl.error_challenge("XOAUTH2", status)
    assert not sasl.error_challenge("CRAM-MD5", b"{not json but a nonce}")
    assert not sasl.error_challenge("OAUTHBEARER", b"")
    assert sasl.abort("OAUTHBEARER") == b"\x01"
    assert sasl.abort("XOAUTH2") == b""


def test_password_source_has_no_token() -> None:
    src = sasl.Password("pw")
    assert src.password() == "pw" and not src.has_token

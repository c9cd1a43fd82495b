"""Login mechanisms as pure functions: which one to use, and what to send for it.

Names and default order are OfflineIMAP's ``auth_mechanisms`` (GSSAPI, XOAUTH2, CRAM-MD5, PLAIN,
LOGIN); OAUTHBEARER (RFC 7628) is mailtwin's addition. LOGIN means the IMAP LOGIN command, as in
OfflineIMAP. Payloads are returned raw; the transport base64-encodes them (RFC 3501 AUTHENTICATE).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from mailtwin.model import Frozen, _set

if TYPE_CHECKING:
    from mailtwin.errors import AuthError

DEFAULT_MECHANISMS = ("GSSAPI", "XOAUTH2", "CRAM-MD5", "PLAIN", "LOGIN")
KNOWN = frozenset({*DEFAULT_MECHANISMS, "OAUTHBEARER"})
SUPPORTED = frozenset({"XOAUTH2", "OAUTHBEARER", "CRAM-MD5", "PLAIN", "LOGIN"})
TOKEN_MECHANISMS = frozenset({"XOAUTH2", "OAUTHBEARER"})
# RFC 7628 3.2.3: after an error challenge the client sends this, and the server answers NO
OAUTH_ABORT = b"\x01"


class Secrets(Protocol):
    """Where a login's secrets come from; each call may block (a command, a keyring, an HTTP
    request) and raises MailtwinError naming the repository when it cannot answer."""

    @property
    def has_token(self) -> bool:
        """OAuth2 is configured (a token can be had without asking the server first)."""
        ...

    def password(self) -> str: ...

    def access_token(self) -> str: ...

    def token_rejected(self) -> None:
        """The server refused the access token: the next login fetches a new one."""
        ...


class Password(Frozen):
    """A password known in advance (and no OAuth2)."""

    __match_args__ = ("value",)
    __slots__ = __match_args__
    _hidden = frozenset(__match_args__)  # never in a repr
    value: str
    has_token = False

    def __init__(self, value: str = "") -> None:
        _set(self, "value", value)

    def password(self) -> str:
        return self.value

    def access_token(self) -> str:
        raise AssertionError("no OAuth2 token configured")  # choose() never picks it then

    def token_rejected(self) -> None:
        pass


class Choice(Frozen):
    __match_args__ = ("mechanism", "offered")
    __slots__ = __match_args__
    mechanism: str | None  # None: nothing allowed is offered
    offered: tuple[str, ...]  # what the server offers, for the error message

    def __init__(self, mechanism: str | None, offered: tuple[str, ...]) -> None:
        _set(self, "mechanism", mechanism)
        _set(self, "offered", offered)


def offered(caps: Iterable[str]) -> tuple[str, ...]:
    """The mechanisms a capability list offers; LOGIN is the command (mailtwin does not use
    AUTHENTICATE LOGIN), offered unless LOGINDISABLED."""
    caps = frozenset(c.upper() for c in caps)
    mechs = sorted(c[5:] for c in caps if c.startswith("AUTH=") and c != "AUTH=LOGIN")
    if "LOGINDISABLED" not in caps:
        mechs.append("LOGIN")
    return tuple(mechs)


def choose(allowed: Sequence[str], caps: Iterable[str], has_token: bool) -> Choice:
    """The first of ``allowed`` (the user's order) that the server offers and we can do; token
    mechanisms only with OAuth2 configured (as OfflineIMAP: XOAUTH2 is not tried without)."""
    have = offered(caps)
    for mech in allowed:
        if mech not in SUPPORTED or (mech in TOKEN_MECHANISMS and not has_token):
            continue
        if mech in have:
            return Choice(mech, have)
    return Choice(None, have)


def plain(user: str, password: str, authzid: str = "") -> bytes:
    """RFC 4616: authzid NUL authcid NUL password; ``authzid`` is OfflineIMAP's remote_identity."""
    return b"%s\0%s\0%s" % (authzid.encode(), user.encode(), password.encode())


def cram_md5(user: str, password: str, challenge: bytes) -> bytes:
    """RFC 2195: the user name, a space, and the hex HMAC-MD5 of the challenge."""
    import hashlib  # here: the config loader imports this module, and start-up time counts
    import hmac

    digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
    return b"%s %s" % (user.encode(), digest.encode())


def xoauth2(user: str, token: str) -> bytes:
    """Google's XOAUTH2 initial response."""
    return b"user=%s\x01auth=Bearer %s\x01\x01" % (user.encode(), token.encode())


def oauthbearer(user: str, token: str, host: str, port: int) -> bytes:
    """RFC 7628 section 3.1: a GS2 header naming the user, then host, port and bearer token."""
    gs2 = b"n,a=%s," % user.encode().replace(b"=", b"=3D").replace(b",", b"=2C")
    return b"%s\x01host=%s\x01port=%d\x01auth=Bearer %s\x01\x01" % (
        gs2,
        host.encode(),
        port,
        token.encode(),
    )


def error_challenge(mechanism: str, challenge: bytes) -> bool:
    """True for a token mechanism's error challenge (a JSON status): answer it with
    ``abort(mechanism)`` and the server then sends its tagged NO."""
    return mechanism in TOKEN_MECHANISMS and challenge.lstrip().startswith(b"{")


def abort(mechanism: str) -> bytes:
    """The answer to an error challenge: RFC 7628's single ^A; XOAUTH2 (Google) wants an empty
    response."""
    return b"" if mechanism == "XOAUTH2" else OAUTH_ABORT


def refused(where: str, user: str, mechanism: str, text: str) -> AuthError:
    """The error for a login the server refused (``text``: its words, already cut)."""
    from mailtwin.errors import AuthError

    token = mechanism in TOKEN_MECHANISMS
    return AuthError(
        f"{where}: login as {user!r} ({mechanism}) refused: {text}",
        hint="check the OAuth2 settings; `mailtwin auth ACCOUNT` gets a new refresh token"
        if token
        else "check the user name and password",
    )

"""Secrets out of every line mailtwin shows or logs.

Whoever resolves a secret (a password read from the config, a SASL blob built from it, an OAuth2
token) calls ``register``; every output path (the UI's lines, ``-d`` debug lines, the ``-l`` log,
tracebacks, error messages) passes its text through ``redact``. Debug lines are also masked by
shape: the arguments of ``LOGIN`` and ``AUTHENTICATE`` never show, whatever was registered.
"""

from __future__ import annotations

import re

MASK = "<redacted>"

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# an IMAP astring or SASL argument as it shows in a command line
_ARG = r'(?:"(?:[^"\\\r\n]|\\.)*"?|\{\d+\+?\}|[^\s"]+)'
# "C: <tag> LOGIN user pass" and "C: <tag> AUTHENTICATE mech [initial response]": the client's
# lines of ``-d imap`` (a capability list's "AUTH=LOGIN AUTH=PLAIN" or prose such as "login as
# 'joe' refused" stay as they are); the user name stays, for the log to be useful
# (compiled by re's cache on first use: most runs never show such a line)
_LOGIN = rf"(C: \S+ LOGIN\s+{_ARG}\s+){_ARG}"
_AUTHENTICATE = rf"(C: \S+ AUTHENTICATE\s+[\w-]+\s+){_ARG}"


def register(secret: str | bytes | None) -> None:
    """Mask ``secret`` (and the forms it takes when quoted or shown as a repr) from now on.
    Cheap enough to call for every login."""
    global _pattern
    if not secret:
        return
    text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
    forms = {
        text,
        text.replace("\\", "\\\\").replace('"', '\\"'),  # an IMAP quoted string
        repr(text)[1:-1],  # inside an exception's repr
    }
    new = {f for f in forms if f} - _secrets
    if new:
        _secrets.update(new)
        _pattern = None


def register_plain(user: str, password: str) -> None:
    """The SASL PLAIN blobs of a login (with and without an authorization identity)."""
    from binascii import b2a_base64  # base64.b64encode, without importing base64

    for authz in ("", user):
        raw = f"{authz}\0{user}\0{password}".encode()
        register(b2a_base64(raw, newline=False))


def redact(text: str) -> str:
    """``text`` with every registered secret and every LOGIN / AUTHENTICATE argument masked."""
    global _pattern
    if _secrets:
        if _pattern is None:
            # longest first: a secret containing another is masked whole
            alts = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(s) for s in alts))
        text = _pattern.sub(MASK, text)
    if "LOGIN" in text or "AUTHENTICATE" in text:
        text = re.sub(_LOGIN, rf"\g<1>{MASK}", text)
        text = re.sub(_AUTHENTICATE, rf"\g<1>{MASK}", text)
    return text


def forget() -> None:
    """Drop every registered secret (for tests)."""
    global _pattern
    _secrets.clear()
    _pattern = None

"""TLS for IMAP connections: the context (trust, client certificate, lowest protocol version),
the certificate pin (``cert_fingerprint``) and the words for a certificate we refuse.

Verification is OpenSSL's: a chain to a trusted CA, the host name or IP address in the
certificate. With ``cert_fingerprint`` and no ``sslcacertfile`` the pin alone decides (as in
OfflineIMAP), so a self-signed server can be trusted without a CA.
"""

from __future__ import annotations

import importlib
import socket
import ssl
import warnings
from typing import TYPE_CHECKING

from mailtwin.errors import ConnectionFailed
from mailtwin.model import Frozen, _set

if TYPE_CHECKING:
    from mailtwin.config.model import RepositoryConfig

# a fingerprint's hash, told by its length in hex digits (as OfflineIMAP accepts them)
DIGESTS = {40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
# OpenSSL 3 allows TLS 1.0 and 1.1 only at security level 0
_OLD_PROTOCOL_CIPHERS = "DEFAULT:@SECLEVEL=0"


class TlsPolicy(Frozen):
    """What a repository's TLS options ask for; the config layer has checked every value."""

    __match_args__ = ("cafile", "fingerprints", "clientcert", "clientkey", "minimum")
    __slots__ = __match_args__
    cafile: str | None  # sslcacertfile; None: the system's trust store
    fingerprints: tuple[str, ...]  # cert_fingerprint: lowercase hex, no colons
    clientcert: str | None  # sslclientcert
    clientkey: str | None  # sslclientkey (None: in clientcert's file)
    minimum: str | None  # an ssl.TLSVersion name; None: Python's default (TLS 1.2)

    def __init__(
        self,
        cafile: str | None = None,
        fingerprints: tuple[str, ...] = (),
        clientcert: str | None = None,
        clientkey: str | None = None,
        minimum: str | None = None,
    ) -> None:
        _set(self, "cafile", cafile)
        _set(self, "fingerprints", fingerprints)
        _set(self, "clientcert", clientcert)
        _set(self, "clientkey", clientkey)
        _set(self, "minimum", minimum)


def policy_for(repo: RepositoryConfig) -> TlsPolicy:
    """A repository's TLS options as the connections use them."""
    return TlsPolicy(
        cafile=str(repo.sslcacertfile) if repo.sslcacertfile else None,
        fingerprints=repo.cert_fingerprint,
        clientcert=str(repo.sslclientcert) if repo.sslclientcert else None,
        clientkey=str(repo.sslclientkey) if repo.sslclientkey else None,
        minimum=repo.tls_version,
    )


def context(policy: TlsPolicy, *, verify: bool = True) -> ssl.SSLContext:
    """The context for one connection. ``verify=False``: checks nothing (to read a refused
    server's certificate, or where a pin alone decides)."""
    if not verify or (policy.fingerprints and policy.cafile is None):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif policy.cafile is None and (system := _truststore_context()) is not None:
        ctx = system
    else:
        ctx = ssl.create_default_context(cafile=policy.cafile)
    if policy.minimum is not None:
        wanted = ssl.TLSVersion[policy.minimum]
        if wanted < ssl.TLSVersion.TLSv1_2:  # config allows this only with tls_level = tls_compat
            ctx.set_ciphers(_OLD_PROTOCOL_CIPHERS)
            with warnings.catch_warnings():  # the user asked for it: no DeprecationWarning
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = wanted
        elif _rank(wanted) > _rank(ctx.minimum_version):  # never lower what Python set
            ctx.minimum_version = wanted
    if policy.clientcert is not None:
        # an encrypted key fails (the config refuses it) rather than prompt on the terminal
        ctx.load_cert_chain(policy.clientcert, policy.clientkey, password=lambda: b"")
    return ctx


def _rank(version: ssl.TLSVersion) -> int:
    # MINIMUM_SUPPORTED (-2) is the lowest, MAXIMUM_SUPPORTED (-1) the highest
    if version == ssl.TLSVersion.MINIMUM_SUPPORTED:
        return -1
    if version == ssl.TLSVersion.MAXIMUM_SUPPORTED:
        return 1 << 16
    return int(version)


def _truststore_context() -> ssl.SSLContext | None:
    """The OS's own verifier (macOS Keychain, Windows store, Linux CA files) when the optional
    ``truststore`` package is installed; imported here, so a run without TLS never loads it."""
    try:
        truststore = importlib.import_module("truststore")
    except ImportError:
        return None
    ctx: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return ctx


def wrap_blocking(sock: socket.socket, policy: TlsPolicy, host: str) -> ssl.SSLSocket:
    """TLS over a connected blocking socket, checked as the engine's connections are (for a
    look before the engine starts): the handshake verifies, then the pin. Raises ssl.SSLError
    (a refused certificate, a failed handshake) or ConnectionFailed (a pin mismatch)."""
    tls_sock = context(policy).wrap_socket(sock, server_hostname=host)
    if policy.fingerprints:
        der = tls_sock.getpeercert(binary_form=True)
        if der is None or not pin_matches(der, policy.fingerprints):
            tls_sock.close()
            raise pin_mismatch(host, der)
    return tls_sock


def fingerprint(der: bytes, algorithm: str = "sha256") -> str:
    import hashlib  # only with a pinned certificate

    return hashlib.new(algorithm, der).hexdigest()


def pin_matches(der: bytes, pins: tuple[str, ...]) -> bool:
    """True if the certificate (DER) has one of the ``pins`` (any of the DIGESTS)."""
    return any(fingerprint(der, DIGESTS[len(pin)]) == pin for pin in pins)


def untrusted(where: str, why: str, der: bytes | None) -> ConnectionFailed:
    """The server's certificate failed verification (``der``: that certificate, if read)."""
    if der is None:
        hint = (
            "set sslcacertfile to the CA certificate that signed the server's, or pin the "
            "server's certificate with cert_fingerprint"
        )
    else:
        hint = (
            "if this is your server's certificate, trust it with this line in the "
            f"repository's section: cert_fingerprint = {fingerprint(der)}  (or set "
            "sslcacertfile to the CA certificate that signed it)"
        )
    return ConnectionFailed(
        f"{where}: the server's TLS certificate is not trusted: {why}; not logging in",
        hint=hint,
        retry=False,
    )


def pin_mismatch(where: str, der: bytes | None) -> ConnectionFailed:
    """The server's certificate is not one that cert_fingerprint names."""
    if der is None:
        return ConnectionFailed(
            f"{where}: the server showed no TLS certificate; not logging in", retry=False
        )
    return ConnectionFailed(
        f"{where}: the server's TLS certificate (SHA-256 {fingerprint(der)}) matches no "
        "cert_fingerprint; not logging in",
        hint="if the server's certificate was replaced on purpose (ask its administrator), "
        f"pin the new one: cert_fingerprint = {fingerprint(der)}",
        retry=False,
    )

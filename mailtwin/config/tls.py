"""The values of an IMAP repository's TLS options, checked before any network I/O:
cert_fingerprint, ssl_version with tls_level, the certificate files, and whether a plain-text
connection earns a warning. ``ssl`` is imported only when a certificate file is named."""

from __future__ import annotations

import re
from pathlib import Path

from mailtwin.errors import ConfigError

# a fingerprint's length in hex digits → its hash (OfflineIMAP's five)
FINGERPRINT_HASHES = {40: "sha1", 56: "sha224", 64: "sha256", 96: "sha384", 128: "sha512"}
# ssl_version → the lowest TLS version allowed (an ssl.TLSVersion name); None: negotiate.
# OfflineIMAP uses exactly that version; a newer one is never weaker, so it is allowed too.
SSL_VERSIONS: dict[str, str | None] = {
    "tls1": "TLSv1",
    "tls1_1": "TLSv1_1",
    "tls1_2": "TLSv1_2",
    "tls1_3": "TLSv1_3",
    "ssl23": None,
}
TLS_LEVELS = ("tls_secure", "tls_no_ssl", "tls_compat")
# what Python's default context allows since 3.10; only tls_level = tls_compat goes lower
PYTHON_LOWEST = "TLSv1_2"
_ORDER = ("TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3")
# patterns for re's cache, compiled on first use: most configs need neither
_HEX = r"[0-9a-f]+\Z"
_IPV4_LOOPBACK = r"127(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\Z"


def fingerprints(value: str | None, section: str) -> tuple[str, ...]:
    """cert_fingerprint: hex digests separated by commas or blanks; colons and case ignored."""
    if value is None or not value.strip():
        return ()
    pins: list[str] = []
    for word in re.split(r"[\s,]+", value):
        if not word:
            continue
        pin = word.replace(":", "").lower()
        if not re.match(_HEX, pin) or len(pin) not in FINGERPRINT_HASHES:
            raise ConfigError(
                f"{word!r} is not a certificate fingerprint (SHA-1, SHA-224, SHA-256, SHA-384 "
                f"or SHA-512, in hex)",
                section,
                "cert_fingerprint",
            )
        pins.append(pin)
    return tuple(dict.fromkeys(pins))


def lowest_version(ssl_version: str | None, tls_level: str | None, section: str) -> str | None:
    """The lowest TLS version ssl_version and tls_level allow (an ssl.TLSVersion name), or
    None for Python's default (TLS 1.2): going below it takes tls_level = tls_compat."""
    level = tls_level.strip() if tls_level is not None else None
    if level is not None and level not in TLS_LEVELS:
        raise ConfigError(
            f"{tls_level!r} is not one of {', '.join(TLS_LEVELS)}", section, "tls_level"
        )
    version = ssl_version.strip() if ssl_version is not None else None
    if version is None or version == "":
        return None
    if version == "ssl3":
        raise ConfigError(
            "SSL 3.0 is broken and no longer offered by OpenSSL",
            section,
            "ssl_version",
            hint="leave ssl_version unset to negotiate the best version",
        )
    if version not in SSL_VERSIONS:
        raise ConfigError(
            f"{version!r} is not one of {', '.join(SSL_VERSIONS)}", section, "ssl_version"
        )
    lowest = SSL_VERSIONS[version]
    too_old = lowest is not None and _ORDER.index(lowest) < _ORDER.index(PYTHON_LOWEST)
    if too_old and level != "tls_compat":
        raise ConfigError(
            f"{version} is older than TLS 1.2, the oldest Python allows by default",
            section,
            "ssl_version",
            hint="for an old server that cannot do better, also write tls_level = "
            "tls_compat (this weakens the connection)",
        )
    return lowest


def check_files(section: str, cafile: Path | None, cert: Path | None, key: Path | None) -> None:
    """The certificate files must be readable, and the client certificate must load with its
    key; checked here so that a typo stops the run before it connects."""
    named = [("sslcacertfile", cafile), ("sslclientcert", cert), ("sslclientkey", key)]
    for option, path in named:
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as e:
            raise ConfigError(f"cannot read {path}: {e.strerror or e}", section, option) from None
    if key is not None and cert is None:
        raise ConfigError("needs sslclientcert too", section, "sslclientkey")
    if cert is not None:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_cert_chain(cert, key, password=no_passphrase)
        except ssl.SSLError as e:
            what = f"{cert} and {key}" if key is not None else str(cert)
            raise ConfigError(
                f"{what}: not a PEM certificate with its unencrypted private key ({e.reason or e})",
                section,
                "sslclientkey" if key is not None else "sslclientcert",
            ) from None


def no_passphrase() -> bytes:
    """For load_cert_chain: an encrypted key fails instead of OpenSSL asking on the terminal."""
    return b""


def is_loopback(host: str) -> bool:
    """localhost (RFC 6761: always this machine), 127.0.0.0/8 or ::1."""
    name = host.strip().strip("[]").rstrip(".").lower()
    # the usual cases, without importing ipaddress at start-up
    if name in ("localhost", "127.0.0.1", "::1") or name.endswith(".localhost"):
        return True
    if name.startswith("127.") and re.match(_IPV4_LOOPBACK, name):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plaintext_warning(host: str) -> str | None:
    """The warning for ssl = no with starttls = no, unless the server is this machine."""
    if is_loopback(host):
        return None
    return (
        f"ssl = no and starttls = no: the password and mail cross the network to {host} unencrypted"
    )

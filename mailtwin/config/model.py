"""The typed, validated config: frozen values built once by load.py, read by every other layer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mailtwin.config.options import RepoType


@dataclass(frozen=True)
class GeneralConfig:
    accounts: tuple[str, ...]  # [general] accounts as written (-a picks from Config.accounts)
    metadata: Path  # ~ and $VARS expanded; not created here
    maxsyncaccounts: int
    ui: str | None  # OfflineIMAP's UI name as written (valid); None: unset
    socktimeout: float | None  # seconds; None: no timeout
    fsync: bool
    pythonfile: Path | None = None


Lazy = Callable[[], str]
"""A secret's value, worked out only when a connection logs in (it may run Python or a command);
raises ConfigError naming its option."""


@dataclass(frozen=True)
class OAuth2Config:
    """OAuth2 for XOAUTH2 / OAUTHBEARER; each secret from its option, else its ``_eval``."""

    client_id: Lazy | None
    client_secret: Lazy | None = field(default=None, repr=False)
    refresh_token: Lazy | None = field(default=None, repr=False)  # else refresh_token_file
    access_token: Lazy | None = field(default=None, repr=False)  # used as is, never refreshed
    request_url: str | None = None  # the token endpoint (default for Gmail and Office 365)
    refresh_token_file: Path | None = None  # mailtwin only: written by `mailtwin auth`
    refresh_token_keyring: bool = False  # mailtwin only: in the OS keyring instead
    device_url: str | None = None  # mailtwin only: RFC 8628 endpoint for `mailtwin auth`
    scope: str | None = None  # mailtwin only: asked for by `mailtwin auth`

    @property
    def has_token(self) -> bool:
        """As OfflineIMAP: XOAUTH2 is tried only with a refresh or an access token."""
        return (
            self.refresh_token is not None
            or self.access_token is not None
            or self.refresh_token_file is not None
            or self.refresh_token_keyring
        )


@dataclass(frozen=True)
class AuthConfig:
    """How an IMAP repository logs in; secrets are looked up in the order of docs/security.md."""

    mechanisms: tuple[str, ...]  # auth_mechanisms, upper case, in the user's order
    remote_identity: str = ""  # SASL PLAIN authorization identity
    usereval: Lazy | None = None  # remoteusereval
    passeval: Lazy | None = field(default=None, repr=False)  # remotepasseval
    passcmd: str | None = None  # remotepasscmd (mailtwin only)
    oauth2: OAuth2Config | None = None


@dataclass(frozen=True)
class RepositoryConfig:
    name: str  # the part after "Repository "
    type: RepoType
    localfolders: Path | None  # Maildir: ~ and $VARS expanded; IMAP: None
    sep: str  # Maildir's separator; IMAP repositories use the server's
    remotehost: str | None  # IMAP only, from here to maxconnections
    remoteport: int | None  # None: 993 with ssl, else 143
    remoteuser: str | None
    remotepass: str | None = field(repr=False)  # remotepass, else remotepassfile's first line
    ssl: bool
    starttls: bool
    readonly: bool
    sync_deletes: bool
    createfolders: bool
    folderfilter: Callable[[str], bool]  # on this side's names; raises ConfigError if it fails
    nametrans: Callable[[str], str]  # this side's name → the other side's
    folderincludes: tuple[str, ...]
    expunge: bool
    maxconnections: int
    sslcacertfile: Path | None = None  # IMAP: CA file to verify with; None: the system's
    cert_fingerprint: tuple[str, ...] = ()  # IMAP: pinned certificates, lowercase hex digests
    sslclientcert: Path | None = None  # IMAP: TLS client certificate (PEM) ...
    sslclientkey: Path | None = None  # ... and its key, when not in the same file
    tls_version: str | None = None  # IMAP: lowest ssl.TLSVersion name; None: Python's (TLS 1.2)
    auth: AuthConfig | None = None  # IMAP: mechanisms and the other secret sources

    @property
    def section(self) -> str:
        return f"Repository {self.name}"


@dataclass(frozen=True)
class AccountConfig:
    name: str
    local: RepositoryConfig  # Maildir or IMAP: Side.A
    remote: RepositoryConfig  # IMAP: Side.B
    autorefresh: float | None  # minutes; None: sync once
    quick: int  # 0: never, -1: always, n: n quick syncs between full ones
    max_deletes: int = 50  # a folder stops before deleting more than this on one side ...
    max_delete_share: int = 25  # ... when that is also more than this percent of it

    @property
    def section(self) -> str:
        return f"Account {self.name}"


@dataclass(frozen=True)
class Config:
    path: Path
    general: GeneralConfig
    accounts: Mapping[str, AccountConfig]  # the ones to sync: -a, else [general] accounts

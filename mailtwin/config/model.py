"""The typed, validated config: frozen values built once by load.py, read by every other layer.

Plain frozen classes (model.Frozen), not dataclasses: every run builds them, a no-op one too,
and generating dataclass methods at import cost more than the rest of its config loading.
``model.replace`` makes a changed copy, as ``dataclasses.replace`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mailtwin.model import Frozen, _set

if TYPE_CHECKING:
    from pathlib import Path

    from mailtwin.config.options import RepoType


class GeneralConfig(Frozen):
    __match_args__ = (
        "accounts",
        "metadata",
        "maxsyncaccounts",
        "ui",
        "socktimeout",
        "fsync",
        "pythonfile",
    )
    __slots__ = __match_args__
    accounts: tuple[str, ...]  # [general] accounts as written (-a picks from Config.accounts)
    metadata: Path  # ~ and $VARS expanded; not created here
    maxsyncaccounts: int
    ui: str | None  # OfflineIMAP's UI name as written (valid); None: unset
    socktimeout: float | None  # seconds; None: no timeout
    fsync: bool
    pythonfile: Path | None

    def __init__(
        self,
        accounts: tuple[str, ...],
        metadata: Path,
        maxsyncaccounts: int,
        ui: str | None,
        socktimeout: float | None,
        fsync: bool,
        pythonfile: Path | None = None,
    ) -> None:
        _set(self, "accounts", accounts)
        _set(self, "metadata", metadata)
        _set(self, "maxsyncaccounts", maxsyncaccounts)
        _set(self, "ui", ui)
        _set(self, "socktimeout", socktimeout)
        _set(self, "fsync", fsync)
        _set(self, "pythonfile", pythonfile)


Lazy = Callable[[], str]
"""A secret's value, worked out only when a connection logs in (it may run Python or a command);
raises ConfigError naming its option."""


class OAuth2Config(Frozen):
    """OAuth2 for XOAUTH2 / OAUTHBEARER; each secret from its option, else its ``_eval``."""

    __match_args__ = (
        "client_id",
        "client_secret",
        "refresh_token",
        "access_token",
        "request_url",
        "refresh_token_file",
        "refresh_token_keyring",
        "device_url",
        "scope",
    )
    __slots__ = __match_args__
    _hidden = frozenset({"client_secret", "refresh_token", "access_token"})
    client_id: Lazy | None
    client_secret: Lazy | None
    refresh_token: Lazy | None  # else refresh_token_file
    access_token: Lazy | None  # used as is, never refreshed
    request_url: str | None  # the token endpoint (default for Gmail and Office 365)
    refresh_token_file: Path | None  # mailtwin only: written by `mailtwin auth`
    refresh_token_keyring: bool  # mailtwin only: in the OS keyring instead
    device_url: str | None  # mailtwin only: RFC 8628 endpoint for `mailtwin auth`
    scope: str | None  # mailtwin only: asked for by `mailtwin auth`

    def __init__(
        self,
        client_id: Lazy | None,
        client_secret: Lazy | None = None,
        refresh_token: Lazy | None = None,
        access_token: Lazy | None = None,
        request_url: str | None = None,
        refresh_token_file: Path | None = None,
        refresh_token_keyring: bool = False,
        device_url: str | None = None,
        scope: str | None = None,
    ) -> None:
        _set(self, "client_id", client_id)
        _set(self, "client_secret", client_secret)
        _set(self, "refresh_token", refresh_token)
        _set(self, "access_token", access_token)
        _set(self, "request_url", request_url)
        _set(self, "refresh_token_file", refresh_token_file)
        _set(self, "refresh_token_keyring", refresh_token_keyring)
        _set(self, "device_url", device_url)
        _set(self, "scope", scope)

    @property
    def has_token(self) -> bool:
        """As OfflineIMAP: XOAUTH2 is tried only with a refresh or an access token."""
        return (
            self.refresh_token is not None
            or self.access_token is not None
            or self.refresh_token_file is not None
            or self.refresh_token_keyring
        )


class AuthConfig(Frozen):
    """How an IMAP repository logs in; secrets are looked up in the order of docs/security.md."""

    __match_args__ = ("mechanisms", "remote_identity", "usereval", "passeval", "passcmd", "oauth2")
    __slots__ = __match_args__
    _hidden = frozenset({"passeval"})
    mechanisms: tuple[str, ...]  # auth_mechanisms, upper case, in the user's order
    remote_identity: str  # SASL PLAIN authorization identity
    usereval: Lazy | None  # remoteusereval
    passeval: Lazy | None  # remotepasseval
    passcmd: str | None  # remotepasscmd (mailtwin only)
    oauth2: OAuth2Config | None

    def __init__(
        self,
        mechanisms: tuple[str, ...],
        remote_identity: str = "",
        usereval: Lazy | None = None,
        passeval: Lazy | None = None,
        passcmd: str | None = None,
        oauth2: OAuth2Config | None = None,
    ) -> None:
        _set(self, "mechanisms", mechanisms)
        _set(self, "remote_identity", remote_identity)
        _set(self, "usereval", usereval)
        _set(self, "passeval", passeval)
        _set(self, "passcmd", passcmd)
        _set(self, "oauth2", oauth2)


class RepositoryConfig(Frozen):
    __match_args__ = (
        "name",
        "type",
        "localfolders",
        "sep",
        "remotehost",
        "remoteport",
        "remoteuser",
        "remotepass",
        "ssl",
        "starttls",
        "readonly",
        "sync_deletes",
        "createfolders",
        "folderfilter",
        "nametrans",
        "folderincludes",
        "expunge",
        "maxconnections",
        "sslcacertfile",
        "cert_fingerprint",
        "sslclientcert",
        "sslclientkey",
        "tls_version",
        "auth",
        "idlefolders",
        "newmail_hook",
    )
    __slots__ = __match_args__
    _hidden = frozenset({"remotepass"})
    name: str  # the part after "Repository "
    type: RepoType
    localfolders: Path | None  # Maildir: ~ and $VARS expanded; IMAP: None
    sep: str  # Maildir's separator; IMAP repositories use the server's
    remotehost: str | None  # IMAP only, from here to maxconnections
    remoteport: int | None  # None: 993 with ssl, else 143
    remoteuser: str | None
    remotepass: str | None  # remotepass, else remotepassfile's first line
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
    sslcacertfile: Path | None  # IMAP: CA file to verify with; None: the system's
    cert_fingerprint: tuple[str, ...]  # IMAP: pinned certificates, lowercase hex digests
    sslclientcert: Path | None  # IMAP: TLS client certificate (PEM) ...
    sslclientkey: Path | None  # ... and its key, when not in the same file
    tls_version: str | None  # IMAP: lowest ssl.TLSVersion name; None: Python's (TLS 1.2)
    auth: AuthConfig | None  # IMAP: mechanisms and the other secret sources
    idlefolders: tuple[str, ...]  # IMAP: watched with IDLE between autorefresh rounds
    newmail_hook: Callable[[], object] | None  # IMAP: called when unread mail left its INBOX

    def __init__(
        self,
        name: str,
        type: RepoType,
        localfolders: Path | None,
        sep: str,
        remotehost: str | None,
        remoteport: int | None,
        remoteuser: str | None,
        remotepass: str | None,
        ssl: bool,
        starttls: bool,
        readonly: bool,
        sync_deletes: bool,
        createfolders: bool,
        folderfilter: Callable[[str], bool],
        nametrans: Callable[[str], str],
        folderincludes: tuple[str, ...],
        expunge: bool,
        maxconnections: int,
        sslcacertfile: Path | None = None,
        cert_fingerprint: tuple[str, ...] = (),
        sslclientcert: Path | None = None,
        sslclientkey: Path | None = None,
        tls_version: str | None = None,
        auth: AuthConfig | None = None,
        idlefolders: tuple[str, ...] = (),
        newmail_hook: Callable[[], object] | None = None,
    ) -> None:
        _set(self, "name", name)
        _set(self, "type", type)
        _set(self, "localfolders", localfolders)
        _set(self, "sep", sep)
        _set(self, "remotehost", remotehost)
        _set(self, "remoteport", remoteport)
        _set(self, "remoteuser", remoteuser)
        _set(self, "remotepass", remotepass)
        _set(self, "ssl", ssl)
        _set(self, "starttls", starttls)
        _set(self, "readonly", readonly)
        _set(self, "sync_deletes", sync_deletes)
        _set(self, "createfolders", createfolders)
        _set(self, "folderfilter", folderfilter)
        _set(self, "nametrans", nametrans)
        _set(self, "folderincludes", folderincludes)
        _set(self, "expunge", expunge)
        _set(self, "maxconnections", maxconnections)
        _set(self, "sslcacertfile", sslcacertfile)
        _set(self, "cert_fingerprint", cert_fingerprint)
        _set(self, "sslclientcert", sslclientcert)
        _set(self, "sslclientkey", sslclientkey)
        _set(self, "tls_version", tls_version)
        _set(self, "auth", auth)
        _set(self, "idlefolders", idlefolders)
        _set(self, "newmail_hook", newmail_hook)

    @property
    def section(self) -> str:
        return f"Repository {self.name}"


class AccountConfig(Frozen):
    __match_args__ = (
        "name",
        "local",
        "remote",
        "autorefresh",
        "quick",
        "max_deletes",
        "max_delete_share",
        "presynchook",
        "postsynchook",
        "infosep",
    )
    __slots__ = __match_args__
    name: str
    local: RepositoryConfig  # Maildir or IMAP: Side.A
    remote: RepositoryConfig  # IMAP: Side.B
    autorefresh: float | None  # minutes; None: sync once
    quick: int  # 0: never, -1: always, n: n quick syncs between full ones
    max_deletes: int  # a folder stops before deleting more than this on one side ...
    max_delete_share: int  # ... when that is also more than this percent of it
    presynchook: str  # shell commands ("": none), see sync/hooks.py
    postsynchook: str
    infosep: str  # before a Maildir file name's "2,<flags>": ":", or "!" (windows-compatible)

    def __init__(
        self,
        name: str,
        local: RepositoryConfig,
        remote: RepositoryConfig,
        autorefresh: float | None,
        quick: int,
        max_deletes: int = 50,
        max_delete_share: int = 25,
        presynchook: str = "",
        postsynchook: str = "",
        infosep: str = ":",
    ) -> None:
        _set(self, "name", name)
        _set(self, "local", local)
        _set(self, "remote", remote)
        _set(self, "autorefresh", autorefresh)
        _set(self, "quick", quick)
        _set(self, "max_deletes", max_deletes)
        _set(self, "max_delete_share", max_delete_share)
        _set(self, "presynchook", presynchook)
        _set(self, "postsynchook", postsynchook)
        _set(self, "infosep", infosep)

    @property
    def section(self) -> str:
        return f"Account {self.name}"


class MbnamesConfig(Frozen):
    """[mbnames] with enabled = yes: the mailbox list file (sync/mbnames.py)."""

    __match_args__ = (
        "filename",
        "header",
        "peritem",
        "sep",
        "footer",
        "incremental",
        "folderfilter",
        "sort_keyfunc",
    )
    __slots__ = __match_args__
    filename: Path
    header: str  # evaluated already
    peritem: str  # a %-format of accountname, foldername, localfolders
    sep: str
    footer: str
    incremental: bool
    folderfilter: Callable[[str, str], object] | None  # None: every synced folder
    sort_keyfunc: Callable[[dict[str, str | None]], Any] | None  # None: account, folder

    def __init__(
        self,
        filename: Path,
        header: str,
        peritem: str,
        sep: str,
        footer: str,
        incremental: bool = False,
        folderfilter: Callable[[str, str], object] | None = None,
        sort_keyfunc: Callable[[dict[str, str | None]], Any] | None = None,
    ) -> None:
        _set(self, "filename", filename)
        _set(self, "header", header)
        _set(self, "peritem", peritem)
        _set(self, "sep", sep)
        _set(self, "footer", footer)
        _set(self, "incremental", incremental)
        _set(self, "folderfilter", folderfilter)
        _set(self, "sort_keyfunc", sort_keyfunc)


class Config(Frozen):
    __match_args__ = ("path", "general", "accounts", "mbnames")
    __slots__ = __match_args__
    path: Path
    general: GeneralConfig
    accounts: Mapping[str, AccountConfig]  # the ones to sync: -a, else [general] accounts
    mbnames: MbnamesConfig | None  # None: [mbnames] enabled = no

    def __init__(
        self,
        path: Path,
        general: GeneralConfig,
        accounts: Mapping[str, AccountConfig],
        mbnames: MbnamesConfig | None = None,
    ) -> None:
        _set(self, "path", path)
        _set(self, "general", general)
        _set(self, "accounts", accounts)
        _set(self, "mbnames", mbnames)

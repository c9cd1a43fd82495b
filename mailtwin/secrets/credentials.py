"""An IMAP repository's login secrets, looked up when a connection logs in, once per run.

Password lookup order (the first that gives one wins): remotepasseval, remotepass,
remotepassfile, remotepasscmd, ~/.netrc (then /etc/netrc) by host and login, the OS keyring
(service = remotehost, username = remoteuser) when the ``keyring`` package is installed.
OAuth2 access tokens: oauth2_access_token(_eval) as given, else refreshed with the refresh token
(oauth2_refresh_token(_eval), else oauth2_refresh_token_file, else the OS keyring with
oauth2_refresh_token_keyring = yes).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mailtwin.errors import ConfigError
from mailtwin.ui import redact

# each source's module is imported when it is asked: a run with the password in the config
# (every no-op run too) needs none of them
if TYPE_CHECKING:
    from pathlib import Path

    from mailtwin.config.model import AuthConfig, OAuth2Config
    from mailtwin.secrets import netrc
    from mailtwin.secrets.oauth2 import Post, TokenHolder


def token_service(host: str) -> str:
    """The keyring service under which `mailtwin auth --keyring` keeps a refresh token."""
    return f"mailtwin-oauth2:{host}"


NO_PASSWORD_HINT = (
    "set remotepass, remotepassfile, remotepasseval or remotepasscmd, or add a 'machine "
    "HOST login USER password ...' line to ~/.netrc"
)


_USERS: dict[tuple[str, str], str] = {}  # (section, host) → what remoteusereval gave


def user_name(section: str, host: str, remoteuser: str | None, auth: AuthConfig) -> str:
    """remoteusereval, else remoteuser, else the login of the one ~/.netrc entry for the host
    (as OfflineIMAP); else empty."""
    if auth.usereval is not None:
        # once per process, like the password: the pre-flight look and the engine share it
        key = (section, host)
        if key not in _USERS:
            _USERS[key] = auth.usereval()
        return _USERS[key]
    if remoteuser is not None:
        return remoteuser
    from mailtwin.secrets import netrc

    try:
        entries = [e for e in _netrc_entries() if e.machine == host]
    except netrc.NetrcError as e:
        raise ConfigError(str(e), section, "remoteuser") from None
    if len(entries) == 1 and entries[0].login:
        return entries[0].login
    return ""


def _netrc_entries() -> list[netrc.Entry]:
    from mailtwin.secrets import netrc

    for path in netrc.default_paths():
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as e:
            raise netrc.NetrcError(f"{path}: cannot read: {e}") from None
        try:
            return netrc.parse(text)
        except netrc.NetrcError as e:
            raise netrc.NetrcError(f"{path}: {e}") from None
    return []


_HELD: dict[tuple[str, str, str], RepoSecrets] = {}  # (section, host, user) → its secrets


def for_repository(
    section: str, host: str, user: str, password: str | None, auth: AuthConfig
) -> RepoSecrets:
    """The repository's secrets, the same object for every sync of this process: with
    autorefresh, a password command runs once and an access token lives until it expires."""
    key = (section, host, user)
    held = _HELD.get(key)
    if held is None or held.auth is not auth or held.given != password:
        held = _HELD[key] = RepoSecrets(section, host, user, password, auth)
    return held


class RepoSecrets:
    """``sasl.Secrets`` for one IMAP repository; thread-safe, each secret found at most once."""

    def __init__(
        self,
        section: str,
        host: str,
        user: str,
        password: str | None,
        auth: AuthConfig,
        post: Post | None = None,  # None: oauth2.post_form
    ) -> None:
        self.section, self.host, self.user = section, host, user
        self.given = password  # remotepass, else remotepassfile's first line (read at load)
        self.auth = auth
        self._lock = threading.Lock()
        self._password: str | None = None
        oauth = auth.oauth2
        self.tokens: TokenHolder | None = None
        if oauth is not None and oauth.has_token:
            from mailtwin.secrets.oauth2 import TokenHolder, post_form

            self.tokens = TokenHolder(
                oauth, f"[{section}]", lambda: self._refresh_token(oauth), post=post or post_form
            )

    @property
    def has_token(self) -> bool:
        return self.tokens is not None

    def password(self) -> str:
        with self._lock:
            if self._password is None:
                password = self._find_password()
                # masked in every output from now on, and so are the PLAIN blobs holding it
                redact.register(password)
                redact.register_plain(self.user, password)
                self._password = password
            return self._password

    def access_token(self) -> str:
        if self.tokens is None:
            raise ConfigError("no OAuth2 token configured", self.section, "oauth2_refresh_token")
        token = self.tokens.token()
        redact.register(token)
        return token

    def token_rejected(self) -> None:
        if self.tokens is not None:
            self.tokens.forget()

    def _find_password(self) -> str:
        auth, section = self.auth, self.section
        if auth.passeval is not None:
            return auth.passeval()
        if self.given is not None:
            return self.given
        from mailtwin.secrets import netrc, oskeyring, passcmd

        if auth.passcmd is not None:
            return passcmd.run(auth.passcmd, section)
        try:
            entry = netrc.lookup(self.host, self.user or None)
        except netrc.NetrcError as e:
            raise ConfigError(f"no password given, and {e}", section, "remotepass") from None
        if entry is not None and entry.password is not None:
            return entry.password
        found = oskeyring.lookup(self.host, self.user)
        if found is not None:
            return found
        raise ConfigError("no password found", section, "remotepass", hint=NO_PASSWORD_HINT)

    def _refresh_token(self, oauth: OAuth2Config) -> str | None:
        from mailtwin.secrets import files, oskeyring

        if oauth.refresh_token is not None:
            token = oauth.refresh_token()
            redact.register(token)
            return token
        path: Path | None = oauth.refresh_token_file
        if path is not None:
            try:
                token = files.read_first_line(path)
                redact.register(token)
                return token or None
            except (OSError, UnicodeDecodeError) as e:
                why = getattr(e, "strerror", None) or e
                raise ConfigError(
                    f"cannot read {path}: {why}",
                    self.section,
                    "oauth2_refresh_token_file",
                    hint="run `mailtwin auth ACCOUNT` to write it",
                ) from None
        if oauth.refresh_token_keyring:
            option = "oauth2_refresh_token_keyring"
            if not oskeyring.available():
                raise ConfigError(
                    "is yes, but the keyring package is not installed",
                    self.section,
                    option,
                    hint="pip install 'mailtwin[keyring]'",
                )
            stored = oskeyring.lookup(token_service(self.host), self.user)
            if stored is None:
                raise ConfigError(
                    f"no refresh token in the OS keyring (service {token_service(self.host)}, "
                    f"user {self.user!r})",
                    self.section,
                    option,
                    hint="run `mailtwin auth --keyring ACCOUNT`",
                )
            redact.register(stored)
            return stored
        return None

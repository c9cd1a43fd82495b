"""OAuth2 access tokens: one form-encoded POST to the token endpoint (RFC 6749 section 6), kept
for the run and fetched again shortly before it expires (autorefresh runs for days).

Plain urllib: the refresh is one request, and this way the tests can run it against a fake
endpoint on 127.0.0.1 (no msal or google-auth).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mailtwin.config.model import OAuth2Config
from mailtwin.errors import AuthError, ConnectionFailed, cut
from mailtwin.ui import redact

TIMEOUT = 30.0
MAX_RESPONSE = 64 * 1024
RENEW_BEFORE = 60.0  # seconds before expiry when a held token is fetched again

Post = Callable[[str, Mapping[str, str]], tuple[int, dict[str, object]]]


def shown(url: str) -> str:
    """A URL for messages: scheme, host and path (no user info, no query)."""
    import urllib.parse

    u = urllib.parse.urlsplit(url)
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.hostname or ''}{port}{u.path}"


def post_form(url: str, fields: Mapping[str, str]) -> tuple[int, dict[str, object]]:
    """POST ``fields`` form-encoded; (HTTP status, the JSON object answered or {})."""
    # imported here: urllib.request brings http.client, email and ssl, which a run without
    # OAuth2 (and the pre-flight look of every run) should not pay for
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    req = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            status, body = resp.status, resp.read(MAX_RESPONSE)
    except urllib.error.HTTPError as e:  # 4xx/5xx still carry the JSON error
        status, body = e.code, e.read(MAX_RESPONSE)
    except (urllib.error.URLError, OSError) as e:
        why = getattr(e, "reason", None) or e
        raise ConnectionFailed(f"{shown(url)}: cannot reach the OAuth2 endpoint: {why}") from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return status, data if isinstance(data, dict) else {}


def named(
    where: str, post: Post, url: str, fields: Mapping[str, str]
) -> tuple[int, dict[str, object]]:
    """``post``, its network errors naming ``where`` (the repository)."""
    try:
        return post(url, fields)
    except ConnectionFailed as e:
        raise ConnectionFailed(f"{where}: {e}", e.hint) from None


def failure(what: str, url: str, status: int, body: Mapping[str, object]) -> str:
    """One line: what failed, where, the HTTP status and the error field (never a token)."""
    error = body.get("error")
    desc = body.get("error_description")
    detail = f": {error}" if isinstance(error, str) else ""
    if isinstance(desc, str):
        detail += f" ({cut(desc.splitlines()[0] if desc else desc, 120)})"
    return f"{what} at {shown(url)} failed: HTTP {status}{detail}"


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires: float | None  # on ``clock``; None: unknown, kept for the run


def refresh(
    url: str,
    client_id: str,
    client_secret: str | None,
    refresh_token: str,
    where: str,
    post: Post = post_form,
    clock: Callable[[], float] = time.monotonic,
) -> Token:
    """Trade the refresh token for an access token; ``where`` names the repository."""
    fields = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    if client_secret:
        fields["client_secret"] = client_secret
    start = clock()
    status, body = named(where, post, url, fields)
    token = body.get("access_token")
    if status != 200 or not isinstance(token, str) or not token:
        raise AuthError(
            f"{where}: {failure('OAuth2 token refresh', url, status, body)}",
            hint="an invalid_grant means the refresh token is no longer valid: "
            "run `mailtwin auth ACCOUNT` for a new one",
        )
    expires_in = seconds(body.get("expires_in"))
    expires = start + expires_in if expires_in is not None else None
    return Token(token, expires)


def seconds(value: object) -> float | None:
    """``expires_in``: a number of seconds (some providers send it as a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


class TokenHolder:
    """The access token of one repository, shared by its connections; thread-safe (logins ask
    for it off the event loop)."""

    def __init__(
        self,
        config: OAuth2Config,
        where: str,
        refresh_token: Callable[[], str | None],
        post: Post = post_form,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._where = where
        self._refresh_token = refresh_token  # resolved on first use
        self._post = post
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.fetches = 0  # token requests made (for tests and -d)

    def forget(self) -> None:
        """Drop the held access token (the server refused it)."""
        with self._lock:
            self._token = None

    def token(self) -> str:
        cfg = self._config
        with self._lock:
            if cfg.access_token is not None:  # as OfflineIMAP: a given access token wins
                return cfg.access_token()
            held = self._token
            if held is not None and (
                held.expires is None or self._clock() < held.expires - RENEW_BEFORE
            ):
                return held.value
            refresh_token = self._refresh_token()
            if refresh_token is None:
                raise AuthError(
                    f"{self._where}: no OAuth2 refresh token",
                    hint="set oauth2_refresh_token, or run `mailtwin auth ACCOUNT`",
                )
            if cfg.request_url is None:
                raise AuthError(
                    f"{self._where}: oauth2_request_url is not set (the token endpoint)",
                    hint="set oauth2_request_url to the provider's token URL",
                )
            client_id = cfg.client_id() if cfg.client_id is not None else ""
            secret = cfg.client_secret() if cfg.client_secret is not None else None
            redact.register(secret)
            self.fetches += 1
            self._token = refresh(
                cfg.request_url, client_id, secret, refresh_token, self._where, self._post,
                self._clock,
            )  # fmt: skip
            return self._token.value

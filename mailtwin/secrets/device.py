"""OAuth2 device authorization (RFC 8628): the user approves mailtwin in a browser, anywhere,
while mailtwin polls the token endpoint; the result is a refresh token."""

from __future__ import annotations

import time
from collections.abc import Callable

from mailtwin.errors import AuthError
from mailtwin.secrets.oauth2 import Post, failure, named, post_form, seconds

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0  # RFC 8628 3.2, when the server names none
DEFAULT_LIFETIME = 1800.0


def refresh_token(
    device_url: str,
    token_url: str,
    client_id: str,
    client_secret: str | None,
    scope: str | None,
    where: str,
    say: Callable[[str], None],
    post: Post = post_form,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Run the flow; ``say`` shows the user where to go and which code to enter."""
    fields = {"client_id": client_id}
    if scope:
        fields["scope"] = scope
    status, body = named(where, post, device_url, fields)
    device_code, user_code = body.get("device_code"), body.get("user_code")
    # Google says verification_url, RFC 8628 verification_uri
    uri = body.get("verification_uri") or body.get("verification_url")
    if status != 200 or not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise AuthError(
            f"{where}: {failure('OAuth2 device authorization', device_url, status, body)}"
        )
    assert isinstance(device_code, str)
    say(f"To let mailtwin read this mailbox, open {uri} and enter the code {user_code}")
    complete = body.get("verification_uri_complete")
    if isinstance(complete, str):
        say(f"(or open {complete})")
    interval = seconds(body.get("interval"))
    interval = DEFAULT_INTERVAL if interval is None else max(0.0, interval)
    deadline = clock() + (seconds(body.get("expires_in")) or DEFAULT_LIFETIME)
    poll = {"grant_type": GRANT, "device_code": device_code, "client_id": client_id}
    if client_secret:
        poll["client_secret"] = client_secret
    while clock() < deadline:
        sleep(interval)
        status, body = named(where, post, token_url, poll)
        error = body.get("error")
        if status == 200 and error is None:
            token = body.get("refresh_token")
            if not isinstance(token, str) or not token:
                raise AuthError(
                    f"{where}: the provider approved but sent no refresh token",
                    hint="ask for offline access in oauth2_scope (Microsoft: offline_access)",
                )
            return token
        if error == "authorization_pending":
            continue
        if error == "slow_down":  # RFC 8628 3.5: wait 5 s longer from now on
            interval += 5.0
            continue
        raise AuthError(
            f"{where}: {failure('OAuth2 device authorization', token_url, status, body)}"
        )
    raise AuthError(f"{where}: the code expired before it was approved; run mailtwin auth again")

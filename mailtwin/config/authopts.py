"""The login options of an IMAP repository → AuthConfig. Nothing is looked up here: the
``_eval`` expressions, the password command and the token endpoint run when a connection logs
in (mailtwin.secrets), so a run that does not sync this account never runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mailtwin.config.model import AuthConfig, Lazy, OAuth2Config
from mailtwin.config.pyeval import PythonEnv
from mailtwin.errors import ConfigError
from mailtwin.stores.imap import sasl

Text = Callable[[str], str | None]
PathOf = Callable[[str], Path | None]
Flag = Callable[[str], bool]

# remotehost → (token endpoint, device authorization endpoint, scope): the defaults of
# oauth2_request_url, oauth2_device_url and oauth2_scope
PROVIDERS: dict[str, tuple[str, str, str]] = {
    "imap.gmail.com": (
        "https://oauth2.googleapis.com/token",
        "https://oauth2.googleapis.com/device/code",
        "https://mail.google.com/",
    ),
    "outlook.office365.com": (
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
        "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
    ),
}

# options whose value in the config file is a secret: the file should be private
SECRET_OPTIONS = (
    "remotepass",
    "oauth2_client_secret",
    "oauth2_refresh_token",
    "oauth2_access_token",
)


def mechanisms(value: str | None, section: str) -> tuple[str, ...]:
    """auth_mechanisms: known names, any case; GSSAPI alone is refused (not supported)."""
    names = tuple(dict.fromkeys(m.strip().upper() for m in (value or "").split(",") if m.strip()))
    option = "auth_mechanisms"
    if not names:
        raise ConfigError("names no mechanism", section, option)
    unknown = [m for m in names if m not in sasl.KNOWN]
    if unknown:
        known = ", ".join(sorted(sasl.KNOWN))
        raise ConfigError(f"{unknown[0]!r} is not a login mechanism ({known})", section, option)
    if not any(m in sasl.SUPPORTED for m in names):
        raise ConfigError(
            "GSSAPI (Kerberos) is not supported by mailtwin, and no other mechanism is allowed",
            section,
            option,
            hint="add PLAIN, LOGIN, CRAM-MD5 or XOAUTH2 (OfflineIMAP's default list has them)",
        )
    return names


def _lazy(
    env: PythonEnv, section: str, text: Text, option: str | None, eval_option: str
) -> Lazy | None:
    """``eval_option`` (evaluated when needed; OfflineIMAP prefers it), else ``option``."""
    expr = text(eval_option)
    if expr is not None:

        def evaluate() -> str:
            value = env.eval(expr, section, eval_option)
            if not isinstance(value, str):
                raise ConfigError(f"gave a {type(value).__name__}, not a string", section,
                                  eval_option)  # fmt: skip
            return value

        return evaluate
    value = text(option) if option is not None else None
    if value is None:
        return None
    return lambda: value


def build(
    section: str, host: str, text: Text, path: PathOf, flag: Flag, env: PythonEnv
) -> AuthConfig:
    """The AuthConfig of ``[section]``; ``text``/``path``/``flag`` read its options (defaults
    applied)."""

    def lazy(name: str) -> Lazy | None:
        return _lazy(env, section, text, name, f"{name}_eval")

    refresh, access = lazy("oauth2_refresh_token"), lazy("oauth2_access_token")
    client_id = lazy("oauth2_client_id")
    token_file = path("oauth2_refresh_token_file")
    in_keyring = flag("oauth2_refresh_token_keyring")
    oauth: OAuth2Config | None = None
    if refresh or access or token_file or in_keyring or client_id:
        known = PROVIDERS.get(host.lower())
        oauth = OAuth2Config(
            client_id=client_id,
            client_secret=lazy("oauth2_client_secret"),
            refresh_token=refresh,
            access_token=access,
            request_url=text("oauth2_request_url") or (known[0] if known else None),
            refresh_token_file=token_file.absolute() if token_file else None,
            refresh_token_keyring=in_keyring,
            device_url=text("oauth2_device_url") or (known[1] if known else None),
            scope=text("oauth2_scope") or (known[2] if known else None),
        )
    passcmd = text("remotepasscmd")
    return AuthConfig(
        mechanisms=mechanisms(text("auth_mechanisms"), section),
        remote_identity=(text("remote_identity") or "").strip(),
        usereval=_lazy(env, section, text, None, "remoteusereval"),
        passeval=_lazy(env, section, text, None, "remotepasseval"),
        passcmd=passcmd.strip() if passcmd and passcmd.strip() else None,
        oauth2=oauth,
    )

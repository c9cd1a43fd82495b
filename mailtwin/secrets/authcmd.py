"""``mailtwin auth ACCOUNT``: get an OAuth2 refresh token for an account's remote repository
with the device flow, and keep it in a file only its owner can read (or in the OS keyring)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailtwin.errors import ConfigError, UsageError


def _parser() -> argparse.ArgumentParser:
    from mailtwin.cli import parser_class

    p = parser_class()(
        prog="mailtwin auth",
        description="Get an OAuth2 refresh token for ACCOUNT's remote repository (device "
        "flow: approve in any browser) and write it to a file readable by you only.",
    )
    p.add_argument("account", help="the [Account ...] whose remote repository logs in")
    p.add_argument("-c", dest="configfile", metavar="FILE", help="the configuration file to use")
    p.add_argument(
        "-o",
        dest="output",
        metavar="FILE",
        help="where to write the token (default: oauth2_refresh_token_file, else "
        "METADATA/oauth2/REPOSITORY.token)",
    )
    p.add_argument(
        "--keyring",
        action="store_true",
        help="store the token in the OS keyring instead (needs the keyring extra; the default "
        "with oauth2_refresh_token_keyring = yes)",
    )
    return p


def main(argv: list[str]) -> int:
    from mailtwin.config import load_config
    from mailtwin.secrets import device, files, oskeyring
    from mailtwin.secrets.credentials import token_service, user_name

    ns = _parser().parse_args(argv)
    warnings: list[str] = []
    config = load_config(
        Path(ns.configfile) if ns.configfile else None, (), warnings.append, [ns.account]
    )
    for w in warnings:
        print(f"mailtwin: warning: {w}", file=sys.stderr)
    repo = config.accounts[ns.account].remote
    section = repo.section
    oauth = repo.auth.oauth2 if repo.auth is not None else None
    if oauth is None or oauth.client_id is None:
        raise ConfigError(
            "is not set: the device flow needs the OAuth2 client id", section, "oauth2_client_id"
        )
    for option, value in (
        ("oauth2_device_url", oauth.device_url),
        ("oauth2_request_url", oauth.request_url),
    ):
        if not value:
            raise ConfigError(
                f"is not set (defaults exist only for {', '.join(_hosts())})", section, option
            )
    assert oauth.device_url is not None and oauth.request_url is not None
    assert repo.remotehost is not None and repo.auth is not None
    in_keyring = ns.keyring or (oauth.refresh_token_keyring and not ns.output)
    user = user_name(section, repo.remotehost, repo.remoteuser, repo.auth)
    if in_keyring and not oskeyring.available():
        raise UsageError(
            "--keyring: the keyring package is not installed",
            hint="pip install 'mailtwin[keyring]'",
        )
    if ns.output:
        path = Path(ns.output).expanduser().absolute()
    elif oauth.refresh_token_file is not None:
        path = oauth.refresh_token_file
    else:
        path = config.general.metadata / "oauth2" / f"{repo.name}.token"
    if path.is_dir():
        raise UsageError(f"{path} is a directory")
    secret = oauth.client_secret() if oauth.client_secret is not None else None
    token = device.refresh_token(
        oauth.device_url,
        oauth.request_url,
        oauth.client_id(),
        secret,
        oauth.scope,
        f"[{section}]",
        say=lambda line: print(line, flush=True),
    )
    if in_keyring:
        service = token_service(repo.remotehost)
        try:
            oskeyring.store(service, user, token)
        except RuntimeError as e:
            raise UsageError(f"--keyring: {e}") from None
        print(f"refresh token stored in the OS keyring (service {service}, user {user!r})")
        if not oauth.refresh_token_keyring:
            print(f"add to [{section}]: oauth2_refresh_token_keyring = yes")
        return 0
    files.write_private(path, token + "\n")
    print(f"refresh token written to {path} (readable by you only)")
    if oauth.refresh_token_file != path:
        print(f"add to [{section}]: oauth2_refresh_token_file = {path}")
    return 0


def _hosts() -> list[str]:
    from mailtwin.config.authopts import PROVIDERS

    return sorted(PROVIDERS)

"""Secrets: netrc, password commands, the lookup order, OAuth2 refresh and device flow, the
config file's permissions, the auth options."""

from __future__ import annotations

import shlex
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from mailtwin.config import load_config
from mailtwin.config.model import AuthConfig, OAuth2Config
from mailtwin.errors import AuthError, ConfigError
from mailtwin.secrets import device, netrc, oskeyring, passcmd
from mailtwin.secrets.authcmd import main as auth_main
from mailtwin.secrets.credentials import RepoSecrets, user_name
from mailtwin.secrets.oauth2 import TokenHolder
from tests.oauth_server import OAuthServer

PY = shlex.quote(sys.executable)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    return h


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


def write_config(tmp_path: Path, remote: str, mode: int = 0o600) -> Path:
    path = tmp_path / "rc"
    path.write_text(
        f"[general]\naccounts = A\nmetadata = {tmp_path}/meta\n"
        "[Account A]\nlocalrepository = L\nremoterepository = R\n"
        f"[Repository L]\ntype = Maildir\nlocalfolders = {tmp_path}/mail\n"
        f"[Repository R]\ntype = IMAP\nremotehost = imap.example.org\n{remote}\n"
    )
    path.chmod(mode)
    return path


def auth_of(tmp_path: Path, remote: str) -> AuthConfig:
    repo = load_config(write_config(tmp_path, remote), (), lambda w: None).accounts["A"].remote
    assert repo.auth is not None
    return repo.auth


# ---- netrc --------------------------------------------------------------------------------------

NETRC = """\
# comment line
machine imap.example.org login alice password "a pw"
machine imap.example.org
    login bob
    password b\\"pw   # a comment after a token
macdef init
machine fake login x password y

machine other.example password o
default login anyone password dflt
"""


def test_netrc_keeps_several_entries_per_host() -> None:
    entries = netrc.parse(NETRC)
    assert [(e.machine, e.login, e.password) for e in entries] == [
        ("imap.example.org", "alice", "a pw"),
        ("imap.example.org", "bob", 'b"pw'),
        ("other.example", None, "o"),
        (None, "anyone", "dflt"),
    ]


def test_netrc_matches_host_and_login() -> None:
    entries = netrc.parse(NETRC)

    def pw(host: str, login: str | None) -> str | None:
        e = netrc.find(entries, host, login)
        return e.password if e else None

    assert pw("imap.example.org", "bob") == 'b"pw'
    assert pw("imap.example.org", "alice") == "a pw"
    assert pw("imap.example.org", None) == "a pw"  # no login asked: the first entry
    assert pw("other.example", "whoever") == "o"  # an entry without login fits any
    assert pw("unknown.example", "anyone") == "dflt"
    assert pw("unknown.example", "carol") is None


def test_netrc_syntax_error_names_the_line() -> None:
    with pytest.raises(netrc.NetrcError, match="line 2: unexpected 'bogus'"):
        netrc.parse("machine h login u\nbogus\n")
    with pytest.raises(netrc.NetrcError, match="password without a value"):
        netrc.parse("machine h password")


# ---- password command ---------------------------------------------------------------------------


def test_passcmd_first_line_without_a_shell() -> None:
    cmd = f"""{PY} -c "print('pw with $HOME and spaces'); print('second')" """
    assert passcmd.run(cmd, "Repository R") == "pw with $HOME and spaces"


def test_passcmd_failure_is_one_line_without_its_output() -> None:
    cmd = f"{PY} -c \"print('leaked-secret'); raise SystemExit(3)\""
    with pytest.raises(ConfigError) as e:
        passcmd.run(cmd, "Repository R")
    msg = str(e.value)
    assert msg.startswith("[Repository R] remotepasscmd: ") and "exit status 3" in msg
    assert "leaked-secret" not in msg and "\n" not in msg


def test_passcmd_missing_command_and_empty_output() -> None:
    with pytest.raises(ConfigError, match="no-such-cmd-xyz: command not found"):
        passcmd.run("no-such-cmd-xyz", "Repository R")
    with pytest.raises(ConfigError, match="printed no password"):
        passcmd.run(f'{PY} -c "pass"', "Repository R")
    with pytest.raises(ConfigError, match="cannot split"):
        passcmd.run("'unclosed", "Repository R")


# ---- lookup order -------------------------------------------------------------------------------


def test_passcmd_runs_at_login_not_at_config_load(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = f"open({str(marker)!r}, 'w').close(); print('cmd-pw')"
    auth = auth_of(tmp_path, f"remoteuser = me\nremotepasscmd = {PY} -c {shlex.quote(script)}")
    assert not marker.exists()
    secrets = RepoSecrets("Repository R", "imap.example.org", "me", None, auth)
    assert secrets.password() == "cmd-pw"
    assert marker.exists()
    marker.unlink()
    assert secrets.password() == "cmd-pw" and not marker.exists()  # once per run


def test_order_eval_then_remotepass_then_cmd_then_netrc(tmp_path: Path, home: Path) -> None:
    (home / ".netrc").write_text("machine imap.example.org login me password netrc-pw\n")
    (tmp_path / "helpers.py").write_text("def pw():\n    return 'eval-pw'\n")
    py = f"[general]\npythonfile = {tmp_path}/helpers.py\n"

    def password(remote: str, given: str | None = None, pythonfile: bool = False) -> str:
        path = write_config(tmp_path, remote)
        if pythonfile:
            path.write_text(path.read_text().replace("[general]\n", py, 1))
        auth = load_config(path, (), lambda w: None).accounts["A"].remote.auth
        assert auth is not None
        return RepoSecrets("Repository R", "imap.example.org", "me", given, auth).password()

    cmd = f"remotepasscmd = {PY} -c \"print('cmd-pw')\""
    assert password(f"remotepasseval = pw()\n{cmd}", "given", pythonfile=True) == "eval-pw"
    assert password(cmd, "given") == "given"
    assert password(cmd) == "cmd-pw"
    assert password("") == "netrc-pw"


def test_netrc_gives_the_user_when_one_entry(tmp_path: Path, home: Path) -> None:
    auth = auth_of(tmp_path, "")
    (home / ".netrc").write_text("machine imap.example.org login solo password p\n")
    assert user_name("Repository R", "imap.example.org", None, auth) == "solo"
    assert user_name("Repository R", "imap.example.org", "me", auth) == "me"
    (home / ".netrc").write_text(
        "machine imap.example.org login a password p\nmachine imap.example.org login b password q\n"
    )
    assert user_name("Repository R", "imap.example.org", None, auth) == ""
    assert RepoSecrets("Repository R", "imap.example.org", "b", None, auth).password() == "q"


@pytest.fixture
def keyring(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], str]:
    """A fake ``keyring`` package: (service, user) → secret."""
    fake = types.ModuleType("keyring")
    errors = types.ModuleType("keyring.errors")

    class KeyringError(Exception):
        pass

    errors.KeyringError = KeyringError  # type: ignore[attr-defined]
    stored: dict[tuple[str, str], str] = {}
    fake.get_password = lambda service, user: stored.get((service, user))  # type: ignore[attr-defined]
    fake.set_password = lambda service, user, secret: stored.__setitem__((service, user), secret)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", fake)
    monkeypatch.setitem(sys.modules, "keyring.errors", errors)
    return stored


def test_keyring_is_last(tmp_path: Path, home: Path, keyring: dict[tuple[str, str], str]) -> None:
    keyring["imap.example.org", "me"] = "ring-pw"
    assert oskeyring.lookup("imap.example.org", "me") == "ring-pw"
    auth = auth_of(tmp_path, "")
    assert RepoSecrets("Repository R", "imap.example.org", "me", None, auth).password() == "ring-pw"
    with pytest.raises(ConfigError, match=r"\[Repository R\] remotepass: no password found"):
        RepoSecrets("Repository R", "imap.example.org", "you", None, auth).password()


# ---- the config file's permissions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "mode", "warned"),
    [
        ("remotepass = s3cret", 0o644, True),
        ("remotepass = s3cret", 0o640, True),
        ("remotepass = s3cret", 0o600, False),
        ("oauth2_client_secret = s3cret", 0o604, True),
        ("remotepasscmd = true", 0o644, False),  # no secret in the file itself
    ],
)
def test_readable_config_with_a_secret_warns(
    tmp_path: Path, remote: str, mode: int, warned: bool
) -> None:
    warnings: list[str] = []
    load_config(write_config(tmp_path, remote, mode), (), warnings.append)
    hits = [w for w in warnings if "chmod 600" in w]
    assert len(hits) == (1 if warned else 0), warnings
    assert not any("s3cret" in w for w in warnings)


# ---- auth options -------------------------------------------------------------------------------


def test_auth_options_are_read(tmp_path: Path) -> None:
    auth = auth_of(
        tmp_path,
        "auth_mechanisms = plain, Cram-MD5\nremote_identity = boss\n"
        "oauth2_client_id = cid\noauth2_refresh_token = rt\n"
        f"oauth2_refresh_token_file = {tmp_path}/tok",
    )
    assert auth.mechanisms == ("PLAIN", "CRAM-MD5")
    assert auth.remote_identity == "boss"
    assert auth.oauth2 is not None and auth.oauth2.has_token
    assert auth.oauth2.refresh_token is not None and auth.oauth2.refresh_token() == "rt"
    assert auth.oauth2.request_url is None  # no default for this host


def test_gmail_gets_google_endpoints(tmp_path: Path) -> None:
    path = write_config(tmp_path, "oauth2_client_id = cid")
    path.write_text(path.read_text().replace("imap.example.org", "imap.gmail.com"))
    auth = load_config(path, (), lambda w: None).accounts["A"].remote.auth
    assert auth is not None and auth.oauth2 is not None
    assert auth.oauth2.request_url == "https://oauth2.googleapis.com/token"
    assert auth.oauth2.scope == "https://mail.google.com/"
    assert not auth.oauth2.has_token  # a client id alone is not a token
    assert auth.mechanisms == ("GSSAPI", "XOAUTH2", "CRAM-MD5", "PLAIN", "LOGIN")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("GSSAPI", r"GSSAPI \(Kerberos\) is not supported"),
        ("PLAIN, SCRAM-SHA-1", "'SCRAM-SHA-1' is not a login mechanism"),
        (" , ", "names no mechanism"),
    ],
)
def test_bad_auth_mechanisms(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        auth_of(tmp_path, f"auth_mechanisms = {value}")
    assert str(e.value).startswith("[Repository R] auth_mechanisms: ")


def test_eval_options_evaluate_lazily_and_must_be_strings(tmp_path: Path) -> None:
    auth = auth_of(tmp_path, "oauth2_client_id_eval = 1 + 1\noauth2_access_token_eval = 'at'")
    assert auth.oauth2 is not None and auth.oauth2.client_id is not None
    with pytest.raises(ConfigError, match="oauth2_client_id_eval: gave a int, not a string"):
        auth.oauth2.client_id()


# ---- OAuth2 token refresh ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def holder(
    answers: list[tuple[int, dict[str, object]]], clock: Clock, **cfg: object
) -> tuple[TokenHolder, list[Mapping[str, str]]]:
    sent: list[Mapping[str, str]] = []

    def post(url: str, fields: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        sent.append(fields)
        return answers.pop(0)

    config = OAuth2Config(
        client_id=lambda: "cid",
        client_secret=lambda: "csecret",
        refresh_token=lambda: "rtok",
        request_url="https://login.example.org/token?x=1",
        **cfg,  # type: ignore[arg-type]
    )
    return TokenHolder(config, "[Repository R]", lambda: "rtok", post, clock), sent


def test_token_is_fetched_once_and_renewed_before_expiry() -> None:
    clock = Clock()
    answers: list[tuple[int, dict[str, object]]] = [
        (200, {"access_token": "a1", "expires_in": 3600}),
        (200, {"access_token": "a2", "expires_in": "3600"}),
    ]
    h, sent = holder(answers, clock)
    assert h.token() == "a1"
    clock.now += 3600 - 61
    assert h.token() == "a1" and len(sent) == 1
    clock.now += 2  # within 60 s of expiry: fetched again
    assert h.token() == "a2" and len(sent) == 2
    assert sent[0] == {
        "grant_type": "refresh_token",
        "client_id": "cid",
        "refresh_token": "rtok",
        "client_secret": "csecret",
    }


def test_a_rejected_token_is_fetched_again() -> None:
    answers: list[tuple[int, dict[str, object]]] = [
        (200, {"access_token": "a1"}),  # no expires_in: kept for the run ...
        (200, {"access_token": "a2"}),
    ]
    h, sent = holder(answers, Clock())
    assert h.token() == "a1" and h.token() == "a1"
    h.forget()  # ... unless the server refuses it
    assert h.token() == "a2" and len(sent) == 2


def test_access_token_given_is_used_as_is() -> None:
    h, sent = holder([], Clock(), access_token=lambda: "given")
    assert h.token() == "given" and sent == []


def test_refresh_error_names_status_and_error_not_secrets() -> None:
    body: dict[str, object] = {"error": "invalid_grant", "error_description": "Token revoked."}
    h, _ = holder([(400, body)], Clock())
    with pytest.raises(AuthError) as e:
        h.token()
    msg = str(e.value)
    assert msg == (
        "[Repository R]: OAuth2 token refresh at https://login.example.org/token failed: "
        "HTTP 400: invalid_grant (Token revoked.)"
    )
    assert "rtok" not in msg and "csecret" not in msg and e.value.hint


def test_refresh_against_an_http_endpoint(oauth: OAuthServer) -> None:
    oauth.refresh["good"] = "u1"
    config = OAuth2Config(client_id=lambda: "cid", request_url=f"{oauth.url}/token")
    token = TokenHolder(config, "[Repository R]", lambda: "good").token()
    assert oauth.access[token] == "u1"
    assert oauth.posts("/token") == [
        {"grant_type": "refresh_token", "client_id": "cid", "refresh_token": "good"}
    ]
    bad = TokenHolder(config, "[Repository R]", lambda: "bad")
    with pytest.raises(AuthError, match="HTTP 400: invalid_grant"):
        bad.token()


# ---- device flow and `mailtwin auth` -------------------------------------------------------------


def test_device_flow_polls_until_approved(oauth: OAuthServer) -> None:
    oauth.pending = 2
    said: list[str] = []
    naps: list[float] = []
    token = device.refresh_token(
        f"{oauth.url}/device", f"{oauth.url}/token", "cid", None, "mail", "[Repository R]",
        said.append, sleep=naps.append,
    )  # fmt: skip
    assert token in oauth.refresh
    assert oauth.posts("/device") == [{"client_id": "cid", "scope": "mail"}]
    assert len(oauth.posts("/token")) == 3 and naps == [0.0, 0.0, 0.0]
    assert any("WDJB-MJHT" in line and f"{oauth.url}/verify" in line for line in said)


def test_device_flow_refused() -> None:
    answers: list[tuple[int, dict[str, object]]] = [
        (200, {"device_code": "d", "user_code": "U", "verification_url": "https://v"}),
        (400, {"error": "slow_down"}),
        (400, {"error": "access_denied"}),
    ]
    naps: list[float] = []
    with pytest.raises(AuthError, match="HTTP 400: access_denied"):
        device.refresh_token(
            "https://d", "https://t", "cid", None, None, "[Repository R]", lambda s: None,
            post=lambda url, f: answers.pop(0), sleep=naps.append,
        )  # fmt: skip
    assert naps == [5.0, 10.0]  # the default interval, then 5 s more after slow_down


def test_auth_command_writes_a_private_token_file(
    tmp_path: Path, oauth: OAuthServer, capsys: pytest.CaptureFixture[str]
) -> None:
    oauth.device_user = "u1"
    path = write_config(
        tmp_path,
        f"oauth2_client_id = cid\noauth2_request_url = {oauth.url}/token\n"
        f"oauth2_device_url = {oauth.url}/device",
    )
    assert auth_main(["-c", str(path), "A"]) == 0
    token_file = tmp_path / "meta" / "oauth2" / "R.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert oauth.refresh[token] == "u1"
    out = capsys.readouterr().out
    assert str(token_file) in out and "oauth2_refresh_token_file" in out and token not in out


def test_auth_command_needs_a_client_id(tmp_path: Path) -> None:
    path = write_config(tmp_path, "remotepass = x")
    with pytest.raises(ConfigError, match="oauth2_client_id: is not set"):
        auth_main(["-c", str(path), "A"])


def test_secrets_are_kept_for_every_sync_of_the_process(tmp_path: Path) -> None:
    from mailtwin.secrets.credentials import for_repository

    auth = auth_of(tmp_path, "remotepass = x")
    first = for_repository("Repository R", "imap.example.org", "me", "x", auth)
    assert for_repository("Repository R", "imap.example.org", "me", "x", auth) is first
    assert for_repository("Repository R", "imap.example.org", "you", "x", auth) is not first


def test_auth_command_can_keep_the_token_in_the_keyring(
    tmp_path: Path,
    oauth: OAuthServer,
    keyring: dict[tuple[str, str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    oauth.device_user = "u9"
    path = write_config(
        tmp_path,
        f"remoteuser = me\noauth2_client_id = cid\noauth2_request_url = {oauth.url}/token\n"
        f"oauth2_device_url = {oauth.url}/device",
    )
    assert auth_main(["-c", str(path), "--keyring", "A"]) == 0
    token = keyring["mailtwin-oauth2:imap.example.org", "me"]
    assert "oauth2_refresh_token_keyring = yes" in capsys.readouterr().out
    assert not (tmp_path / "meta" / "oauth2").exists()
    # and a login finds it there
    auth = auth_of(
        tmp_path,
        f"remoteuser = me\noauth2_client_id = cid\noauth2_request_url = {oauth.url}/token\n"
        "oauth2_refresh_token_keyring = yes",
    )
    secrets = RepoSecrets("Repository R", "imap.example.org", "me", None, auth)
    assert secrets.has_token
    assert oauth.access[secrets.access_token()] == "u9"
    assert oauth.posts("/token")[-1]["refresh_token"] == token
    nobody = RepoSecrets("Repository R", "imap.example.org", "you", None, auth)
    with pytest.raises(ConfigError, match="no refresh token in the OS keyring"):
        nobody.access_token()


def test_unreachable_token_endpoint_names_the_repository() -> None:
    from mailtwin.demo.server import free_port
    from mailtwin.errors import ConnectionFailed

    url = f"http://127.0.0.1:{free_port()}/token"
    config = OAuth2Config(client_id=lambda: "cid", request_url=url)
    with pytest.raises(ConnectionFailed) as e:
        TokenHolder(config, "[Repository R]", lambda: "rt").token()
    assert str(e.value).startswith(f"[Repository R]: {url}: cannot reach the OAuth2 endpoint")
    assert "\n" not in str(e.value)


# ---- config code others could change ------------------------------------------------------------


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o620, True), (0o602, True)])
def test_config_and_pythonfile_writable_by_others_warn(
    tmp_path: Path, mode: int, warned: bool
) -> None:
    py = tmp_path / "helpers.py"
    py.write_text("def keep(name):\n    return True\n")
    py.chmod(mode)
    path = write_config(tmp_path, "remotepasscmd = true", mode)
    text = path.read_text().replace("[general]\n", f"[general]\npythonfile = {py}\n", 1)
    path.write_text(text)
    warnings: list[str] = []
    load_config(path, (), warnings.append)
    hits = [w for w in warnings if "chmod go-w" in w]
    assert len(hits) == (2 if warned else 0), warnings
    if warned:
        assert any("pythonfile" in w for w in hits) and any("config file" in w for w in hits)

"""Config: OfflineIMAP's INI semantics, -k, lookup order, the option table, typed values, errors."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mailtwin.config import Config, find_config, load_config, only_folders
from mailtwin.config.options import OPTIONS, Option
from mailtwin.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Pa55"


def _section(base: list[str], added: str) -> str:
    """``base`` lines, less those whose option ``added`` sets again, then ``added``."""
    keys = {
        line.split("=")[0].strip().lower()
        for line in added.splitlines()
        if line and not line[0].isspace() and "=" in line
    }
    kept = [line for line in base if line.split("=")[0].strip().lower() not in keys]
    return "\n".join([*kept, added])


def write(
    tmp_path: Path,
    *,
    general: str = "",
    account: str = "",
    local: str = "",
    remote: str = "",
    extra: str = "",
    head: str = "",
) -> Path:
    """A working two-repository config; each argument adds (or replaces) lines in that section."""
    text = f"""{head}
[general]
{_section(["accounts = Work"], general)}

[Account Work]
{_section(["localrepository = Local", "remoterepository = Remote"], account)}

[Repository Local]
{_section(["type = Maildir", f"localfolders = {tmp_path}/mail"], local)}

[Repository Remote]
{_section(["type = IMAP", "remotehost = imap.example.org", "remoteuser = me"], remote)}

{extra}
"""
    path = tmp_path / "offlineimaprc"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)  # a password may be in it: others may not read it (or the loader warns)
    return path


def load(path: Path, *overrides: str, only: list[str] | None = None) -> tuple[Config, list[str]]:
    warnings: list[str] = []
    config = load_config(path, overrides, warnings.append, only_accounts=only)
    return config, warnings


def error(path: Path, *overrides: str, only: list[str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(path, *overrides, only=only)
    return info.value


# ---- INI semantics ----


def test_interpolation_default_section_and_percent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        head="[DEFAULT]\nhost = mail.example.net\nautorefresh = 7\n",
        remote="remotehost = imap.%(host)s\nremotepass = 100%%sure\nremoteuser = %(remotehost)s",
    )
    config, warnings = load(path)
    remote = config.accounts["Work"].remote
    assert remote.remotehost == "imap.mail.example.net"
    assert remote.remoteuser == "imap.mail.example.net"  # refers to an option of the same section
    assert remote.remotepass == "100%sure"
    assert config.accounts["Work"].autorefresh == 7.0  # inherited from [DEFAULT]
    assert warnings == []  # [DEFAULT] helpers ("host") are not unknown options


def test_missing_interpolation_reference_names_option(tmp_path: Path) -> None:
    exc = error(write(tmp_path, remote="remoteuser = %(nothere)s"))
    assert str(exc).startswith("[Repository Remote] remoteuser: %(nothere)s refers to")


def test_option_names_are_case_insensitive_section_names_are_not(tmp_path: Path) -> None:
    config, warnings = load(write(tmp_path, remote="SSL = no", extra="[account Other]\nx = 1"))
    assert config.accounts["Work"].remote.ssl is False
    assert warnings == ["[account Other]: unknown section, ignored"]


def test_unparsable_line_is_named_by_number_not_content(tmp_path: Path) -> None:
    path = write(tmp_path, remote=SECRET)
    exc = error(path)
    assert re.search(r"line \d+", str(exc)) and SECRET not in str(exc)


def test_duplicate_section_is_an_error(tmp_path: Path) -> None:
    exc = error(write(tmp_path, extra="[Repository Local]\ntype = Maildir"))
    assert "[Repository Local] appears twice" in str(exc)


def test_option_before_any_section(tmp_path: Path) -> None:
    path = tmp_path / "rc"
    path.write_text(f"remotepass = {SECRET}\n[general]\naccounts = A\n")
    exc = error(path)
    assert "line 1" in str(exc) and SECRET not in str(exc)


# ---- -k overrides ----


def test_override_without_section_goes_to_general(tmp_path: Path) -> None:
    config, _ = load(write(tmp_path), "maxsyncaccounts=3")
    assert config.general.maxsyncaccounts == 3


def test_override_underscore_means_space_in_section(tmp_path: Path) -> None:
    path = write(tmp_path, account="autorefresh = 1")
    config, _ = load(path, "Account_Work:autorefresh=5", "Repository_Remote:remoteport=1143")
    assert config.accounts["Work"].autorefresh == 5.0
    assert config.accounts["Work"].remote.remoteport == 1143


def test_override_value_keeps_colons_and_equals(tmp_path: Path) -> None:
    config, _ = load(write(tmp_path), "Repository_Remote:remotepass=a:b=c")
    assert config.accounts["Work"].remote.remotepass == "a:b=c"


def test_override_last_one_wins_and_interpolates(tmp_path: Path) -> None:
    path = write(tmp_path, head="[DEFAULT]\nport = 2993")
    config, _ = load(
        path, "Repository_Remote:remoteport=1", "Repository_Remote:remoteport=%(port)s"
    )
    assert config.accounts["Work"].remote.remoteport == 2993


def test_override_of_default_section(tmp_path: Path) -> None:
    config, _ = load(write(tmp_path), "DEFAULT:autorefresh=2")
    assert config.accounts["Work"].autorefresh == 2.0


def test_override_unknown_option_warns(tmp_path: Path) -> None:
    _, warnings = load(write(tmp_path), "Account_Work:autorefesh=5")
    assert warnings == ["[Account Work] autorefesh: unknown option, ignored"]


def test_override_of_missing_section(tmp_path: Path) -> None:
    exc = error(write(tmp_path), "Account_Nope:autorefresh=5")
    assert "no section [Account Nope]" in str(exc)
    assert exc.hint and "Account_Work" in exc.hint


def test_override_without_equals(tmp_path: Path) -> None:
    assert "expected [section:]option=value" in str(error(write(tmp_path), "maxsyncaccounts"))


def test_override_with_lone_percent_hides_value(tmp_path: Path) -> None:
    exc = error(write(tmp_path), f"Repository_Remote:remotepass={SECRET}%")
    assert "[Repository Remote] remotepass" in str(exc)
    assert SECRET not in str(exc) and "%%" in str(exc)


def test_override_is_checked_like_the_file(tmp_path: Path) -> None:
    exc = error(write(tmp_path), "Account_Work:maxage=3")
    assert str(exc).startswith("[Account Work] maxage: ")


# ---- finding the file ----


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


def test_lookup_order(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    rc = home / ".offlineimaprc"
    oi = xdg / "offlineimap" / "config"
    mt = xdg / "mailtwin" / "config"
    with pytest.raises(ConfigError) as info:
        find_config(None)
    assert all(str(p) in str(info.value) for p in (mt, oi, rc))
    rc.write_text("")
    assert find_config(None) == rc
    oi.parent.mkdir(parents=True)
    oi.write_text("")
    assert find_config(None) == oi
    mt.parent.mkdir(parents=True)
    mt.write_text("")
    assert find_config(None) == mt
    explicit = tmp_path / "explicit"
    explicit.write_text("")
    assert find_config(explicit) == explicit


def test_lookup_xdg_defaults_to_dot_config(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "")  # empty counts as unset, as in OfflineIMAP
    path = home / ".config" / "offlineimap" / "config"
    path.parent.mkdir(parents=True)
    path.write_text("")
    assert find_config(None) == path


def test_explicit_path_expands_tilde_and_must_exist(home: Path) -> None:
    (home / "rc").write_text("")
    assert find_config(Path("~/rc")) == home / "rc"
    with pytest.raises(ConfigError, match="does not exist"):
        find_config(Path("~/nope"))


# ---- supported options: defaults and values ----


def test_defaults(tmp_path: Path, home: Path) -> None:
    config, warnings = load(write(tmp_path))
    assert warnings == []
    g = config.general
    assert g.accounts == ("Work",)
    assert g.metadata == home / ".offlineimap"
    assert (g.maxsyncaccounts, g.ui, g.socktimeout, g.fsync, g.pythonfile) == (
        1,
        None,
        None,
        True,
        None,
    )
    account = config.accounts["Work"]
    assert (account.name, account.autorefresh, account.quick) == ("Work", None, 0)
    local, remote = account.local, account.remote
    assert (local.name, local.type, local.localfolders, local.sep) == (
        "Local",
        "Maildir",
        tmp_path / "mail",
        ".",
    )
    assert remote.type == "IMAP" and remote.localfolders is None
    assert (remote.remotehost, remote.remoteport, remote.remoteuser, remote.remotepass) == (
        "imap.example.org",
        None,
        "me",
        None,
    )
    # three connections unless written (OfflineIMAP: one); a Maildir has no connections
    assert (local.maxconnections, remote.maxconnections) == (1, 3)
    for repo in (local, remote):
        assert (repo.ssl, repo.starttls, repo.expunge) == (True, True, True)
        assert repo.sslcacertfile is None
        assert (repo.readonly, repo.sync_deletes, repo.createfolders) == (False, True, True)
        assert repo.folderfilter("anything") is True
        assert repo.nametrans("INBOX.Sent") == "INBOX.Sent"
        assert repo.folderincludes == ()


def test_every_supported_option_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MT_DIR", str(tmp_path / "state"))
    (tmp_path / "helpers.py").write_text("def upper(name):\n    return name.upper()\n")
    (tmp_path / "ca.pem").write_text("")
    path = write(
        tmp_path,
        general=f"""metadata = $MT_DIR/meta
maxsyncaccounts = 4
ui = Quiet
socktimeout = 12.5
fsync = no
pythonfile = {tmp_path}/helpers.py""",
        account="autorefresh = 0.5\nquick = 10",
        local="""sep = /
readonly = yes
sync_deletes = off
createfolders = 0
folderfilter = lambda f: f != 'Trash'
nametrans = upper
folderincludes = ['debian.user']""",
        remote=f"""remoteport = 1993
remotepass = pw
ssl = false
starttls = no
expunge = no
maxconnections = 3
readonly = true
sslcacertfile = {tmp_path}/ca.pem""",
    )
    config, warnings = load(path)
    assert warnings == [  # the one warning: plain text to another machine
        "[Repository Remote] ssl = no and starttls = no: the password and mail cross the "
        "network to imap.example.org unencrypted"
    ]
    g = config.general
    assert g.metadata == tmp_path / "state" / "meta"
    assert (g.maxsyncaccounts, g.ui, g.socktimeout, g.fsync) == (4, "Quiet", 12.5, False)
    assert g.pythonfile == tmp_path / "helpers.py"
    account = config.accounts["Work"]
    assert (account.autorefresh, account.quick) == (0.5, 10)
    local, remote = account.local, account.remote
    assert local.sep == "/"
    assert (local.readonly, local.sync_deletes, local.createfolders) == (True, False, False)
    assert local.folderfilter("Trash") is False and local.folderfilter("INBOX") is True
    assert local.nametrans("sent") == "SENT"
    assert local.folderincludes == ("debian.user",)
    assert (remote.remoteport, remote.remotepass, remote.ssl, remote.starttls) == (
        1993,
        "pw",
        False,
        False,
    )
    assert (remote.expunge, remote.maxconnections, remote.readonly) == (False, 3, True)
    assert remote.sslcacertfile == tmp_path / "ca.pem"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", True), ("No", False), ("TRUE", True), ("off", False), ("1", True), ("0", False)],
)
def test_booleans_parse_like_configparser(tmp_path: Path, value: str, expected: bool) -> None:
    config, _ = load(write(tmp_path, general=f"fsync = {value}"))
    assert config.general.fsync is expected


def test_metadata_and_localfolders_expand_tilde_and_vars(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILDIRS", "/srv/mail")
    path = write(tmp_path, general="metadata = ~/meta", local="localfolders = $MAILDIRS/me")
    config, _ = load(path)
    assert config.general.metadata == home / "meta"
    assert config.accounts["Work"].local.localfolders == Path("/srv/mail/me")


def test_remotepassfile_first_line_stripped(tmp_path: Path, home: Path) -> None:
    (home / "pw").write_text(f"  {SECRET}  \nsecond line\n", encoding="utf-8")
    config, _ = load(write(tmp_path, remote="remotepassfile = ~/pw"))
    assert config.accounts["Work"].remote.remotepass == SECRET


def test_remotepass_wins_over_remotepassfile(tmp_path: Path) -> None:
    config, _ = load(write(tmp_path, remote="remotepass = a\nremotepassfile = /nonexistent"))
    assert config.accounts["Work"].remote.remotepass == "a"


def test_remotepassfile_missing(tmp_path: Path) -> None:
    exc = error(write(tmp_path, remote=f"remotepassfile = {tmp_path}/nope"))
    assert str(exc).startswith("[Repository Remote] remotepassfile: cannot read ")


def test_sslcacertfile(tmp_path: Path, home: Path) -> None:
    (home / "ca.pem").write_text("")
    config, _ = load(write(tmp_path, remote="sslcacertfile = ~/ca.pem"))
    assert config.accounts["Work"].remote.sslcacertfile == home / "ca.pem"
    config, _ = load(write(tmp_path, remote="sslcacertfile = OS-DEFAULT"))
    assert config.accounts["Work"].remote.sslcacertfile is None  # the system's trust store
    exc = error(write(tmp_path, remote="sslcacertfile = ~/nope.pem"))
    assert str(exc) == f"[Repository Remote] sslcacertfile: {home / 'nope.pem'}: no such file"


def test_socktimeout_zero_means_none(tmp_path: Path) -> None:
    config, _ = load(write(tmp_path, general="socktimeout = 0"))
    assert config.general.socktimeout is None


def test_autorefresh_zero_and_negative(tmp_path: Path) -> None:
    config, warnings = load(write(tmp_path, account="autorefresh = 0"))
    assert config.accounts["Work"].autorefresh is None and warnings == []
    config, warnings = load(write(tmp_path, account="autorefresh = -3"))
    assert config.accounts["Work"].autorefresh is None
    assert warnings == ["[Account Work] autorefresh: negative, so this account syncs once"]


def test_ui_names(tmp_path: Path) -> None:
    for name in ("basic", "TTYUI", "Curses.Blinkenlights", "machineui", "syslog"):
        config, _ = load(write(tmp_path, general=f"ui = {name}"))
        assert config.general.ui == name
    exc = error(write(tmp_path, general="ui = fancy"))
    assert str(exc).startswith("[general] ui: 'fancy' is not a user interface")


def test_imap_local_side_is_allowed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        account="localrepository = Other",
        extra="[Repository Other]\ntype = IMAP\nremotehost = other.example.org",
    )
    config, _ = load(path)
    assert config.accounts["Work"].local.type == "IMAP"
    assert config.accounts["Work"].local.remotehost == "other.example.org"


def test_maildir_sep_is_stripped_and_ignored_on_imap(tmp_path: Path) -> None:
    config, warnings = load(write(tmp_path, local="sep =  / ", remote="sep = /"))
    assert config.accounts["Work"].local.sep == "/"
    assert warnings == []  # OfflineIMAP ignores sep on IMAP too


# ---- accounts ----


def test_accounts_list_and_only_accounts(tmp_path: Path) -> None:
    extra = "[Account Home]\nlocalrepository = Local\nremoterepository = Remote"
    path = write(tmp_path, general="accounts = Work,  Home ,", extra=extra)
    config, _ = load(path)
    assert config.general.accounts == ("Work", "Home")
    assert list(config.accounts) == ["Work", "Home"]
    config, _ = load(path, only=["Home"])
    assert list(config.accounts) == ["Home"]
    assert config.general.accounts == ("Work", "Home")


def test_only_account_not_in_config(tmp_path: Path) -> None:
    exc = error(write(tmp_path), only=["Nope"])
    assert "-a Nope" in str(exc) and exc.hint and "Work" in exc.hint


def test_only_account_checks_only_its_sections(tmp_path: Path) -> None:
    # an unused account with an unsupported option and a broken repository does not stop -a Work
    extra = "[Account Old]\nlocalrepository = Gone\nremoterepository = Remote\nmaxage = 3"
    config, _ = load(write(tmp_path, extra=extra), only=["Work"])
    assert list(config.accounts) == ["Work"]


def test_only_folders_is_offlineimaps_f(tmp_path: Path) -> None:
    path = write(tmp_path, remote="folderfilter = lambda f: False\nfolderincludes = ['X']")
    config, _ = load(path)
    config = only_folders(config, ["INBOX", "Sent"])
    remote = config.accounts["Work"].remote
    assert remote.folderfilter("INBOX") and remote.folderfilter("Sent")
    assert not remote.folderfilter("X") and remote.folderincludes == ()


# ---- missing and wrong values ----


@pytest.mark.parametrize(
    ("kwargs", "start"),
    [
        ({"general": "accounts ="}, "[general] accounts: is empty"),
        ({"general": "accounts = Work, Nope"}, "[general] accounts: account 'Nope' has no"),
        ({"account": "localrepository ="}, "[Account Work] localrepository: is empty"),
        ({"account": "remoterepository = Gone"}, "[Account Work] remoterepository: there is no"),
        ({"account": "remoterepository = Local"}, "[Account Work] remoterepository: [Repository"),
        (
            {"account": "localrepository = Remote\nremoterepository = Remote"},
            "[Account Work] remoterepository: is 'Remote'",
        ),
        ({"local": "type = Mbox"}, "[Repository Local] type: 'Mbox' is not a repository type"),
        ({"local": "localfolders ="}, "[Repository Local] localfolders: is empty"),
        ({"local": "sep = "}, "[Repository Local] sep: is empty"),
    ],
)
def test_missing_or_wrong_structure(tmp_path: Path, kwargs: dict[str, str], start: str) -> None:
    assert str(error(write(tmp_path, **kwargs))).startswith(start)


def test_missing_required_options(tmp_path: Path) -> None:
    path = tmp_path / "rc"
    path.write_text(
        "[general]\naccounts = A\n[Account A]\nlocalrepository = L\nremoterepository = R\n"
        "[Repository L]\ntype = Maildir\n[Repository R]\ntype = IMAP\n"
    )
    assert str(error(path)) == "[Repository L] localfolders: is missing"
    path.write_text(path.read_text().replace("type = Maildir", "type = Maildir\nlocalfolders = /m"))
    assert str(error(path)) == "[Repository R] remotehost: is missing"
    path.write_text(path.read_text().replace("type = IMAP", ""))
    assert str(error(path)).startswith("[Repository R] type: is missing")
    path.write_text("[general]\naccounts = A\n[Account A]\nremoterepository = R\n")
    assert str(error(path)).startswith("[Account A] localrepository: is missing")
    path.write_text("[general]\n")
    assert str(error(path)).startswith("[general] accounts: is missing")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"general": "fsync = maybe"}, "[general] fsync: 'maybe' is not a boolean"),
        (
            {"general": "maxsyncaccounts = two"},
            "[general] maxsyncaccounts: 'two' is not a whole number",
        ),
        ({"general": "maxsyncaccounts = 0"}, "[general] maxsyncaccounts: '0' is out of range"),
        ({"general": "socktimeout = soon"}, "[general] socktimeout: 'soon' is not a number"),
        ({"account": "autorefresh = nan"}, "[Account Work] autorefresh: 'nan' is not a finite"),
        ({"account": "quick = 1.5"}, "[Account Work] quick: '1.5' is not a whole number"),
        (
            {"remote": "remoteport = 70000"},
            "[Repository Remote] remoteport: '70000' is out of range",
        ),
        ({"remote": "ssl = si"}, "[Repository Remote] ssl: 'si' is not a boolean"),
        ({"remote": "maxconnections = 0"}, "[Repository Remote] maxconnections: '0' is out of"),
        ({"local": "readonly = ja"}, "[Repository Local] readonly: 'ja' is not a boolean"),
    ],
)
def test_bad_values_name_section_option_and_value(
    tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    text = str(error(write(tmp_path, **kwargs)))
    assert text.startswith(message)
    assert "\n" not in text


# ---- unsupported, ignored and unknown options ----


def _place(opt: Option) -> dict[str, str]:
    name = "customflag_x" if opt.name == "customflag_[a-z]" else opt.name
    # a value that differs from any harmless one
    value = "x1"
    if opt.type == "bool":
        value = "no" if opt.default == "yes" else "yes"
    line = f"{name} = {value}"
    return {
        "general": {"general": line},
        "mbnames": {"extra": f"[mbnames]\n{line}"},
        "account": {"account": line},
        "repository": {"local": line},
        "repository:Maildir": {"local": line},
        "repository:IMAP": {"remote": line},
    }[opt.section]


UNSUPPORTED = [o for o in OPTIONS if o.status == "unsupported"]


@pytest.mark.parametrize("opt", UNSUPPORTED, ids=lambda o: f"{o.section}-{o.name}")
def test_every_unsupported_option_stops(tmp_path: Path, opt: Option) -> None:
    exc = error(write(tmp_path, **_place(opt)))
    name = "customflag_x" if opt.name == "customflag_[a-z]" else opt.name
    assert re.match(rf"\[[^]]+\] {re.escape(name)}: this option is not supported yet", str(exc))
    assert exc.option == name and exc.exit_code == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"account": "utf8foldernames = no"},
        {"account": "synclabels = no"},
        {"remote": 'reference = ""'},
        {"remote": "subscribedonly = no"},
        {"remote": "ssl_version = ssl23"},
        {"local": "filename_use_mail_timestamp = False"},
        {"extra": "[mbnames]\nenabled = no\nfilename = ~/muttrc.mailboxes"},
        {"general": "dry-run = False"},
    ],
)
def test_unsupported_option_with_harmless_value_is_accepted(
    tmp_path: Path, kwargs: dict[str, str]
) -> None:
    _, warnings = load(write(tmp_path, **kwargs))
    assert warnings == []


def test_gmail_types_are_unsupported(tmp_path: Path) -> None:
    exc = error(write(tmp_path, remote="type = Gmail"))
    assert str(exc) == "[Repository Remote] type: Gmail is not supported yet"
    exc = error(write(tmp_path, local="type = GmailMaildir"))
    assert str(exc) == "[Repository Local] type: GmailMaildir is not supported yet"
    # OfflineIMAP allows Gmail only as the remote side: as the local side it is plain wrong
    exc = error(write(tmp_path, local="type = Gmail"))
    assert str(exc).startswith("[Account Work] localrepository: [Repository Local] is of type")


def test_unsupported_in_default_applies_where_it_belongs(tmp_path: Path) -> None:
    exc = error(write(tmp_path, head="[DEFAULT]\nmaxage = 30"))
    assert str(exc) == "[Account Work] maxage: this option is not supported yet (set in [DEFAULT])"


def test_all_unsupported_options_are_listed(tmp_path: Path) -> None:
    exc = error(write(tmp_path, account="maxage = 3", remote="preauthtunnel = ssh h"))
    assert str(exc).startswith("[Account Work] maxage:")
    assert exc.hint and "[Repository Remote] preauthtunnel" in exc.hint


def test_unknown_misplaced_and_ignored_options_warn(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        general="remotehost = x",
        account="autorefesh = 5\nfoldersort = lambda a, b: 0",
        local="restoreatime = yes\nexpunge = no",
        remote="usecompression = yes\nholdconnectionopen = yes\nlocalfolders = /x\nretrycount = 5",
        extra="[Repository Unused]\ntype = IMAP\nusecompression = yes\nbogus = 1",
    )
    _, warnings = load(path)
    assert warnings == [
        "[general] remotehost: not used here (OfflineIMAP reads it in [Repository ...] of type "
        "IMAP), ignored",
        "[Account Work] autorefesh: unknown option, ignored",
        "[Account Work] foldersort: not used here (OfflineIMAP reads it in [Repository ...]), "
        "ignored",
        "[Repository Local] restoreatime: ignored by mailtwin: Folder access times are not "
        "restored after a sync (mail readers may mark new mail differently); what is synced is "
        "the same.",
        "[Repository Local] expunge: not used here (OfflineIMAP reads it in [Repository ...] of "
        "type IMAP), ignored",
        "[Repository Remote] usecompression: ignored by mailtwin: The connection is not "
        "compressed (more bytes, same result).",
        "[Repository Remote] localfolders: not used here (OfflineIMAP reads it in "
        "[Repository ...] of type Maildir), ignored",
    ]


def test_ignored_option_warns_once(tmp_path: Path) -> None:
    extra = (
        "[Account Home]\nlocalrepository = Local\nremoterepository = R2\n"
        "[Repository R2]\ntype = IMAP\nremotehost = h\nusecompression = yes"
    )
    path = write(
        tmp_path, general="accounts = Work, Home", remote="usecompression = yes", extra=extra
    )
    _, warnings = load(path)
    assert len([w for w in warnings if "usecompression" in w]) == 1


# ---- Python-valued options ----


def test_nametrans_and_folderfilter_use_re(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        remote=r"""nametrans = lambda folder: re.sub(r'^INBOX\.', '', folder)
folderfilter = lambda folder: not re.search('(^Trash$|Del)', folder)
folderincludes = ['debian.user', 'debian.personal']""",
    )
    remote = load(path)[0].accounts["Work"].remote
    assert remote.nametrans("INBOX.Sent") == "Sent"
    assert remote.folderfilter("Trash") is False
    assert remote.folderfilter("Deleted Items") is False
    assert remote.folderfilter("INBOX") is True
    assert remote.folderincludes == ("debian.user", "debian.personal")


def test_multiline_folderfilter(tmp_path: Path) -> None:
    remote = (
        "folderfilter = lambda foldername: foldername in [\n    'INBOX', 'Sent Mail',\n"
        "    'Received']"
    )
    repo = load(write(tmp_path, remote=remote))[0].accounts["Work"].remote
    assert repo.folderfilter("Sent Mail") and not repo.folderfilter("Spam")


def test_folderfilter_truthy_results_are_bools(tmp_path: Path) -> None:
    repo = load(write(tmp_path, remote="folderfilter = lambda f: re.match('IN', f)"))[0]
    remote = repo.accounts["Work"].remote
    assert remote.folderfilter("INBOX") is True and remote.folderfilter("Sent") is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "nametrans = lambda f: re.sub(",
            "[Repository Remote] nametrans: cannot evaluate: invalid Python",
        ),
        ("nametrans = nosuchhelper", "[Repository Remote] nametrans: cannot evaluate: NameError"),
        ("nametrans = 'INBOX'", "[Repository Remote] nametrans: is a str, not a function"),
        ("folderfilter = True", "[Repository Remote] folderfilter: is a bool, not a function"),
        ("folderincludes = 'INBOX'", "[Repository Remote] folderincludes: is a str, not a list"),
        ("folderincludes = [1, 2]", "[Repository Remote] folderincludes: is a list, not a list"),
        (
            "folderfilter = 1/0",
            "[Repository Remote] folderfilter: cannot evaluate: ZeroDivisionError",
        ),
    ],
)
def test_bad_python_expression_names_option(tmp_path: Path, line: str, message: str) -> None:
    text = str(error(write(tmp_path, remote=line)))
    assert text.startswith(message) and "\n" not in text


def test_failing_function_names_option_and_folder(tmp_path: Path) -> None:
    path = write(tmp_path, remote="nametrans = lambda f: f.nope()\nfolderfilter = lambda f: 1/0")
    remote = load(path)[0].accounts["Work"].remote
    with pytest.raises(
        ConfigError, match=r"^\[Repository Remote\] nametrans: failed on folder 'X'"
    ):
        remote.nametrans("X")
    with pytest.raises(ConfigError, match=r"^\[Repository Remote\] folderfilter: failed on folder"):
        remote.folderfilter("X")
    path = write(tmp_path, remote="nametrans = lambda f: None")
    remote = load(path)[0].accounts["Work"].remote
    with pytest.raises(ConfigError, match="returned NoneType, not a folder name"):
        remote.nametrans("X")


def test_pythonfile_names_are_visible(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / ".offlineimap.py").write_text(
        "import re as regex\nSKIP = {'Trash', 'Spam'}\n"
        "def keep(folder):\n    return folder not in SKIP\n"
        "def local(folder):\n    return regex.sub('^INBOX$', 'inbox', folder)\n"
    )
    monkeypatch.delitem(sys.modules, "<none>", raising=False)
    path = write(
        tmp_path,
        general="pythonfile = ~/.offlineimap.py",
        remote="folderfilter = keep\nnametrans = local\nfolderincludes = sorted(SKIP)",
    )
    remote = load(path)[0].accounts["Work"].remote
    assert remote.folderfilter("INBOX") and not remote.folderfilter("Trash")
    assert remote.nametrans("INBOX") == "inbox"
    assert remote.folderincludes == ("Spam", "Trash")


def test_idlefolders(tmp_path: Path) -> None:
    repo = load(write(tmp_path, remote="idlefolders = ['INBOX', 'Lists/dev']"))[0]
    assert repo.accounts["Work"].remote.idlefolders == ("INBOX", "Lists/dev")
    assert load(write(tmp_path))[0].accounts["Work"].remote.idlefolders == ()
    exc = error(write(tmp_path, remote="idlefolders = 'INBOX'"))
    assert str(exc).startswith("[Repository Remote] idlefolders: is a str, not a list")
    # on the local side (an IMAP one) nothing would watch them: said, not silently dropped
    local = "type = IMAP\nremotehost = backup.example.org\nremoteuser = me\n"
    _, warnings = load(write(tmp_path, local=local + "idlefolders = ['INBOX']"))
    assert (
        "[Repository Local] idlefolders: only the remote repository's folders are watched "
        "(account Work); ignored here"
    ) in warnings


def test_newmail_hook_must_be_a_function(tmp_path: Path) -> None:
    repo = load(write(tmp_path, remote="newmail_hook = lambda: None"))[0].accounts["Work"].remote
    assert repo.newmail_hook is not None and repo.newmail_hook() is None
    exc = error(write(tmp_path, remote="newmail_hook = 'notify-send'"))
    assert str(exc).startswith("[Repository Remote] newmail_hook: is a str, not a function")


def test_host_and_port_from_python(tmp_path: Path) -> None:
    (tmp_path / "helpers.py").write_text(
        "HOSTS = {'work': 'imap.work.example'}\ndef port(): return 1143\n"
    )
    general = f"pythonfile = {tmp_path}/helpers.py"
    remote = "remotehosteval = HOSTS['work']\nremoteporteval = port()"
    repo = load(write(tmp_path, general=general, remote=remote))[0].accounts["Work"].remote
    assert (repo.remotehost, repo.remoteport) == ("imap.work.example", 1143)
    # nothing from the expression: remotehost and remoteport, as OfflineIMAP falls back
    remote = "remotehosteval = None\nremoteporteval = None\nremoteport = 993"
    repo = load(write(tmp_path, general=general, remote=remote))[0].accounts["Work"].remote
    assert (repo.remotehost, repo.remoteport) == ("imap.example.org", 993)


@pytest.mark.parametrize(
    ("remote", "message"),
    [
        ("remotehosteval = 42", "[Repository Remote] remotehosteval: gave a int, not a host name"),
        ("remoteporteval = '993'", "[Repository Remote] remoteporteval: gave '993', not a port"),
        ("remoteporteval = 70000", "[Repository Remote] remoteporteval: gave 70000, not a port"),
        ("remoteporteval = nope", "[Repository Remote] remoteporteval: cannot evaluate: NameError"),
    ],
)
def test_bad_host_or_port_expression(tmp_path: Path, remote: str, message: str) -> None:
    assert str(error(write(tmp_path, remote=remote))).startswith(message)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def broken(:\n", "invalid Python"),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ],
)
def test_broken_pythonfile(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "helpers.py").write_text(source)
    exc = error(write(tmp_path, general=f"pythonfile = {tmp_path}/helpers.py"))
    assert str(exc).startswith("[general] pythonfile: loading ") and message in str(exc)


def test_missing_pythonfile(tmp_path: Path) -> None:
    exc = error(write(tmp_path, general=f"pythonfile = {tmp_path}/nope.py"))
    assert str(exc).startswith("[general] pythonfile: cannot read ")


# ---- passwords never shown ----


def test_password_not_in_interpolation_errors(tmp_path: Path) -> None:
    for value in (f"{SECRET}%", f"{SECRET}%(x", f"%({SECRET})s"):
        exc = error(write(tmp_path, remote=f"remotepass = {value}"))
        assert str(exc).startswith("[Repository Remote] remotepass: ")
        assert SECRET not in str(exc) and SECRET not in (exc.hint or "")


def test_password_not_in_repr(tmp_path: Path) -> None:
    config, _ = load(write(tmp_path, remote=f"remotepass = {SECRET}"))
    assert config.accounts["Work"].remote.remotepass == SECRET
    assert SECRET not in repr(config)


def test_secret_unsupported_option_value_not_shown(tmp_path: Path) -> None:
    exc = error(write(tmp_path, remote=f"oauth2_refresh_token = {SECRET}\npreauthtunnel = ssh h"))
    assert SECRET not in str(exc) and SECRET not in (exc.hint or "")


# ---- the table and its document ----


def test_table_is_consistent() -> None:
    keys = [(o.section, o.name) for o in OPTIONS]
    assert len(keys) == len(set(keys))
    for o in OPTIONS:
        assert o.doc.strip() and "\n" not in o.doc
        if o.type == "bool" and o.default is not None:
            assert o.default in ("yes", "no")
        if o.status != "unsupported":
            assert not o.harmless


def test_compatibility_doc_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location("gen_compat", ROOT / "scripts" / "gen_compat.py")
    assert spec and spec.loader
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = ROOT / "docs" / "compatibility.md"
    assert doc.read_text(encoding="utf-8") == module.render(doc.read_text(encoding="utf-8")), (
        "docs/compatibility.md is stale: run python scripts/gen_compat.py"
    )

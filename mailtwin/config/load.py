"""Find the config file, read it, check every option against the table, build the typed Config.

Everything is checked here, before any network or disk I/O (reading the file, a pythonfile and a
remotepassfile aside): an option mailtwin does not support yet stops the run, an unknown one warns,
a bad or missing value fails naming its section and option. Only the sections a run uses are
checked: [general], [mbnames], the chosen accounts and their repositories.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from mailtwin.config import authopts
from mailtwin.config import options as table
from mailtwin.config import tls as tlsopts
from mailtwin.config.ini import RawConfig, read_ini
from mailtwin.config.model import (
    AccountConfig,
    AuthConfig,
    Config,
    GeneralConfig,
    MbnamesConfig,
    RepositoryConfig,
)
from mailtwin.config.options import BOOLEANS, Kind, Option, RepoType
from mailtwin.config.pyeval import (
    FolderFilter,
    PythonEnv,
    folder_filter,
    folder_includes,
    name_trans,
)
from mailtwin.errors import ConfigError
from mailtwin.model import replace
from mailtwin.secrets.files import warn_if_loose, warn_if_writable

Warn = Callable[[str], None]

_PLACES: dict[Kind, str] = {
    "general": "[general]",
    "mbnames": "[mbnames]",
    "account": "[Account ...]",
    "repository": "[Repository ...]",
    "repository:Maildir": "[Repository ...] of type Maildir",
    "repository:IMAP": "[Repository ...] of type IMAP",
}
# connections per IMAP repository when maxconnections is unset: folders overlap their round
# trips, well under common per-user limits (Dovecot 10, Gmail 15); a refusal shrinks the pool
MAXCONNECTIONS = 3
# the repository types OfflineIMAP allows on each side (Gmail ones are then refused as unsupported)
_SIDES = {"local": ("Maildir", "IMAP", "GmailMaildir"), "remote": ("IMAP", "Gmail")}
_UNSUPPORTED_HINT = (
    "mailtwin stops rather than sync differently from OfflineIMAP; see docs/compatibility.md"
)


def _stderr(message: str) -> None:
    print(f"mailtwin: warning: {message}", file=sys.stderr)


def find_config(explicit: Path | None) -> Path:
    """-c, else $XDG_CONFIG_HOME/mailtwin/config, $XDG_CONFIG_HOME/offlineimap/config (XDG
    default ~/.config), ~/.offlineimaprc: OfflineIMAP's lookup with mailtwin's own file first."""
    if explicit is not None:
        path = Path(os.path.expanduser(explicit))
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"))
    tried = [
        xdg / "mailtwin" / "config",
        xdg / "offlineimap" / "config",
        Path(os.path.expanduser("~/.offlineimaprc")),
    ]
    for path in tried:
        if path.exists():
            return path
    raise ConfigError(
        "no config file found; tried " + ", ".join(str(p) for p in tried),
        hint="write one in OfflineIMAP's format, or name it with -c FILE",
    )


def load_config(
    path: Path | None = None,
    overrides: Sequence[str] = (),
    warn: Warn = _stderr,
    only_accounts: Sequence[str] | None = None,
) -> Config:
    """Read and check the config; ``overrides`` are -k's, ``only_accounts`` -a's."""
    raw = read_ini(find_config(path), overrides)
    return _Loader(raw, warn).load(only_accounts)


def only_folders(config: Config, folders: Sequence[str]) -> Config:
    """What OfflineIMAP's -f does to a config: each account's remote repository syncs exactly
    ``folders`` (remote names, before nametrans), whatever its folderfilter and folderincludes
    say; the local repository's folderfilter still applies."""
    wanted = tuple(folders)
    accounts = {}
    for name, account in config.accounts.items():
        remote = account.remote
        only = FolderFilter(remote.section, f"lambda f: f in {list(wanted)!r}", wanted.__contains__)
        accounts[name] = replace(
            account, remote=replace(remote, folderfilter=only, folderincludes=())
        )
    return replace(config, accounts=MappingProxyType(accounts))


class _Unsupported:
    __slots__ = ("hint", "message", "option", "section")

    def __init__(self, section: str, option: str, message: str, hint: str) -> None:
        self.section, self.option, self.message, self.hint = section, option, message, hint


class _Loader:
    def __init__(self, raw: RawConfig, warn: Warn) -> None:
        self.raw = raw
        self.warn = warn
        self.unsupported: list[_Unsupported] = []
        self.warned_ignored: set[str] = set()
        self.env: PythonEnv | None = None
        self.secret_options: list[str] = []  # "[section] option" holding a secret in the file

    def load(self, only_accounts: Sequence[str] | None) -> Config:
        raw = self.raw
        for section in raw.sections():
            if section not in ("general", "mbnames") and not section.startswith(
                ("Account ", "Repository ")
            ):
                self.warn(f"[{section}]: unknown section, ignored")

        # what the run uses: accounts, their repositories and those repositories' types
        listed = _split(raw.get("general", "accounts") or "")
        names = _split(",".join(only_accounts)) if only_accounts is not None else listed
        if only_accounts is None and not listed:
            what = "is empty" if raw.has_option("general", "accounts") else "is missing"
            raise ConfigError(f"{what}: name the accounts to sync", "general", "accounts")
        if not names:
            raise ConfigError("-a names no account")
        accounts = list(dict.fromkeys(names))  # in order, once each
        defined = [s[len("Account ") :] for s in raw.sections() if s.startswith("Account ")]
        for name in accounts:
            if f"Account {name}" not in raw.sections():
                known = ", ".join(defined) or "none"
                if only_accounts is not None:
                    raise ConfigError(
                        f"-a {name}: there is no [Account {name}] section",
                        hint=f"accounts in {raw.path}: {known}",
                    )
                raise ConfigError(
                    f"account {name!r} has no [Account {name}] section",
                    "general",
                    "accounts",
                    hint=f"accounts defined: {known}",
                )
        repos: dict[str, RepoType | None] = {}  # None: a type that is not supported yet
        pairs: dict[str, tuple[str, str]] = {}
        for name in accounts:
            pairs[name] = self._repo_names(name, repos)

        # survey every used section: warnings, and each unsupported option noted
        if raw.has_section("general"):
            self._survey("general", table.section_kinds("general"))
        if raw.has_section("mbnames"):
            self._survey("mbnames", table.section_kinds("mbnames"))
        for name in accounts:
            self._survey(f"Account {name}", table.section_kinds("account"))
        for repo, kind in repos.items():
            if kind is not None:
                self._survey(f"Repository {repo}", table.section_kinds(kind))
        if self.unsupported:
            first, *more = self.unsupported
            hint = first.hint
            if more:
                also = ", ".join(f"[{u.section}] {u.option}" for u in more)
                hint += f". Also not supported yet: {also}"
            raise ConfigError(first.message, first.section, first.option, hint=hint)

        # typed values
        general = self._general(listed)
        warn_if_writable(raw.path, "the config file", self.warn)
        if general.pythonfile is not None:
            warn_if_writable(general.pythonfile, "[general] pythonfile", self.warn)
            self.env = PythonEnv.load(general.pythonfile)
        built: dict[str, RepositoryConfig] = {}
        for repo, kind in repos.items():
            assert kind is not None  # an unsupported type stopped above
            built[repo] = self._repository(repo, kind)
        result = {
            name: self._account(name, built[local], built[remote])
            for name, (local, remote) in pairs.items()
        }
        warn_if_loose(raw.path, self.secret_options, self.warn)
        return Config(raw.path, general, MappingProxyType(result), self._mbnames())

    # ---- structure ----

    def _repo_names(self, account: str, repos: dict[str, RepoType | None]) -> tuple[str, str]:
        section = f"Account {account}"
        names = []
        for option, role in (("localrepository", "local"), ("remoterepository", "remote")):
            repo = _required(self.raw, section, option, "name a [Repository ...] section").strip()
            if not self.raw.has_section(f"Repository {repo}"):
                raise ConfigError(f"there is no [Repository {repo}] section", section, option)
            if repo not in repos:
                repos[repo] = self._repo_type(repo)
            stored = (self.raw.get(f"Repository {repo}", "type") or "").strip()
            if stored not in _SIDES[role]:  # as repository/__init__.py's typemaps
                raise ConfigError(
                    f"[Repository {repo}] is of type {stored}, which cannot be the {role} side "
                    f"(OfflineIMAP allows {', '.join(_SIDES[role])} there)",
                    section,
                    option,
                )
            names.append(repo)
        if names[0] == names[1]:
            raise ConfigError(
                f"is {names[0]!r}, the same as localrepository: a repository cannot sync with "
                "itself",
                section,
                "remoterepository",
            )
        return names[0], names[1]

    def _repo_type(self, repo: str) -> RepoType | None:
        section = f"Repository {repo}"
        value = _required(self.raw, section, "type", "Maildir or IMAP").strip()
        if value == "Maildir":
            return "Maildir"
        if value == "IMAP":
            return "IMAP"
        if value in ("Gmail", "GmailMaildir"):
            self.unsupported.append(
                _Unsupported(
                    section,
                    "type",
                    f"{value} is not supported yet",
                    "use Maildir or IMAP; " + _UNSUPPORTED_HINT,
                )
            )
            return None
        raise ConfigError(f"{value!r} is not a repository type (Maildir or IMAP)", section, "type")

    def _survey(self, section: str, kinds: tuple[Kind, ...]) -> None:
        raw = self.raw
        own = raw.own_options(section)
        for name in raw.options(section):
            inherited = name not in own
            opt = table.lookup(kinds, name)
            if opt is None:
                if inherited:
                    continue  # [DEFAULT] also holds %(name)s helpers and other sections' options
                places = sorted({_PLACES[o.section] for o in table.elsewhere(name)})
                if places:
                    self.warn(
                        f"[{section}] {name}: not used here (OfflineIMAP reads it in "
                        f"{' and '.join(places)}), ignored"
                    )
                else:
                    self.warn(f"[{section}] {name}: unknown option, ignored")
            elif opt.status == "unsupported":
                value = raw.get(section, name, secret=opt.secret)
                if value is not None and not opt.is_harmless(value):
                    origin = " (set in [DEFAULT])" if inherited else ""
                    self.unsupported.append(
                        _Unsupported(
                            section,
                            name,
                            f"this option is not supported yet{origin}",
                            f"{opt.doc} {_UNSUPPORTED_HINT}",
                        )
                    )
            elif opt.status == "ignored" and opt.warn and name not in self.warned_ignored:
                self.warned_ignored.add(name)
                self.warn(f"[{section}] {name}: ignored by mailtwin: {opt.doc}")

    # ---- typed values ----

    def _general(self, accounts: list[str]) -> GeneralConfig:
        r = _Reader(self.raw, "general", "general")
        ui = r.text("ui")
        if ui is not None:
            ui = ui.strip()
            if table.ui_kind(ui) is None:
                names = ", ".join(table.UI_KINDS)
                raise ConfigError(f"{ui!r} is not a user interface ({names})", "general", "ui")
        socktimeout = r.number("socktimeout")
        return GeneralConfig(
            accounts=tuple(accounts),
            metadata=r.path("metadata") or Path(os.path.expanduser("~/.offlineimap")),
            maxsyncaccounts=r.integer("maxsyncaccounts", minimum=1) or 1,
            ui=ui,
            socktimeout=socktimeout if socktimeout is not None and socktimeout > 0 else None,
            fsync=r.boolean("fsync"),
            pythonfile=r.path("pythonfile"),
        )

    def _mbnames(self) -> MbnamesConfig | None:
        """[mbnames], read as OfflineIMAP's mbnames.py reads it: header, sep and footer are
        Python strings (evaluated), peritem is taken as written."""
        section = "mbnames"
        if not self.raw.has_section(section):
            return None
        r = _Reader(self.raw, section, "mbnames")
        if not r.boolean("enabled"):
            return None
        env = self.env or PythonEnv()
        filename = r.path("filename", required=True)
        assert filename is not None
        texts: dict[str, str] = {}
        for name in ("header", "sep", "footer"):
            value = env.eval(r.required(name), section, name)
            if not isinstance(value, str):
                raise ConfigError(
                    f"is a {type(value).__name__}, not a string: it is Python, so quote it "
                    '(e.g. "mailboxes ")',
                    section,
                    name,
                )
            texts[name] = value
        peritem = self.raw.get_raw(section, "peritem")
        if peritem is None:
            raise ConfigError("is missing", section, "peritem")
        try:
            peritem % {"accountname": "", "foldername": "", "localfolders": ""}
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigError(
                f"is not a %-format of accountname, foldername and localfolders ({e!r})",
                section,
                "peritem",
                hint='e.g. peritem = "+%(accountname)s/%(foldername)s"',
            ) from None
        functions: dict[str, Callable[..., object] | None] = {}
        for name in ("folderfilter", "sort_keyfunc"):
            expr = r.text(name)
            fn = None if expr is None else env.eval(expr, section, name)
            if fn is not None and not callable(fn):
                raise ConfigError(f"is a {type(fn).__name__}, not a function", section, name)
            functions[name] = fn
        return MbnamesConfig(
            filename,
            texts["header"],
            peritem,
            texts["sep"],
            texts["footer"],
            incremental=r.boolean("incremental"),
            folderfilter=functions["folderfilter"],
            sort_keyfunc=functions["sort_keyfunc"],
        )

    def _account(
        self, name: str, local: RepositoryConfig, remote: RepositoryConfig
    ) -> AccountConfig:
        r = _Reader(self.raw, f"Account {name}", "account")
        autorefresh = r.number("autorefresh")
        if autorefresh is not None and autorefresh < 0:
            # OfflineIMAP warns and treats it as 0 too
            self.warn(f"[Account {name}] autorefresh: negative, so this account syncs once")
        if local.idlefolders:
            self.warn(
                f"[{local.section}] idlefolders: only the remote repository's folders are "
                f"watched (account {name}); ignored here"
            )
        return AccountConfig(
            name=name,
            local=local,
            remote=remote,
            autorefresh=autorefresh if autorefresh is not None and autorefresh > 0 else None,
            quick=r.integer("quick") or 0,
            max_deletes=_default(r.integer("max_deletes", minimum=0), 50),
            max_delete_share=_default(r.integer("max_delete_share", minimum=0, maximum=100), 25),
            presynchook=(r.text("presynchook") or "").strip(),
            postsynchook=(r.text("postsynchook") or "").strip(),
            infosep="!" if r.boolean("maildir-windows-compatible") else ":",
        )

    def _repository(self, name: str, kind: RepoType) -> RepositoryConfig:
        section = f"Repository {name}"
        r = _Reader(self.raw, section, kind)
        env = self.env or PythonEnv()
        imap = kind == "IMAP"
        localfolders = sep = None
        if not imap:
            localfolders = r.path("localfolders", required=True)
            sep = (r.text("sep") or "").strip()
            if not sep:
                raise ConfigError("is empty; it goes between folder name parts", section, "sep")
        cafile = clientcert = clientkey = None
        host = self._host(r, env) if imap else None
        if imap:
            assert host is not None
            cafile = self._cafile(r)
            clientcert, clientkey = r.path("sslclientcert"), r.path("sslclientkey")
            tlsopts.check_files(section, cafile, clientcert, clientkey)
            if not r.boolean("ssl") and not r.boolean("starttls"):
                plain = tlsopts.plaintext_warning(host)
                if plain is not None:
                    self.warn(f"[{section}] {plain}")
        return RepositoryConfig(
            name=name,
            type=kind,
            localfolders=localfolders,
            sep=sep or ".",
            remotehost=host,
            remoteport=self._port(r, env) if imap else None,
            remoteuser=r.text("remoteuser") if imap else None,
            remotepass=self._password(r) if imap else None,
            ssl=r.boolean("ssl") if imap else True,
            starttls=r.boolean("starttls") if imap else True,
            readonly=r.boolean("readonly"),
            sync_deletes=r.boolean("sync_deletes"),
            createfolders=r.boolean("createfolders"),
            folderfilter=folder_filter(env, section, r.text("folderfilter")),
            nametrans=name_trans(env, section, r.text("nametrans")),
            folderincludes=folder_includes(env, section, r.text("folderincludes")),
            expunge=r.boolean("expunge") if imap else True,
            maxconnections=(r.integer("maxconnections", minimum=1) or MAXCONNECTIONS)
            if imap
            else 1,
            sslcacertfile=cafile,
            cert_fingerprint=tlsopts.fingerprints(r.text("cert_fingerprint"), section)
            if imap
            else (),
            sslclientcert=clientcert.absolute() if clientcert else None,
            sslclientkey=clientkey.absolute() if clientkey else None,
            tls_version=tlsopts.lowest_version(r.text("ssl_version"), r.text("tls_level"), section)
            if imap
            else None,
            auth=self._auth(r, env, host) if host is not None else None,
            idlefolders=folder_includes(env, section, r.text("idlefolders"), "idlefolders")
            if imap
            else (),
            newmail_hook=self._newmail_hook(r, env) if imap else None,
        )

    def _newmail_hook(self, r: _Reader, env: PythonEnv) -> Callable[[], object] | None:
        expr = r.text("newmail_hook")
        if expr is None:
            return None
        fn = env.eval(expr, r.section, "newmail_hook")
        if not callable(fn):
            raise ConfigError(
                f"is a {type(fn).__name__}, not a function (e.g. lambda: os.system(...))",
                r.section,
                "newmail_hook",
            )
        return fn

    def _host(self, r: _Reader, env: PythonEnv) -> str:
        """remotehosteval when it gives a name, else remotehost: OfflineIMAP's gethost()."""
        expr = r.text("remotehosteval")
        if expr is not None:
            value = env.eval(expr, r.section, "remotehosteval")
            if value:
                if not isinstance(value, str):
                    what = f"gave a {type(value).__name__}, not a host name"
                    raise ConfigError(what, r.section, "remotehosteval")
                return value.strip()
        return r.required("remotehost").strip()

    def _port(self, r: _Reader, env: PythonEnv) -> int | None:
        """remoteporteval when it gives a port, else remoteport: OfflineIMAP's getport()."""
        expr = r.text("remoteporteval")
        if expr is not None:
            value = env.eval(expr, r.section, "remoteporteval")
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                    raise ConfigError(
                        f"gave {value!r}, not a port number (1-65535)", r.section, "remoteporteval"
                    )
                return value
        return r.integer("remoteport", minimum=1, maximum=65535)

    def _auth(self, r: _Reader, env: PythonEnv, host: str) -> AuthConfig:
        """Login options; their secrets are looked up at login (mailtwin.secrets)."""
        for name in authopts.SECRET_OPTIONS:
            if self.raw.get(r.section, name, secret=True) is not None:
                self.secret_options.append(f"[{r.section}] {name}")
        return authopts.build(r.section, host, r.text, r.path, r.boolean, env)

    def _cafile(self, r: _Reader) -> Path | None:
        """As IMAP.py getsslcacertfile(): OS-DEFAULT is the system's store; a file must exist."""
        value = r.text("sslcacertfile")
        if value is None or value.strip() == "OS-DEFAULT":
            return None
        path = r.path("sslcacertfile")
        assert path is not None
        if not path.is_file():
            raise ConfigError(f"{path}: no such file", r.section, "sslcacertfile")
        return path.absolute()

    def _password(self, r: _Reader) -> str | None:
        """remotepass, else remotepassfile's first line (stripped), as IMAP.py getpassword().
        Registered for redaction as soon as it is read."""
        from mailtwin.ui.redact import register

        password = r.text("remotepass")
        if password is not None:
            register(password)
            return password
        name = r.text("remotepassfile")
        if name is None:
            return None
        path = Path(os.path.expanduser(name.strip()))  # OfflineIMAP expands ~ but not $VARS
        try:
            with path.open(encoding="utf-8") as f:
                password = f.readline().strip()
                register(password)
                return password
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text", r.section, "remotepassfile") from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read {path}: {exc.strerror or exc}", r.section, "remotepassfile"
            ) from None


class _Reader:
    """Typed reads of one section, defaults from the table; errors name section, option, value."""

    def __init__(
        self,
        raw: RawConfig,
        section: str,
        kind: Literal["general", "mbnames", "account"] | RepoType,
    ) -> None:
        self.raw = raw
        self.section = section
        self.kinds = table.section_kinds(kind)

    def _opt(self, name: str) -> Option:
        opt = table.lookup(self.kinds, name)
        assert opt is not None, f"{name} is not in the option table for {self.kinds}"
        return opt

    def text(self, name: str, required: bool = False) -> str | None:
        opt = self._opt(name)
        value = self.raw.get(self.section, name, secret=opt.secret)
        if value is None:
            if required:
                raise ConfigError("is missing", self.section, name)
            return opt.default
        return value

    def required(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def boolean(self, name: str) -> bool:
        value = self.text(name)
        assert value is not None, f"{name} has no default"
        parsed = BOOLEANS.get(value.strip().lower())
        if parsed is None:
            raise ConfigError(
                f"{value!r} is not a boolean (yes/no, true/false, on/off, 1/0)", self.section, name
            )
        return parsed

    def integer(
        self, name: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{value!r} is not a whole number", self.section, name) from None
        too_low = minimum is not None and number < minimum
        if too_low or (maximum is not None and number > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            raise ConfigError(f"{value!r} is out of range ({bounds})", self.section, name)
        return number

    def number(self, name: str) -> float | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{value!r} is not a number", self.section, name) from None
        if not math.isfinite(number):
            raise ConfigError(f"{value!r} is not a finite number", self.section, name)
        return number

    def path(self, name: str, required: bool = False) -> Path | None:
        """~ then $VARS expanded, in OfflineIMAP's order."""
        value = self.text(name, required)
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ConfigError("is empty", self.section, name)
        return Path(os.path.expandvars(os.path.expanduser(value)))


def _required(raw: RawConfig, section: str, option: str, what: str) -> str:
    value = raw.get(section, option)
    if value is None or not value.strip():
        state = "is missing" if value is None else "is empty"
        raise ConfigError(f"{state} ({what})", section, option)
    return value


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _default(value: int | None, default: int) -> int:
    return default if value is None else value

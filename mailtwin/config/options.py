"""Every option OfflineIMAP 8 knows, in one table: where it goes, its type and default, and what
mailtwin does with it. The loader (load.py) and docs/compatibility.md both read this table.

Facts come from OfflineIMAP's sample config (offlineimap.conf) and the code that reads each option
(repository/*.py, accounts.py, init.py, folder/*.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from mailtwin.model import Frozen, _set

Status = Literal["supported", "unsupported", "ignored"]
"""supported: read and honoured. unsupported: mailtwin would sync differently, so setting it
stops the run (unless its value is one in ``harmless``). ignored: known, harmless to leave out."""

Kind = Literal[
    "general", "mbnames", "account", "repository", "repository:Maildir", "repository:IMAP"
]
"""Which section an option belongs to; ``repository:X`` only in repositories of type X."""

RepoType = Literal["Maildir", "IMAP"]

BOOLEANS: Mapping[str, bool] = {
    # configparser's getboolean(), which OfflineIMAP uses
    "1": True,
    "yes": True,
    "true": True,
    "on": True,
    "0": False,
    "no": False,
    "false": False,
    "off": False,
}


class Option(Frozen):
    __match_args__ = (
        "name",
        "section",
        "type",
        "default",
        "status",
        "doc",
        "harmless",
        "warn",
        "required",
        "secret",
    )
    __slots__ = __match_args__
    name: str  # as OfflineIMAP spells it; "customflag_[a-z]" stands for 26 names
    section: Kind
    type: str  # bool, int, float, str, path, list, python, password
    default: str | None  # as a config file would write it; None: unset
    status: Status
    doc: str  # one line; for unsupported/ignored options, says why
    harmless: tuple[str, ...]  # unsupported: values that ask for what mailtwin does anyway
    warn: bool  # ignored: say so once when it is set
    required: bool
    secret: bool  # never show its value

    def __init__(
        self,
        name: str,
        section: Kind,
        type: str,
        default: str | None,
        status: Status,
        doc: str,
        harmless: tuple[str, ...] = (),
        warn: bool = False,
        required: bool = False,
        secret: bool = False,
    ) -> None:
        _set(self, "name", name)
        _set(self, "section", section)
        _set(self, "type", type)
        _set(self, "default", default)
        _set(self, "status", status)
        _set(self, "doc", doc)
        _set(self, "harmless", harmless)
        _set(self, "warn", warn)
        _set(self, "required", required)
        _set(self, "secret", secret)

    def is_harmless(self, value: str) -> bool:
        """True if ``value`` asks for what mailtwin does anyway (e.g. ``utf8foldernames = no``)."""
        value = value.strip()
        if self.type == "bool" and self.default is not None:
            # only a boolean default counts; an unset ``ipv6`` has no harmless value
            parsed = BOOLEANS.get(value.lower())
            return parsed is not None and parsed == BOOLEANS[self.default]
        return value in self.harmless


def _s(
    name: str,
    kind: Kind,
    type: str,
    default: str | None,
    doc: str,
    *,
    required: bool = False,
    secret: bool = False,
) -> Option:
    return Option(name, kind, type, default, "supported", doc, required=required, secret=secret)


def _u(
    name: str,
    kind: Kind,
    type: str,
    default: str | None,
    doc: str,
    *harmless: str,
    secret: bool = False,
) -> Option:
    return Option(name, kind, type, default, "unsupported", doc, harmless, secret=secret)


def _i(
    name: str, kind: Kind, type: str, default: str | None, doc: str, *, warn: bool = False
) -> Option:
    return Option(name, kind, type, default, "ignored", doc, warn=warn)


_GMAIL_ONLY = "Used only by Gmail repositories and synclabels, which are not supported yet."

# fmt: off
OPTIONS: tuple[Option, ...] = (
    # ---- [general] ----
    _s("accounts", "general", "list", None,
       "Accounts to sync, comma-separated; -a overrides it.", required=True),
    _s("metadata", "general", "path", "~/.offlineimap",
       "Directory for sync state; ~ and $VARS are expanded."),
    _s("maxsyncaccounts", "general", "int", "1", "Accounts synced at the same time."),
    _s("ui", "general", "str", None,
       "quiet or basic (unset: basic); ttyui, syslog, machineui and blinkenlights are shown "
       "as basic for now; -u overrides it."),
    _s("pythonfile", "general", "path", None,
       "Python file whose names the Python-valued options can use; ~ and $VARS expanded."),
    _s("socktimeout", "general", "float", None,
       "Seconds before a stalled network read or write fails (unset or 0: none); "
       "fractions are allowed, OfflineIMAP takes whole seconds only."),
    _s("fsync", "general", "bool", "yes", "Flush messages and state to disk at safe points."),
    _i("ignore-readonly", "general", "bool", "no",
       "Only silences OfflineIMAP's warnings about read-only IMAP folders."),
    _u("dry-run", "general", "bool", "no",
       "OfflineIMAP sets it itself for --dry-run; use --dry-run instead."),
    _u("filename_use_mail_timestamp", "general", "bool", "no",
       "Default for the Maildir option of that name (file names from the Date header)."),
    _u("utime_from_header", "general", "bool", "no",
       "Default for the Maildir option of that name (file times from the Date header)."),

    # ---- [mbnames] ----
    _s("enabled", "mbnames", "bool", "no",
       "Write a list of the synced local folders (for mutt's mailboxes) after each run; "
       "filename, header, peritem, sep and footer must then be set."),
    _s("filename", "mbnames", "path", None, "The file written (~ and $VARS expanded)."),
    _s("header", "mbnames", "python", None,
       "Python expression (a string) written first, e.g. \"mailboxes \"."),
    _s("peritem", "mbnames", "str", None,
       "Written per folder, with %(accountname)s, %(foldername)s and %(localfolders)s "
       "filled in (read raw: no %(...)s interpolation from the config)."),
    _s("sep", "mbnames", "python", None, "Python expression (a string) between items."),
    _s("footer", "mbnames", "python", None, "Python expression (a string) written last."),
    _s("incremental", "mbnames", "bool", "no",
       "Write the file after each account's sync, not once at the end of the run."),
    _s("folderfilter", "mbnames", "python", None,
       "Python function of (account name, folder name): which synced folders are listed."),
    _s("sort_keyfunc", "mbnames", "python", None,
       "Python function of an item (a dict with accountname, foldername, localfolders): its "
       "sort key. Default: by account name, then folder name."),

    # ---- [Account X] ----
    _s("localrepository", "account", "str", None,
       "Name of the [Repository ...] synced as the local side (Maildir or IMAP).", required=True),
    _s("remoterepository", "account", "str", None,
       "Name of the [Repository ...] synced as the remote side (IMAP).", required=True),
    _s("autorefresh", "account", "float", None,
       "Minutes between syncs, fractions allowed (unset or 0: sync once; negative: warned, "
       "sync once); -o ignores it."),
    _s("quick", "account", "int", "0",
       "Quick syncs between full ones (-1: always); read, but every sync is a full one: an "
       "unchanged folder is skipped (LIST-STATUS) and a changed one reads only its changes "
       "(CONDSTORE/QRESYNC), so a full sync costs what OfflineIMAP's quick one does."),
    _s("max_deletes", "account", "int", "50",
       "mailtwin only: a sync that would delete more than this many messages of a folder on "
       "one side, and more than max_delete_share of it, stops that folder (see docs/safety.md)."),
    _s("max_delete_share", "account", "int", "25",
       "mailtwin only: the share of a folder, in percent, that a sync may delete on one side "
       "beyond max_deletes messages before it stops that folder."),
    _s("presynchook", "account", "str", "",
       "Shell command run before each sync of the account, one with nothing to do included; "
       "the sync goes on whatever it returns (a failure is warned about)."),
    _s("postsynchook", "account", "str", "",
       "Shell command run after each sync of the account that got through (some folders may "
       "have failed), not after a refused login or a locked account, nor once a signal "
       "stopped the run."),
    _u("maxsize", "account", "int", None, "Skipping messages above a size changes what is synced."),
    _u("maxage", "account", "str", None, "Syncing only recent messages changes what is synced."),
    _s("maildir-windows-compatible", "account", "bool", "no",
       "Maildir file names put '!' before the flags instead of ':' (\"...!2,S\"), for file "
       "systems that refuse ':'; the same names as OfflineIMAP's."),
    _u("synclabels", "account", "bool", "no", "Gmail labels are not supported yet."),
    _i("labelsheader", "account", "str", "X-Keywords", _GMAIL_ONLY),
    _i("ignorelabels", "account", "str", "", _GMAIL_ONLY),
    _u("filterheaders", "account", "str", "",
       "Stripping headers from uploaded messages is not supported yet.", ""),
    _u("proxy", "account", "str", None, "SOCKS/HTTP proxies are not supported yet.", ""),
    _u("authproxy", "account", "str", None, "SOCKS/HTTP proxies are not supported yet.", ""),
    _u("utf8foldernames", "account", "bool", "no",
       "UTF-8 local folder names are not supported yet (names stay IMAP UTF-7)."),
    _i("skipsleep", "account", "bool", "no", "Set by OfflineIMAP itself on SIGUSR1."),
    _u("status_backend", "account", "str", None, "OfflineIMAP 8 refuses it too; remove it."),

    # ---- [Repository Y], any type ----
    _s("type", "repository", "str", None,
       "Maildir or IMAP (local side: either; remote side: IMAP); Gmail and GmailMaildir are "
       "not supported yet.", required=True),
    _s("readonly", "repository", "bool", "no", "Never change this repository (one-way sync)."),
    _s("sync_deletes", "repository", "bool", "yes",
       "Delete on the other side what is deleted here."),
    _s("createfolders", "repository", "bool", "yes",
       "Create folders here that exist only on the other side."),
    _s("folderfilter", "repository", "python", None,
       "lambda folder: bool, on this side's untranslated names (unset: all folders)."),
    _s("nametrans", "repository", "python", None,
       "lambda folder: str, this side's name to the other side's (unset: names unchanged)."),
    _s("folderincludes", "repository", "python", "[]",
       "List of folder names synced even if folderfilter rejects them."),
    _i("foldersort", "repository", "python", None, "Only orders folders within one sync."),
    _i("dynamic_folderfilter", "repository", "bool", "no",
       "mailtwin applies folderfilter afresh on each sync, which is what yes asks for."),
    _u("startdate", "repository", "str", None,
       "Syncing only messages after a date changes what is synced."),

    # ---- [Repository Y], type = Maildir ----
    _s("localfolders", "repository:Maildir", "path", None,
       "Directory holding the Maildir folders; ~ and $VARS expanded.", required=True),
    _s("sep", "repository:Maildir", "str", ".",
       "Put between folder name parts; '/' makes nested directories."),
    _i("restoreatime", "repository:Maildir", "bool", "no",
       "Folder access times are not restored after a sync (mail readers may mark new mail "
       "differently); what is synced is the same.", warn=True),
    _u("utime_from_header", "repository:Maildir", "bool", "no",
       "Setting file times from the Date header is not supported yet."),
    _u("filename_use_mail_timestamp", "repository:Maildir", "bool", "no",
       "File names from the Date header are not supported yet."),
    _u("customflag_[a-z]", "repository:Maildir", "str", None,
       "Keyword-to-letter flags in Maildir file names are not supported yet."),

    # ---- [Repository Y], type = IMAP ----
    _s("remotehost", "repository:IMAP", "str", None, "Server host name.", required=True),
    _s("remoteport", "repository:IMAP", "int", None,
       "Server port (unset: 993 with ssl, else 143)."),
    _s("remoteuser", "repository:IMAP", "str", None, "Login name."),
    _s("remotepass", "repository:IMAP", "password", None,
       "Password; write % as %%. Never shown in messages.", secret=True),
    _s("remotepassfile", "repository:IMAP", "path", None,
       "File whose first line (stripped) is the password, read when remotepass is unset; "
       "~ is expanded, $VARS are not (as in OfflineIMAP)."),
    _s("ssl", "repository:IMAP", "bool", "yes",
       "Connect with TLS from the start; the certificate is always verified (system CAs, "
       "sslcacertfile or cert_fingerprint), where OfflineIMAP needs one of the last two."),
    _s("starttls", "repository:IMAP", "bool", "yes",
       "With ssl = no: switch to TLS with STARTTLS, and stop if the server does not offer it "
       "(OfflineIMAP then goes on in plain text), verified as with ssl; no (with ssl = no): "
       "plain text, with a warning unless the host is this machine."),
    _s("expunge", "repository:IMAP", "bool", "yes",
       "Remove deleted messages for good (no: only mark them \\Deleted)."),
    _s("maxconnections", "repository:IMAP", "int", "3",
       "Connections used at the same time: up to this many folder pairs sync side by side "
       "(the smaller value of two IMAP sides); fewer when the server refuses one; -1 on the "
       "command line forces one. OfflineIMAP's default is 1."),
    _i("sep", "repository:IMAP", "str", None,
       "The server's separator is used; OfflineIMAP ignores it here too."),
    _s("remotehosteval", "repository:IMAP", "python", None,
       "Python expression (pythonfile helpers) giving the host; when it gives nothing, "
       "remotehost is used. Evaluated when the config is read."),
    _s("remoteporteval", "repository:IMAP", "python", None,
       "Python expression (pythonfile helpers) giving the port (an int); when it gives None, "
       "remoteport is used. Evaluated when the config is read."),
    _s("remoteusereval", "repository:IMAP", "python", None,
       "Python expression (pythonfile names) giving the login name; wins over remoteuser; "
       "evaluated when the account logs in."),
    _s("remotepasseval", "repository:IMAP", "python", None,
       "Python expression giving the password; wins over remotepass; evaluated at login.",
       secret=True),
    _s("remotepasscmd", "repository:IMAP", "str", None,
       "mailtwin only: command whose first output line is the password (as mbsync's PassCmd), "
       "split into words like a shell line but run without a shell, at login, after "
       "remotepasseval, remotepass and remotepassfile; before ~/.netrc and the OS keyring."),
    _u("ipv6", "repository:IMAP", "bool", None, "Forcing IPv4 or IPv6 is not supported yet."),
    _s("sslclientcert", "repository:IMAP", "path", None,
       "TLS client certificate (PEM), with its key unless sslclientkey is set; checked at start."),
    _s("sslclientkey", "repository:IMAP", "path", None,
       "The client certificate's private key (PEM, unencrypted)."),
    _s("sslcacertfile", "repository:IMAP", "path", None,
       "CA certificates (PEM) to verify the server with instead of the system's; OS-DEFAULT or "
       "unset: the system's (OfflineIMAP verifies nothing when unset); ~ and $VARS expanded; "
       "the file must be readable."),
    _s("cert_fingerprint", "repository:IMAP", "list", None,
       "Pinned server certificates: SHA-1/224/256/384/512 digests in hex, colons allowed; "
       "without sslcacertfile the pin alone decides (a self-signed certificate is fine)."),
    _s("ssl_version", "repository:IMAP", "str", None,
       "tls1_2, tls1_3: the lowest TLS version allowed (OfflineIMAP: exactly that one); "
       "tls1, tls1_1 only with tls_level = tls_compat; ssl23: negotiate; ssl3 is refused."),
    _s("tls_level", "repository:IMAP", "str", None,
       "tls_secure, tls_no_ssl, tls_compat; unset or any level: Python's defaults (TLS 1.2 or "
       "later), stricter than OfflineIMAP's default tls_compat; tls_compat only lets "
       "ssl_version go lower."),
    _s("remote_identity", "repository:IMAP", "str", None,
       "SASL PLAIN authorization identity: log in as remoteuser, act as this user."),
    _s("auth_mechanisms", "repository:IMAP", "list", "GSSAPI, XOAUTH2, CRAM-MD5, PLAIN, LOGIN",
       "Login mechanisms in order of preference; the first the server offers is used. "
       "OAUTHBEARER is also known; GSSAPI is skipped (not supported); XOAUTH2 and OAUTHBEARER "
       "need an OAuth2 refresh or access token; LOGIN is the IMAP LOGIN command."),
    _s("oauth2_client_id", "repository:IMAP", "str", None,
       "OAuth2 client id, sent with the refresh token to oauth2_request_url."),
    _s("oauth2_client_secret", "repository:IMAP", "str", None,
       "OAuth2 client secret (public clients have none).", secret=True),
    _s("oauth2_client_id_eval", "repository:IMAP", "python", None,
       "Python expression for oauth2_client_id; wins over it."),
    _s("oauth2_client_secret_eval", "repository:IMAP", "python", None,
       "Python expression for oauth2_client_secret; wins over it.", secret=True),
    _s("oauth2_access_token", "repository:IMAP", "str", None,
       "OAuth2 access token, used as is (never refreshed); wins over the refresh token.",
       secret=True),
    _s("oauth2_access_token_eval", "repository:IMAP", "python", None,
       "Python expression for oauth2_access_token, evaluated at login.", secret=True),
    _s("oauth2_refresh_token", "repository:IMAP", "str", None,
       "OAuth2 refresh token: the access token is fetched with it at login and again shortly "
       "before it expires.", secret=True),
    _s("oauth2_refresh_token_eval", "repository:IMAP", "python", None,
       "Python expression for oauth2_refresh_token; wins over it.", secret=True),
    _s("oauth2_request_url", "repository:IMAP", "str", None,
       "OAuth2 token endpoint (default for imap.gmail.com and outlook.office365.com)."),
    _s("oauth2_refresh_token_file", "repository:IMAP", "path", None,
       "mailtwin only: file whose first line is the refresh token (as `mailtwin auth` writes "
       "it), read when oauth2_refresh_token(_eval) is unset."),
    _s("oauth2_refresh_token_keyring", "repository:IMAP", "bool", "no",
       "mailtwin only: yes: the refresh token is in the OS keyring (keyring extra; service "
       "mailtwin-oauth2:REMOTEHOST, user remoteuser), as `mailtwin auth --keyring` stores it."),
    _s("oauth2_device_url", "repository:IMAP", "str", None,
       "mailtwin only: RFC 8628 device authorization endpoint for `mailtwin auth` (default for "
       "imap.gmail.com and outlook.office365.com)."),
    _s("oauth2_scope", "repository:IMAP", "str", None,
       "mailtwin only: scope `mailtwin auth` asks for (default for imap.gmail.com and "
       "outlook.office365.com)."),
    _u("preauthtunnel", "repository:IMAP", "str", None, "Tunnels are not supported yet."),
    _u("transporttunnel", "repository:IMAP", "str", None, "Tunnels are not supported yet."),
    _u("reference", "repository:IMAP", "str", '""',
       "A folder root prefix changes which folders are synced.", '""', ""),
    _u("decodefoldernames", "repository:IMAP", "bool", "no",
       "Decoding IMAP UTF-7 folder names is not supported yet."),
    _s("idlefolders", "repository:IMAP", "python", "[]",
       "Python list of this server's folder names (as the server names them) watched with "
       "IDLE between autorefresh rounds: a change syncs that folder at once. Read from the "
       "remote repository (on the local one: warned about, ignored); each folder takes a "
       "connection of its own."),
    _i("usecompression", "repository:IMAP", "bool", "no",
       "The connection is not compressed (more bytes, same result).", warn=True),
    _i("singlethreadperfolder", "repository:IMAP", "bool", "no",
       "Only how work is spread over connections."),
    _i("holdconnectionopen", "repository:IMAP", "bool", "no",
       "Connections are made afresh for each autorefresh sync; same result."),
    _i("keepalive", "repository:IMAP", "int", "0",
       "Only matters with holdconnectionopen, which is ignored."),
    _u("subscribedonly", "repository:IMAP", "bool", "no",
       "Syncing only subscribed folders is not supported yet."),
    _s("newmail_hook", "repository:IMAP", "python", None,
       "Python function of no arguments (pythonfile helpers), called after a sync copied "
       "unread mail out of this repository's INBOX, as OfflineIMAP does."),
    _i("retrycount", "repository:IMAP", "int", "2",
       "A failed fetch fails that folder instead; the next run resumes it."),
    _u("copy_ignore_eval", "repository:IMAP", "python", None,
       "Skipping listed UIDs changes what is synced."),
    _i("trashfolder", "repository:IMAP", "str", "[Gmail]/Trash", _GMAIL_ONLY),
    _i("spamfolder", "repository:IMAP", "str", "[Gmail]/Spam", _GMAIL_ONLY),
)
# fmt: on

_BY_KEY: dict[tuple[Kind, str], Option] = {(o.section, o.name): o for o in OPTIONS}
_NAMES: dict[str, list[Option]] = {}
for _o in OPTIONS:
    _NAMES.setdefault(_o.name, []).append(_o)


def _key(name: str) -> str:
    # customflag_[a-z], without compiling a regex at start-up
    if len(name) == 12 and name.startswith("customflag_") and "a" <= name[11] <= "z":
        return "customflag_[a-z]"
    return name


def lookup(kinds: tuple[Kind, ...], name: str) -> Option | None:
    """The row for option ``name`` in a section of one of ``kinds`` (most specific first)."""
    key = _key(name)
    for kind in kinds:
        opt = _BY_KEY.get((kind, key))
        if opt is not None:
            return opt
    return None


def elsewhere(name: str) -> list[Option]:
    """Rows for ``name`` in any section: to tell a misplaced option from an unknown one."""
    return _NAMES.get(_key(name), [])


def option(kind: Kind, name: str) -> Option:
    """The row for a name the loader reads; a missing row is a bug in this table."""
    return _BY_KEY[(kind, name)]


def section_kinds(kind: Literal["general", "mbnames", "account"] | RepoType) -> tuple[Kind, ...]:
    """The row kinds that apply to a section: a Maildir repository takes both its own rows and
    the rows for every repository."""
    if kind == "Maildir":
        return ("repository:Maildir", "repository")
    if kind == "IMAP":
        return ("repository:IMAP", "repository")
    return (kind,)


UI_KINDS: Mapping[str, Literal["quiet", "basic"]] = {
    # OfflineIMAP's UI names (UI_LIST); those mailtwin lacks are shown as basic for now
    "quiet": "quiet",
    "basic": "basic",
    "ttyui": "basic",
    "syslog": "basic",
    "machineui": "basic",
    "blinkenlights": "basic",
}


def ui_kind(name: str) -> Literal["quiet", "basic"] | None:
    """How mailtwin shows OfflineIMAP's UI ``name`` (any case; old "Curses.Blinkenlights" too)."""
    return UI_KINDS.get(name.strip().split(".")[-1].lower())

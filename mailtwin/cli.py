"""The command line: OfflineIMAP's flags → Config + RunOptions → the runner, and the one place that
turns an error into a message and an exit code.

Exit codes: 0 all synced, 1 some folder or account failed, 2 usage or config error, 3 another
instance holds an account's lock, 130 interrupted. Start-up speed matters, so everything is
imported when needed (argparse too: ``--version`` goes without it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import argparse

    from mailtwin.config import Config
    from mailtwin.errors import MailtwinError
    from mailtwin.sync.options import RunOptions

PROG = "mailtwin"

# OfflineIMAP's flags whose feature mailtwin lacks: given, they stop the run with exit 2 (a cron
# line must never silently do less). dest → the flag as the user wrote it.
UNSUPPORTED_FLAGS = {
    "profiledir": "-P",
    "deletefolder": "--delete-folder",
    "migrate_fmd5": "--migrate-fmd5-using-nametrans",
}


class _Exit(Exception):
    """argparse finished the run itself (-h): leave main() with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_parser_class: type[argparse.ArgumentParser] | None = None


def parser_class() -> type[argparse.ArgumentParser]:
    """mailtwin's ArgumentParser: errors become UsageError, exits _Exit. Made on first use, so
    that --version does not import argparse."""
    global _parser_class
    if _parser_class is None:
        import argparse

        class _Parser(argparse.ArgumentParser):
            def error(self, message: str) -> NoReturn:
                from mailtwin.errors import UsageError

                raise UsageError(message, hint=f"see '{self.prog} --help'")

            def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
                if message:
                    sys.stderr.write(message)
                raise _Exit(status)

        _parser_class = _Parser
    return _parser_class


def build_parser() -> argparse.ArgumentParser:
    """OfflineIMAP 8's flags (init.py), same names, same meaning."""
    p = parser_class()(
        prog=PROG,
        description="Two-way sync of IMAP folders with Maildirs or other IMAP servers; "
        "reads OfflineIMAP's config and takes its flags.",
        epilog=f"'{PROG} demo' runs a self-contained demonstration; '{PROG} auth ACCOUNT' gets "
        "an OAuth2 refresh token.",
    )
    p.add_argument("--version", action="store_true", help="show the version and exit")
    p.add_argument("-V", dest="full_version", action="store_true", help="show full version infos")
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="dry run mode")
    p.add_argument(
        "--info",
        action="store_true",
        help="output information on the configured email repositories",
    )
    # mailtwin's own: the two ways past a folder stopped for safety (docs/safety.md)
    p.add_argument(
        "--restore-missing",
        dest="restore",
        action="store_true",
        help="for a folder stopped for safety: copy what is missing on one side back from the "
        "other, instead of deleting it there",
    )
    p.add_argument(
        "--allow-deletions",
        dest="allow_deletions",
        action="store_true",
        help="for a folder stopped for safety: carry out the deletions after all",
    )
    p.add_argument(
        "-1",
        dest="single",
        action="store_true",
        help="(the number one) one account and one connection at a time",
    )
    p.add_argument("-P", dest="profiledir", metavar="DIR", help="profile mode (not supported yet)")
    p.add_argument(
        "-a", dest="accounts", metavar="account1[,account2[,...]]", help="list of accounts to sync"
    )
    p.add_argument("-c", dest="configfile", metavar="FILE", help="the configuration file to use")
    p.add_argument(
        "-d",
        dest="debugtype",
        metavar="type1[,type2[,...]]",
        help="enable debugging (types: imap, maildir, thread, all)",
    )
    p.add_argument("-l", dest="logfile", metavar="FILE", help="log to FILE")
    p.add_argument("-s", dest="syslog", action="store_true", help="log to syslog")
    p.add_argument(
        "-f", dest="folders", metavar="folder1[,folder2[,...]]", help="only sync these folders"
    )
    p.add_argument(
        "-k",
        dest="overrides",
        action="append",
        default=[],
        metavar="[section:]option=value",
        help="override a configuration file option ('_' in section stands for a space)",
    )
    p.add_argument(
        "-o", dest="once", action="store_true", help="run only once (ignore autorefresh)"
    )
    p.add_argument(
        "-q",
        dest="quick",
        action="store_true",
        help="run only quick synchronizations (don't update flags)",
    )
    p.add_argument(
        "-u",
        dest="interface",
        metavar="INTERFACE",
        help="user interface: quiet or basic (ttyui, syslog, machineui, blinkenlights are "
        "shown as basic for now)",
    )
    p.add_argument(
        "--delete-folder",
        dest="deletefolder",
        metavar="FOLDERNAME",
        help="delete a folder on the remote repository (not supported yet)",
    )
    p.add_argument(
        "--migrate-fmd5-using-nametrans",
        dest="migrate_fmd5",
        action="store_true",
        help="migrate FMD5 hashes from versions prior to 6.3.5 (not supported yet)",
    )
    p.add_argument(
        "--mbnames-prune",
        dest="mbnames_prune",
        action="store_true",
        help="remove mbnames entries for accounts not in accounts, write the file, and exit",
    )
    return p


def entry() -> NoReturn:
    """The console script: ``main()``, then out without tearing the interpreter down. By then
    every file the run wrote is closed and synced, and dismantling the hundreds of modules a
    sync loaded would add 10-20 ms to every cron run. What an exit must still do runs first:
    the exit handlers (logging's flush among them) and the standard streams' flush."""
    code = main()
    threading = sys.modules.get("threading")
    if threading is not None and any(
        not t.daemon and t is not threading.main_thread() for t in threading.enumerate()
    ):
        sys.exit(code)  # a thread still working: Python's exit waits for it
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # let Python's exit say what went wrong with the stream
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):  # what argparse would make of it, without building it
        _print_version(full=args == ["-V"])
        return 0
    from mailtwin.errors import MailtwinError

    try:
        if args and args[0] == "demo":
            return _demo(args[1:])
        if args and args[0] == "auth":  # OAuth2 device flow: a refresh token for an account
            from mailtwin.secrets.authcmd import main as auth

            return auth(args[1:])
        return _sync(args)
    except _Exit as done:
        return done.status
    except MailtwinError as exc:
        return report(exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: its traceback, secrets masked, instead of Python's own
        from mailtwin.ui import output

        print(f"{PROG}: internal error: {output.clean(repr(exc))}", file=sys.stderr)
        output.crash(exc)
        return 1


def report(exc: MailtwinError) -> int:
    """The one error → message mapping: ``mailtwin: <message>``, the hint on a second line."""
    from mailtwin.errors import InternalError
    from mailtwin.ui import output

    print(output.clean(f"{PROG}: {exc}"), file=sys.stderr)
    if exc.hint:
        print(output.clean(exc.hint), file=sys.stderr)
    if isinstance(exc, InternalError):  # a bug: the traceback is what a report needs
        output.crash(exc)
    return exc.exit_code


def _demo(argv: list[str]) -> int:
    from mailtwin.demo import main as demo

    return demo(argv)


# What build_parser() makes of no flags at all; the fast path below starts from it.
_DEFAULTS: dict[str, object] = {
    "version": False,
    "full_version": False,
    "dry_run": False,
    "info": False,
    "restore": False,
    "allow_deletions": False,
    "single": False,
    "profiledir": None,
    "accounts": None,
    "configfile": None,
    "debugtype": None,
    "logfile": None,
    "syslog": False,
    "folders": None,
    "overrides": [],
    "once": False,
    "quick": False,
    "interface": None,
    "deletefolder": None,
    "migrate_fmd5": False,
    "mbnames_prune": False,
}
_SWITCHES = {
    "-o": "once",
    "-1": "single",
    "-q": "quick",
    "-s": "syslog",
    "--dry-run": "dry_run",
    "--info": "info",
    "--restore-missing": "restore",
    "--allow-deletions": "allow_deletions",
}
_VALUED = {
    "-c": "configfile",
    "-a": "accounts",
    "-d": "debugtype",
    "-l": "logfile",
    "-f": "folders",
    "-u": "interface",
}


def quick_parse(argv: Sequence[str]) -> SimpleNamespace | None:
    """The flags of a plain sync (a cron line's ``-c FILE -o -u quiet``) read without building
    the argparse parser, which costs a few milliseconds of a no-op run; None for anything else
    (help, an error, an abbreviation, joined flags, a value that starts with '-'), which
    argparse then reads. A unit test checks both agree."""

    values = dict(_DEFAULTS, overrides=[])
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _SWITCHES:
            values[_SWITCHES[word]] = True
        elif (word in _VALUED or word == "-k") and i + 1 < len(argv):
            value = argv[i + 1]
            if value.startswith("-"):
                return None
            if word == "-k":
                values["overrides"].append(value)  # type: ignore[attr-defined]
            else:
                values[_VALUED[word]] = value
            i += 1
        else:
            return None
        i += 1
    return SimpleNamespace(**values)


def _sync(argv: list[str]) -> int:
    ns: argparse.Namespace | SimpleNamespace | None = quick_parse(argv)
    if ns is None:
        ns = build_parser().parse_args(argv)
    if ns.version or ns.full_version:
        _print_version(full=ns.full_version and not ns.version)
        return 0
    config, opts = parse(ns)
    if ns.mbnames_prune:
        from mailtwin.sync.mbnames import prune_run

        quiet = opts.ui == "quiet"
        return prune_run(config, opts.dry_run, (lambda _: None) if quiet else print)
    # imported only now, so that --version, -h and config errors stay fast; an account with
    # nothing to do is settled there without even importing the engine
    from mailtwin.sync.preflight import run

    return run(config, opts)


def parse(ns: argparse.Namespace | SimpleNamespace) -> tuple[Config, RunOptions]:
    """Parsed flags → the checked Config and the RunOptions; warnings go to stderr (not with
    -u quiet), before any error so that a typo's warning explains a missing option."""
    from pathlib import Path

    from mailtwin.config import load_config
    from mailtwin.config.options import UI_KINDS, ui_kind
    from mailtwin.errors import MailtwinError, UsageError
    from mailtwin.sync.options import RunOptions

    for dest, flag in UNSUPPORTED_FLAGS.items():
        if getattr(ns, dest) not in (None, False):
            raise UsageError(f"option {flag} is not supported yet")

    ui = None
    if ns.interface is not None:
        ui = ui_kind(ns.interface)
        if ui is None:
            raise UsageError(
                f"-u {ns.interface}: not a user interface (one of {', '.join(UI_KINDS)})"
            )
    accounts = _list(ns.accounts, "-a", "account")
    folders = _list(ns.folders, "-f", "folder")
    debug = _list(ns.debugtype, "-d", "debug type")
    if debug is not None:
        debug = tuple(d.lower() for d in debug)
        if "all" in debug:  # as OfflineIMAP: all means imap, maildir and thread
            debug = (*(d for d in debug if d != "all"), "imap", "maildir", "thread")

    warnings: list[str] = []
    try:
        config = load_config(
            Path(ns.configfile) if ns.configfile is not None else None,
            ns.overrides,
            warnings.append,
            only_accounts=accounts,
        )
    except MailtwinError:
        _print_warnings(warnings, ui, ns.logfile)
        raise
    if ui is None and config.general.ui is not None:
        ui = ui_kind(config.general.ui)
    _print_warnings(warnings, ui, ns.logfile)

    if ns.info:  # OfflineIMAP shows --info with its full UI whatever -u says
        ui = "basic"
    opts = RunOptions(
        accounts=accounts,
        folders=folders,
        once=ns.once,
        single=ns.single,
        dry_run=ns.dry_run,
        quick=ns.quick,
        info=ns.info,
        ui=ui or "basic",
        logfile=Path(ns.logfile) if ns.logfile is not None else None,
        syslog=ns.syslog,
        debug=frozenset(debug or ()),
        restore=ns.restore,
        allow_deletions=ns.allow_deletions,
    )
    if opts.restore and opts.allow_deletions:
        raise UsageError("--restore-missing and --allow-deletions ask for opposite things")
    return config, opts


def _print_warnings(warnings: list[str], ui: str | None, logfile: str | None) -> None:
    import contextlib

    from mailtwin.ui import output

    lines = [f"{PROG}: warning: {output.clean(message)}" for message in warnings]
    if ui != "quiet":
        for line in lines:
            print(line, file=sys.stderr)
    if lines and logfile is not None:
        # said before the UI opens the -l file: it keeps them all the same, whatever -u shows
        # (a file that cannot be opened is the UI's to report)
        with contextlib.suppress(OSError), open(logfile, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))


def _list(value: str | None, flag: str, what: str) -> tuple[str, ...] | None:
    """A comma list flag; OfflineIMAP strips the leading blanks of each name, we strip both."""
    if value is None:
        return None
    items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not items:
        from mailtwin.errors import UsageError

        raise UsageError(f"{flag} names no {what}")
    return items


def _print_version(full: bool) -> None:
    from mailtwin import __version__

    line = f"{PROG} {__version__}"
    if full:
        import platform
        import ssl

        line += f", Python {platform.python_version()}, {ssl.OPENSSL_VERSION}"
    print(line)

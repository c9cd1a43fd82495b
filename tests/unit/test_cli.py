"""The command line: OfflineIMAP's flags into RunOptions, refused flags, errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtwin import __version__, cli
from mailtwin.cli import main
from mailtwin.config import Config
from mailtwin.errors import FolderError, InternalError, LockedError, UsageError
from mailtwin.sync.options import RunOptions

CONFIG = """
[general]
accounts = Work, Home
{general}

[Account Work]
localrepository = Local
remoterepository = Remote

[Account Home]
localrepository = Local
remoterepository = Remote

[Repository Local]
type = Maildir
localfolders = {tmp}/mail

[Repository Remote]
type = IMAP
remotehost = imap.example.org
{remote}
"""

Calls = list[tuple[Config, RunOptions]]


def rc(tmp_path: Path, general: str = "", remote: str = "") -> str:
    path = tmp_path / "rc"
    path.write_text(CONFIG.format(tmp=tmp_path, general=general, remote=remote))
    path.chmod(0o600)  # it may hold a password: others may not read it (or the loader warns)
    return str(path)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """A stand-in for mailtwin.sync.runner that records what it is given and returns 0."""
    calls: Calls = []
    module = ModuleType("mailtwin.sync.runner")

    def run(config: Config, opts: RunOptions, emit: object = None, pre_hooked: object = ()) -> int:
        calls.append((config, opts))
        return 0

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mailtwin.sync.runner", module)
    return calls


def use_runner(monkeypatch: pytest.MonkeyPatch, run: Callable[[Config, RunOptions], int]) -> None:
    module = ModuleType("mailtwin.sync.runner")
    module.run = lambda config, opts, emit=None, pre_hooked=(): run(config, opts)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mailtwin.sync.runner", module)


def opts_of(calls: Calls) -> RunOptions:
    assert len(calls) == 1
    return calls[0][1]


# ---- flags into RunOptions ----


def test_no_flags(tmp_path: Path, runner: Calls) -> None:
    assert main(["-c", rc(tmp_path)]) == 0
    config, opts = runner[0]
    assert list(config.accounts) == ["Work", "Home"]
    assert opts == RunOptions()


def test_every_flag(tmp_path: Path, runner: Calls) -> None:
    argv = [
        "-c", rc(tmp_path), "-a", "Home", "-f", "INBOX, Sent", "-o", "-1", "-q", "-s",
        "--dry-run", "-u", "Quiet", "-l", str(tmp_path / "log"), "-d", "imap,maildir",
        "-k", "Account_Home:autorefresh=3",
    ]  # fmt: skip
    assert main(argv) == 0
    config, opts = runner[0]
    assert list(config.accounts) == ["Home"]
    assert config.accounts["Home"].autorefresh == 3.0
    assert opts == RunOptions(
        accounts=("Home",),
        folders=("INBOX", "Sent"),
        once=True,
        single=True,
        dry_run=True,
        quick=True,
        info=False,
        ui="quiet",
        logfile=tmp_path / "log",
        syslog=True,
        debug=frozenset({"imap", "maildir"}),
    )


def test_repeated_k_and_general_default(tmp_path: Path, runner: Calls) -> None:
    assert main(["-c", rc(tmp_path), "-k", "maxsyncaccounts=2", "-k", "fsync=no"]) == 0
    general = runner[0][0].general
    assert (general.maxsyncaccounts, general.fsync) == (2, False)


def test_debug_all(tmp_path: Path, runner: Calls) -> None:
    assert main(["-c", rc(tmp_path), "-d", "ALL"]) == 0
    assert opts_of(runner).debug == {"imap", "maildir", "thread"}


@pytest.mark.parametrize(
    ("flag", "ui"),
    [
        ("quiet", "quiet"),
        ("basic", "basic"),
        ("TTYUI", "basic"),
        ("syslog", "basic"),
        ("machineui", "basic"),
        ("Blinkenlights", "basic"),
        ("Curses.Blinkenlights", "basic"),
    ],
)
def test_ui_names(tmp_path: Path, runner: Calls, flag: str, ui: str) -> None:
    assert main(["-c", rc(tmp_path), "-u", flag]) == 0
    assert opts_of(runner).ui == ui


def test_ui_from_config_and_u_overrides(tmp_path: Path, runner: Calls) -> None:
    path = rc(tmp_path, general="ui = quiet")
    assert main(["-c", path]) == 0
    assert main(["-c", path, "-u", "ttyui"]) == 0
    assert [opts.ui for _, opts in runner] == ["quiet", "basic"]


def test_info_forces_basic(tmp_path: Path, runner: Calls) -> None:
    assert main(["-c", rc(tmp_path), "--info", "-u", "quiet"]) == 0
    assert opts_of(runner).info is True and opts_of(runner).ui == "basic"


def test_unknown_ui(tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", rc(tmp_path), "-u", "curses"]) == 2
    assert capsys.readouterr().err.startswith("mailtwin: -u curses: not a user interface")
    assert runner == []


def test_config_lookup_without_c(
    tmp_path: Path, runner: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    Path(rc(tmp_path)).rename(tmp_path / ".offlineimaprc")
    assert main([]) == 0
    assert runner[0][0].path == tmp_path / ".offlineimaprc"


def test_argv_defaults_to_sys_argv(
    tmp_path: Path, runner: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["mailtwin", "-c", rc(tmp_path), "-o"])
    assert main() == 0
    assert opts_of(runner).once is True


# ---- refused flags and usage errors ----


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["-P", "/tmp/prof"], "-P"),
        (["--delete-folder", "Trash"], "--delete-folder"),
        (["--delete-folder=Trash"], "--delete-folder"),
        (["--migrate-fmd5-using-nametrans"], "--migrate-fmd5-using-nametrans"),
    ],
)
def test_unsupported_flags_exit_2(
    tmp_path: Path,
    runner: Calls,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    flag: str,
) -> None:
    assert main(["-c", rc(tmp_path), *argv]) == 2
    assert capsys.readouterr().err == f"mailtwin: option {flag} is not supported yet\n"
    assert runner == []


@pytest.mark.parametrize(
    "argv",
    [["--bogus"], ["extra-word"], ["-c"], ["-a", " , "], ["-f", ""]],
)
def test_usage_errors_exit_2(
    tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(["-c", rc(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mailtwin: ") and "Traceback" not in err
    assert runner == []


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mailtwin") and "-k [section:]option=value" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mailtwin {__version__}\n"


def test_full_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-V"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"mailtwin {__version__}, Python ") and "SSL" in out


@pytest.mark.parametrize("argv", [["--version", "-o"], ["-V", "--version"], ["--vers"]])
def test_version_among_other_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0  # argparse's way: --version wins, also abbreviated
    assert capsys.readouterr().out == f"mailtwin {__version__}\n"


def test_version_alone_skips_argparse() -> None:
    code = (
        "import sys; from mailtwin.cli import main; rc = main(['--version']); "
        "print('argparse' in sys.modules); sys.exit(rc)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, f"mailtwin {__version__}\nFalse\n"), p.stderr


def test_version_needs_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert main(["--version"]) == 0


# ---- config errors and warnings ----


@pytest.mark.parametrize(
    ("remote", "message"),
    [
        ("ssl = maybe", "mailtwin: [Repository Remote] ssl: 'maybe' is not a boolean"),
        ("remoteport = x", "mailtwin: [Repository Remote] remoteport: 'x' is not a whole number"),
        ("remotepass = hunter2%", "mailtwin: [Repository Remote] remotepass: invalid '%'"),
    ],
)
def test_config_error_is_one_line_exit_2(
    tmp_path: Path,
    runner: Calls,
    capsys: pytest.CaptureFixture[str],
    remote: str,
    message: str,
) -> None:
    assert main(["-c", rc(tmp_path, remote=remote)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert "hunter2" not in err
    assert runner == []


def test_unsupported_option_exit_2(
    tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", rc(tmp_path, remote="maxage = 3\nsubscribedonly = yes")]) == 2
    warning, first, hint = capsys.readouterr().err.splitlines()
    assert warning.startswith("mailtwin: warning: [Repository Remote] maxage: not used here")
    assert first == "mailtwin: [Repository Remote] subscribedonly: this option is not supported yet"
    assert "docs/compatibility.md" in hint
    assert runner == []


def test_missing_config_file(
    tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"mailtwin: config file {tmp_path / 'nope'} does not exist\n"


def test_unknown_account(tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-c", rc(tmp_path), "-a", "Work,Nope"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "mailtwin: -a Nope: there is no [Account Nope] section",
        f"accounts in {tmp_path / 'rc'}: Work, Home",
    ]


def test_warnings_one_line_each(
    tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", rc(tmp_path, general="fooo = 1", remote="barr = 2")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "mailtwin: warning: [general] fooo: unknown option, ignored",
        "mailtwin: warning: [Repository Remote] barr: unknown option, ignored",
    ]


def test_quiet_hides_warnings(
    tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", rc(tmp_path, general="fooo = 1"), "-u", "quiet"]) == 0
    assert main(["-c", rc(tmp_path, general="fooo = 1\nui = quiet")]) == 0
    assert capsys.readouterr().err == ""


def test_warnings_come_before_the_error(
    tmp_path: Path, runner: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rc"
    path.write_text(
        "[general]\naccounts = A\n[Account A]\nlocalrepository = L\nremoterepository = R\n"
        f"[Repository L]\ntype = Maildir\nlocalfolders = {tmp_path}\n"
        "[Repository R]\ntype = IMAP\nremotehots = imap.example.org\n"
    )
    assert main(["-c", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "mailtwin: warning: [Repository R] remotehots: unknown option, ignored",
        "mailtwin: [Repository R] remotehost: is missing",
    ]


# ---- the runner's result and errors ----


@pytest.mark.parametrize("code", [0, 1, 3])
def test_runner_exit_code_passes_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    use_runner(monkeypatch, lambda config, opts: code)
    assert main(["-c", rc(tmp_path)]) == code


def test_error_mapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def locked(config: Config, opts: RunOptions) -> int:
        raise LockedError("account Work is being synced by process 42", hint="wait for it")

    use_runner(monkeypatch, locked)
    assert main(["-c", rc(tmp_path)]) == 3
    assert capsys.readouterr().err == (
        "mailtwin: account Work is being synced by process 42\nwait for it\n"
    )

    def folder(config: Config, opts: RunOptions) -> int:
        raise FolderError("folder INBOX: gone")

    use_runner(monkeypatch, folder)
    assert main(["-c", rc(tmp_path)]) == 1
    assert capsys.readouterr().err == "mailtwin: folder INBOX: gone\n"


def test_internal_error_shows_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def bug(config: Config, opts: RunOptions) -> int:
        raise InternalError("plan copied a message twice")

    use_runner(monkeypatch, bug)
    assert main(["-c", rc(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mailtwin: plan copied a message twice\n") and "Traceback" in err


def test_keyboard_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(config: Config, opts: RunOptions) -> int:
        raise KeyboardInterrupt

    use_runner(monkeypatch, interrupted)
    assert main(["-c", rc(tmp_path)]) == 130
    assert capsys.readouterr().err == "mailtwin: interrupted\n"


# ---- subcommands ----


def test_demo_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    module = ModuleType("mailtwin.demo")

    def demo_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    module.main = demo_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mailtwin.demo", module)
    assert main(["demo", "--keep", "-x"]) == 0
    assert seen == [["--keep", "-x"]]


_WORDS = [
    *cli._SWITCHES,
    *cli._VALUED,
    "-k",
    "x",
    "a,b",
    "",
    "-",
    "--",
    "-x",
    "--dry",
    "-oq",
    "-cFILE",
    "--info=1",
    "-h",
    "--version",
    "-V",
    "-P",
    "--mbnames-prune",
]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_WORDS), max_size=8))
def test_quick_parse_reads_flags_as_argparse_does(argv: list[str]) -> None:
    """The fast path reads a plain sync's flags exactly as argparse would, and leaves the rest
    (errors, help, abbreviations, joined flags) to argparse."""
    quick = cli.quick_parse(argv)
    try:
        full = vars(cli.build_parser().parse_args(argv))
    except (cli._Exit, UsageError):
        assert quick is None  # an error or help: argparse's to say
        return
    if quick is not None:
        assert vars(quick) == full


def test_quick_parse_takes_a_cron_line() -> None:
    ns = cli.quick_parse(["-c", "rc", "-o", "-u", "quiet", "-k", "a:b=c", "-k", "d=e"])
    assert ns is not None
    assert (ns.configfile, ns.once, ns.interface) == ("rc", True, "quiet")
    assert ns.overrides == ["a:b=c", "d=e"]
    assert cli.quick_parse(["-c", "-o"]) is None and cli.quick_parse(["-h"]) is None

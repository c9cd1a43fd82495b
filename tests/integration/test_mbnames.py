"""[mbnames] end to end: the mailbox list file is the one OfflineIMAP writes for the same account
and config, a run with nothing to do writes it too (still without the engine), a dry run writes
nothing, an account not synced keeps its entries, and --mbnames-prune drops them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, age, msg

OFFLINEIMAP = Path("/usr/bin/offlineimap")


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.append("INBOX", msg(1), create=False)
    e.append("Work/Sub", msg(2))
    e.append("Caf\u00e9", msg(3))
    e.append("Trash", msg(4))
    return e


def configure(env: Env, filename: Path, extra: str = "") -> None:
    # header, sep and footer are Python; peritem is read raw (its %(...)s are not the config's)
    env.write_config(
        local="sep = .",
        general=f"""
[mbnames]
enabled = yes
filename = {filename}
header = "mailboxes "
peritem = "+%(accountname)s/%(foldername)s"
sep = " "
footer = "\\n"
{extra}
""",
    )


def lists(env: Env) -> dict[str, list[dict[str, str | None]]]:
    where = env.tmp / "meta" / "mbnames"
    return {p.stem: json.loads(p.read_text()) for p in sorted(where.glob("*.json"))}


def test_the_file_is_the_one_offlineimap_writes(env: Env) -> None:
    if not OFFLINEIMAP.exists():
        if os.environ.get("CI"):
            pytest.fail("offlineimap is not installed (CI must install offlineimap3)")
        pytest.skip("offlineimap is not installed: apt-get install offlineimap3")
    theirs = env.tmp / "offlineimap.mailboxes"
    configure(env, theirs, "folderfilter = lambda account, folder: folder != 'Trash'")
    p = subprocess.run(
        [str(OFFLINEIMAP), "-c", str(env.config), "-o", "-u", "quiet"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert p.returncode == 0 and "ERROR" not in p.stderr, p.stdout + p.stderr
    their_lists = lists(env)
    ours = env.tmp / "mailtwin.mailboxes"
    configure(env, ours, "folderfilter = lambda account, folder: folder != 'Trash'")
    env.run()  # takes over OfflineIMAP's state, syncs, and writes the list anew
    assert ours.read_text() == theirs.read_text()
    # peritem is not evaluated: its quotes are written with each item, as mutt reads them
    assert ours.read_text() == 'mailboxes "+test/Caf&AOk-" "+test/INBOX" "+test/Work.Sub"\n'

    def items(got: dict[str, list[dict[str, str | None]]]) -> list[str]:
        return sorted(json.dumps(i, sort_keys=True) for i in got["test"])

    assert items(lists(env)) == items(their_lists)


def test_a_run_with_nothing_to_do_writes_it_without_the_engine(env: Env) -> None:
    out = env.tmp / "mailboxes"
    configure(env, out)
    env.run()
    age(env)
    env.run()
    age(env)
    want = 'mailboxes "+test/Caf&AOk-" "+test/INBOX" "+test/Trash" "+test/Work.Sub"\n'
    assert out.read_text() == want
    out.unlink()
    probe = (
        "import sys; from mailtwin.cli import main; rc = main(sys.argv[1:]); "
        "print('ENGINE' if 'asyncio' in sys.modules else 'LIGHT'); sys.exit(rc)"
    )
    p = subprocess.run(
        [sys.executable, "-c", probe, "-c", str(env.config), "-o", "-u", "quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (p.returncode, p.stdout.strip()) == (0, "LIGHT"), p.stdout + p.stderr
    assert out.read_text() == want


def test_dry_run_writes_nothing(env: Env) -> None:
    out = env.tmp / "mailboxes"
    configure(env, out)
    env.run("--dry-run")
    assert not out.exists() and not lists(env)


def test_other_accounts_stay_listed_until_pruned(env: Env) -> None:
    out = env.tmp / "mailboxes"
    configure(env, out, "incremental = yes")
    where = env.tmp / "meta" / "mbnames"
    where.mkdir(parents=True)
    (where / "old.json").write_text(
        json.dumps([{"accountname": "old", "foldername": "A", "localfolders": "/x"}])
    )
    # a symlinked file (kept with other dotfiles) stays a symlink
    real = env.tmp / "dotfiles" / "mailboxes"
    real.parent.mkdir()
    real.write_text("")
    out.symlink_to(real)
    env.run()
    assert out.is_symlink()
    assert real.read_text() == (
        'mailboxes "+old/A" "+test/Caf&AOk-" "+test/INBOX" "+test/Trash" "+test/Work.Sub"\n'
    )
    p = env.run("--mbnames-prune", "--dry-run")
    assert f"mbnames: would remove {where / 'old.json'}" in p.stdout
    assert (where / "old.json").exists()
    p = env.run("--mbnames-prune")
    assert f"mbnames: removed {where / 'old.json'}" in p.stdout
    assert sorted(lists(env)) == ["test"]
    assert (
        real.read_text()
        == 'mailboxes "+test/Caf&AOk-" "+test/INBOX" "+test/Trash" "+test/Work.Sub"\n'
    )


def test_a_failing_filter_is_one_clear_error(env: Env) -> None:
    out = env.tmp / "mailboxes"
    configure(env, out, "folderfilter = lambda account, folder: folder.nope")
    p = env.run("-u", "quiet", check=False)
    assert p.returncode == 2
    assert (
        "ERROR: account test: [mbnames] folderfilter: failed on account 'test', folder" in p.stderr
    )
    assert "AttributeError" in p.stderr and "Traceback" not in p.stderr
    # the sync itself went through
    assert len(env.local("INBOX")) == 1

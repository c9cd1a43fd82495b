"""[mbnames]: a file listing the synced local folders, for mutt's ``mailboxes`` and the like.

Kept as OfflineIMAP keeps it, in the same place, so the two tools can take turns: after an
account's sync its folders go to ``<metadata>/mbnames/<account>.json`` (a JSON list of
{accountname, foldername, localfolders}, filtered by [mbnames] folderfilter); at the end of the
run (with incremental = yes, after each account) the file is built from every account's list:
sorted, one ``peritem`` each, joined by ``sep``, between ``header`` and ``footer``. An account not
synced in this run keeps the list its last sync wrote; ``--mbnames-prune`` drops the lists of
accounts no longer in [general] accounts.

Unlike OfflineIMAP, each file is replaced whole (written beside it, then renamed over it), so a
mail client never reads half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from mailtwin.config.model import AccountConfig, Config, MbnamesConfig
from mailtwin.config.pyeval import describe
from mailtwin.errors import ConfigError, MailtwinError
from mailtwin.ui.events import Emit, Failed

Item = dict[str, str | None]


def lists_dir(metadata: Path) -> Path:
    return metadata / "mbnames"


def listed(acct: AccountConfig, config: Config, folders: Sequence[str]) -> None:
    """Record the account's synced folders; with incremental = yes, write the file now."""
    mb = config.mbnames
    assert mb is not None
    local = acct.local
    root = str(local.localfolders) if local.type == "Maildir" else None
    record(config.general.metadata, mb, acct.name, root, folders)
    if mb.incremental:
        write(config.general.metadata, mb)


def at_end(config: Config, emit: Emit) -> int:
    """Without incremental = yes, the file is written once the run's accounts are done: the
    exit code that step adds (0; 1, or 2 for the user's failing code, with the error said)."""
    mb = config.mbnames
    if mb is None or mb.incremental:
        return 0
    try:
        write(config.general.metadata, mb)
    except MailtwinError as e:
        emit(Failed("", str(e), hint=e.hint))  # no account: the run's own step
        return e.exit_code
    return 0


def record(
    metadata: Path,
    mb: MbnamesConfig,
    account: str,
    localfolders: str | None,
    folders: Sequence[str],
) -> None:
    """Write ``account``'s list: its synced local folder names, as the filter keeps them."""
    items: list[Item] = []
    for name in folders:
        if mb.folderfilter is not None:
            try:
                keep = mb.folderfilter(account, name)
            except Exception as e:  # the user's function: name the option and the folder
                raise ConfigError(
                    f"failed on account {account!r}, folder {name!r}: {describe(e)}",
                    "mbnames",
                    "folderfilter",
                ) from e
            if not keep:
                continue
        items.append({"accountname": account, "foldername": name, "localfolders": localfolders})
    where = lists_dir(metadata)
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MailtwinError(f"[mbnames] cannot create {where}: {e.strerror}") from e
    _replace(where / f"{account}.json", json.dumps(items))


def write(metadata: Path, mb: MbnamesConfig) -> None:
    """Build the file from every account's list."""
    items: list[Item] = []
    where = lists_dir(metadata)
    names = sorted(where.glob("*.json")) if where.is_dir() else []
    for path in names:
        try:
            got = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(got, list) or not all(isinstance(i, dict) for i in got):
                raise ValueError("not a list of folders")
        except (OSError, ValueError) as e:
            why = e.strerror if isinstance(e, OSError) else str(e)
            raise MailtwinError(
                f"[mbnames] cannot read {path}: {why}",
                hint="delete it: the account's next sync writes it again",
            ) from e
        items.extend(got)
    try:
        items.sort(key=mb.sort_keyfunc or _by_account_and_folder)
    except Exception as e:  # the user's function, or its keys that do not compare
        raise ConfigError(f"failed: {describe(e)}", "mbnames", "sort_keyfunc") from e
    try:
        lines = [mb.peritem % item for item in items]
    except (KeyError, ValueError, TypeError) as e:
        raise ConfigError(f"failed on an item: {describe(e)}", "mbnames", "peritem") from e
    _replace(mb.filename, mb.header + mb.sep.join(lines) + mb.footer)


def prune(metadata: Path, keep: Collection[str], dry_run: bool = False) -> list[Path]:
    """Delete the lists of accounts not in ``keep``; the lists that went (or would go)."""
    where = lists_dir(metadata)
    gone = []
    for path in sorted(where.glob("*.json")) if where.is_dir() else []:
        if path.stem not in keep:
            if not dry_run:
                try:
                    path.unlink()
                except OSError as e:
                    raise MailtwinError(f"[mbnames] cannot delete {path}: {e.strerror}") from e
            gone.append(path)
    return gone


def prune_run(config: Config, dry_run: bool, say: Callable[[str], None]) -> int:
    """--mbnames-prune, as OfflineIMAP does it instead of a sync: drop the lists of accounts no
    longer in [general] accounts (with [mbnames] disabled, every list), then write the file."""
    mb = config.mbnames
    keep = config.general.accounts if mb is not None else ()
    gone = prune(config.general.metadata, keep, dry_run)
    verb = "would remove" if dry_run else "removed"
    for path in gone:
        say(f"mbnames: {verb} {path}")
    if not gone:
        say("mbnames: no list to remove")
    if mb is not None:
        if dry_run:
            say(f"mbnames: would write {mb.filename}")
        else:
            write(config.general.metadata, mb)
    return 0


def _by_account_and_folder(item: Item) -> tuple[str, str]:
    return (str(item.get("accountname")), str(item.get("foldername")))


def _replace(path: Path, text: str) -> None:
    # a symlinked file (dotfiles kept elsewhere) stays a symlink: its target is replaced
    real = Path(os.path.realpath(path))
    tmp = real.with_name(f".{real.name}.mailtwin-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, real)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise MailtwinError(f"[mbnames] cannot write {path}: {e.strerror}") from e

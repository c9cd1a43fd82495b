"""Folder pairing: which folder on A goes with which on B, and which to create. Pure.

OfflineIMAP's rules, kept: folders are paired from the remote side (B): a B folder ``nb`` pairs
with ``nametrans_B(nb)`` with B's separator replaced by A's. An A folder no B folder pairs with
is new: it is created on B as ``nametrans_A(na)`` (separators swapped) when B creates folders
and that name passes B's folderfilter, and only if it comes back to ``na`` through B's
nametrans: otherwise every run would create another folder. Unlike OfflineIMAP, every such
problem is found before anything is written, and two folders that would become one is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from mailtwin.errors import ConfigError, FolderError, shown
from mailtwin.model import FolderInfo, Frozen, Side, _set

if TYPE_CHECKING:
    from mailtwin.config.model import RepositoryConfig


class RepoView(Frozen):
    """What pairing needs to know of one repository."""

    __match_args__ = (
        "section",
        "sep",
        "folderfilter",
        "nametrans",
        "folderincludes",
        "createfolders",
        "writable",
    )
    __slots__ = __match_args__
    section: str  # "Repository NAME", for errors
    sep: str
    folderfilter: Callable[[str], bool]
    nametrans: Callable[[str], str]
    folderincludes: tuple[str, ...]
    createfolders: bool
    writable: bool

    def __init__(
        self,
        section: str,
        sep: str,
        folderfilter: Callable[[str], bool],
        nametrans: Callable[[str], str],
        folderincludes: tuple[str, ...] = (),
        createfolders: bool = True,
        writable: bool = True,
    ) -> None:
        _set(self, "section", section)
        _set(self, "sep", sep)
        _set(self, "folderfilter", folderfilter)
        _set(self, "nametrans", nametrans)
        _set(self, "folderincludes", folderincludes)
        _set(self, "createfolders", createfolders)
        _set(self, "writable", writable)


def repo_view(repo: RepositoryConfig, sep: str) -> RepoView:
    """A repository's config as pairing sees it (``sep``: its folder separator in use)."""
    return RepoView(
        section=f"Repository {repo.name}",
        sep=sep,
        folderfilter=repo.folderfilter,
        nametrans=repo.nametrans,
        folderincludes=repo.folderincludes,
        createfolders=repo.createfolders,
        writable=not repo.readonly,
    )


class FolderPair(Frozen):
    __match_args__ = ("name_a", "name_b", "exists_a", "exists_b")
    __slots__ = __match_args__
    name_a: str
    name_b: str
    exists_a: bool
    exists_b: bool

    def __init__(self, name_a: str, name_b: str, exists_a: bool, exists_b: bool) -> None:
        _set(self, "name_a", name_a)
        _set(self, "name_b", name_b)
        _set(self, "exists_a", exists_a)
        _set(self, "exists_b", exists_b)

    def name(self, side: Side) -> str:
        return self.name_a if side is Side.A else self.name_b

    def exists(self, side: Side) -> bool:
        return self.exists_a if side is Side.A else self.exists_b


def check_name(name: str) -> None:
    """FolderError for a name no store can take: a NUL, or bytes that are not UTF-8 (a server's
    raw 8-bit name; it could not even be recorded in the status database). What each store
    refuses beside that (paths for a Maildir) it checks itself, before writing anything."""
    hint = "rename the folder on the server, or exclude it with folderfilter"
    if "\0" in name:
        raise FolderError(f"folder {shown(name)}: the name contains a NUL byte", hint)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise FolderError(
            f"folder {shown(name)}: the name is not valid UTF-8 (nor modified UTF-7)", hint
        ) from None


def _listed(folders: Sequence[FolderInfo], repo: RepoView) -> list[str]:
    names = [f.name for f in folders if f.selectable and _accepts(repo, f.name)]
    names += [n for n in repo.folderincludes if n not in names]
    return names


def _accepts(repo: RepoView, name: str) -> bool:
    # the config's callables report their own failures as ConfigError
    return bool(repo.folderfilter(name))


def _translate(repo: RepoView, name: str, to_sep: str) -> str:
    out = repo.nametrans(name)
    return out.replace(repo.sep, to_sep) if repo.sep != to_sep else out


def pair_folders(
    listed_a: Sequence[FolderInfo],
    listed_b: Sequence[FolderInfo],
    a: RepoView,
    b: RepoView,
    known: Collection[tuple[str, str]] = (),
    only_b: Collection[str] | None = None,
) -> list[FolderPair]:
    """Every folder pair to sync. ``known``: (name_a, name_b) pairs the status remembers;
    ``only_b``: ``-f``, names as on B. Raises ConfigError naming both folders on a clash."""
    names_a = _listed(listed_a, a)
    names_b = _listed(listed_b, b)
    set_a, set_b = set(names_a), set(names_b)
    pairs: dict[str, FolderPair] = {}  # by name on A
    by_b: dict[str, str] = {}

    def add(na: str, nb: str) -> None:
        if only_b is not None and nb not in only_b:
            return
        if na in pairs and pairs[na].name_b != nb:
            raise ConfigError(
                f"folders {pairs[na].name_b!r} and {nb!r} both become {na!r}",
                b.section,
                "nametrans",
                hint="change nametrans or folderfilter so that each folder keeps its own name",
            )
        if nb in by_b and by_b[nb] != na:
            raise ConfigError(
                f"folders {by_b[nb]!r} and {na!r} both become {nb!r}",
                a.section,
                "nametrans",
                hint="change nametrans or folderfilter so that each folder keeps its own name",
            )
        pairs[na] = FolderPair(na, nb, na in set_a, nb in set_b)
        by_b[nb] = na

    for nb in names_b:
        add(_translate(b, nb, a.sep), nb)
    for na, nb in known:
        # a pair synced before stays a pair (and is reported if one side is gone)
        if na not in pairs and nb not in by_b and _accepts(b, nb) and _accepts(a, na):
            add(na, nb)
    for na in names_a:
        if na in pairs:
            continue
        nb = _translate(a, na, b.sep)
        if nb in by_b:
            raise ConfigError(
                f"folder {na!r} becomes {nb!r}, which already pairs with {by_b[nb]!r}",
                a.section,
                "nametrans",
                hint="set nametrans on both repositories so that names map back and forth",
            )
        if not _accepts(b, nb):
            continue  # OfflineIMAP: not created where it would be filtered out
        back = _translate(b, nb, a.sep)
        if back != na:
            raise ConfigError(
                f"folder {na!r} would be created as {nb!r}, which becomes {back!r} in "
                "return: every run would create another folder",
                a.section,
                "nametrans",
                hint="set nametrans on both repositories so that names map back and forth, "
                "or use folderfilter to keep this folder from being created",
            )
        add(na, nb)
    return sorted(pairs.values(), key=lambda p: (p.name_b != "INBOX", p.name_b))

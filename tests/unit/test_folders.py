"""Folder pairing: nametrans both ways, folderfilter, folderincludes, -f, clashes."""

from __future__ import annotations

import re

import pytest

from mailtwin.errors import ConfigError, FolderError
from mailtwin.model import FolderInfo
from mailtwin.sync.folders import RepoView, check_name, pair_folders


def view(sep: str, nametrans=lambda n: n, folderfilter=lambda n: True, **kw) -> RepoView:  # type: ignore[no-untyped-def]
    return RepoView("Repository x", sep, folderfilter, nametrans, **kw)


def fi(*names: str, sep: str = "/") -> list[FolderInfo]:
    return [FolderInfo(n, sep) for n in names]


def pairs(result: list) -> set[tuple[str, str, bool, bool]]:  # type: ignore[type-arg]
    return {(p.name_a, p.name_b, p.exists_a, p.exists_b) for p in result}


def test_remote_folders_pair_with_separator_swapped() -> None:
    got = pair_folders(fi("INBOX", sep="."), fi("INBOX", "Work/Projects"), view("."), view("/"))
    assert pairs(got) == {
        ("INBOX", "INBOX", True, True),
        ("Work.Projects", "Work/Projects", False, True),
    }


def test_local_only_folder_is_created_on_remote() -> None:
    got = pair_folders(fi("INBOX", "Notes.Old", sep="."), fi("INBOX"), view("."), view("/"))
    assert ("Notes.Old", "Notes/Old", True, False) in pairs(got)


def test_nametrans_both_ways() -> None:
    remote = view("/", nametrans=lambda f: re.sub(r"^INBOX/", "", f))
    local = view(".", nametrans=lambda f: f if f == "INBOX" else "INBOX/" + f.replace(".", "/"))
    got = pair_folders(fi("INBOX", "Lists", sep="."), fi("INBOX", "INBOX/Lists"), local, remote)
    assert pairs(got) == {("INBOX", "INBOX", True, True), ("Lists", "INBOX/Lists", True, True)}


def test_irreversible_nametrans_is_a_config_error_naming_both() -> None:
    remote = view("/", nametrans=lambda f: f.lower())
    with pytest.raises(ConfigError, match=r"'Drafts'.*'drafts'"):
        pair_folders(fi("Drafts", sep="."), fi("INBOX"), view("."), remote)


def test_two_folders_becoming_one_is_an_error() -> None:
    remote = view("/", nametrans=lambda f: f.lower())
    with pytest.raises(ConfigError, match="both become"):
        pair_folders(fi(sep="."), fi("Foo", "foo"), view("."), remote)


def test_folderfilter_and_folderincludes() -> None:
    remote = view("/", folderfilter=lambda f: f != "Spam", folderincludes=("Extra",))
    got = pair_folders(fi(sep="."), fi("INBOX", "Spam"), view("."), remote)
    assert {p.name_b for p in got} == {"INBOX", "Extra"}


def test_local_folder_filtered_out_on_remote_is_not_created() -> None:
    remote = view("/", folderfilter=lambda f: f != "Private")
    got = pair_folders(fi("INBOX", "Private", sep="."), fi("INBOX"), view("."), remote)
    assert {p.name_b for p in got} == {"INBOX"}


def test_only_folders_restricts_by_remote_name() -> None:
    got = pair_folders(fi("X", sep="."), fi("INBOX", "A/B"), view("."), view("/"), only_b={"A/B"})
    assert {p.name_b for p in got} == {"A/B"}


def test_known_pair_gone_from_both_lists_is_still_reported() -> None:
    got = pair_folders(fi(sep="."), fi("INBOX"), view("."), view("/"), known=[("Old", "Old")])
    assert ("Old", "Old", False, False) in pairs(got)


@pytest.mark.parametrize("name", ["a\0b", "caf\udce9", "\udcff\udcfe"])
def test_check_name_refuses_what_no_store_can_take(name: str) -> None:
    with pytest.raises(FolderError) as e:
        check_name(name)
    assert repr(name) in str(e.value)
    str(e.value).encode("utf-8")  # the message itself prints


@pytest.mark.parametrize("name", ["INBOX", "Ärger", "&AMQ-rger", "a\nb", "../x", "R&D"])
def test_check_name_leaves_the_rest_to_the_stores(name: str) -> None:
    check_name(name)

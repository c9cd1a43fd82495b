"""Maildir names: ids, flag letters both ways, OfflineIMAP's names, folder paths that escape."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from mailtwin.errors import FolderError
from mailtwin.stores.maildir import MaildirStore
from mailtwin.stores.maildir_names import (
    change_flags,
    flags_of,
    flags_to_letters,
    folder_md5,
    folder_parts,
    letters_to_flags,
    message_id,
    new_base,
    offlineimap_uid,
    safe_hostname,
    size_of,
    split_name,
)

ALL = frozenset({"\\Draft", "\\Flagged", "\\Answered", "\\Seen", "\\Deleted"})
FMD5 = hashlib.md5(b"INBOX").hexdigest()
OIMAP = f"1700000000_3.4242.host,U=17,FMD5={FMD5}"


@pytest.mark.parametrize(
    ("letters", "flags"),
    [
        ("", set()),
        ("S", {"\\Seen"}),
        ("DFRST", ALL),
        ("FS", {"\\Flagged", "\\Seen"}),
        ("PSa", {"\\Seen"}),  # P (passed) and keywords have no IMAP flag here
        ("s", set()),  # letters are case-sensitive
    ],
)
def test_letters_to_flags(letters: str, flags: set[str]) -> None:
    assert letters_to_flags(letters) == flags


def test_flags_to_letters_sorted_and_keywords_dropped() -> None:
    assert flags_to_letters(ALL) == "DFRST"
    assert flags_to_letters(frozenset({"\\Seen", "\\Answered"})) == "RS"
    assert flags_to_letters(frozenset({"$Junk", "\\Recent"})) == ""


@pytest.mark.parametrize(
    ("name", "mid", "info"),
    [
        ("1234.M1P2.host", "1234.M1P2.host", None),
        ("1234.M1P2.host:2,S", "1234.M1P2.host", "2,S"),
        ("1234.M1P2.host:2,", "1234.M1P2.host", "2,"),
        (f"{OIMAP}:2,FS", OIMAP, "2,FS"),
        ("a:b:2,S", "a", "b:2,S"),  # the id ends at the first ':'
        ("x,S=1024,W=1050:2,RS", "x,S=1024,W=1050", "2,RS"),
    ],
)
def test_name_to_id(name: str, mid: str, info: str | None) -> None:
    assert split_name(name) == (mid, info)
    assert message_id(name) == mid


def test_flags_of_names() -> None:
    assert flags_of("x:2,FRS") == {"\\Flagged", "\\Answered", "\\Seen"}
    assert flags_of("x") == set()
    assert flags_of("x:1,S") == set()  # experimental info kind: no flags
    assert flags_of("x!2,S", infosep="!") == {"\\Seen"}
    assert flags_of("x:2,S", infosep="!") == set()


def test_size_from_name_only_when_present() -> None:
    assert size_of("123.M4.host,S=2048,W=2100:2,S") == 2048
    assert size_of(f"{OIMAP}:2,S") is None
    assert size_of("x:2,S=1") is None  # not in the base name


@pytest.mark.parametrize(
    ("name", "add", "remove", "expected"),
    [
        ("x", {"\\Seen"}, set(), "x:2,S"),
        ("x:2,", {"\\Seen", "\\Flagged"}, set(), "x:2,FS"),
        ("x:2,S", set(), {"\\Seen"}, "x:2,"),
        ("x:2,PSa", {"\\Flagged"}, {"\\Seen"}, "x:2,FPa"),  # P and keyword a kept, sorted
        ("x:2,Sbz", {"\\Draft"}, set(), "x:2,DSbz"),
        ("x:2,S", {"\\Seen"}, set(), "x:2,S"),
        ("x:2,S", {"$Junk"}, {"\\Recent"}, "x:2,S"),  # no letter: nothing to change
        ("x:1,abc", {"\\Seen"}, set(), "x:2,S"),
        ("x:2,S", {"\\Seen"}, {"\\Seen"}, "x:2,S"),  # add wins over remove
    ],
)
def test_change_flags(name: str, add: set[str], remove: set[str], expected: str) -> None:
    assert change_flags(name, frozenset(add), frozenset(remove)) == expected


def test_change_flags_other_infosep() -> None:
    assert change_flags("x!2,S", frozenset({"\\Flagged"}), frozenset(), "!") == "x!2,FS"


def test_offlineimap_names() -> None:
    assert folder_md5("INBOX") == FMD5
    assert folder_md5("&BCAEMAQxBD4EQgQw-") == hashlib.md5(b"&BCAEMAQxBD4EQgQw-").hexdigest()
    assert offlineimap_uid(f"{OIMAP}:2,S") == 17
    assert offlineimap_uid(f"{OIMAP}:2,S", fmd5=FMD5) == 17
    # moved in from another folder: its UID belongs to that folder
    assert offlineimap_uid(f"{OIMAP}:2,S", fmd5=folder_md5("Sent")) is None
    assert offlineimap_uid("1234.M1P2.host:2,S") is None
    assert offlineimap_uid(f"1_0.1.h,FMD5={FMD5}:2,S", fmd5=FMD5) is None


def test_new_base_is_offlineimaps_format() -> None:
    assert new_base(1700000000, 3, 4242, "host", 17, FMD5) == OIMAP
    assert (
        new_base(1700000000, 3, 4242, "host", None, FMD5) == f"1700000000_3.4242.host,FMD5={FMD5}"
    )


def test_safe_hostname() -> None:
    assert safe_hostname("mail.example.org") == "mail.example.org"
    assert safe_hostname("a/b:c,d") == "a-b-c-d"
    assert safe_hostname("a!b", infosep="!") == "a-b"


@pytest.mark.parametrize(
    ("name", "sep", "parts"),
    [
        ("INBOX", ".", ["INBOX"]),
        ("Work.Projects", ".", ["Work.Projects"]),
        ("Work/Projects", "/", ["Work", "Projects"]),
        ("&BCAEMAQxBD4EQgQw-", ".", ["&BCAEMAQxBD4EQgQw-"]),
        (".Trash", ".", [".Trash"]),
        ("...", ".", ["..."]),
    ],
)
def test_folder_parts(name: str, sep: str, parts: list[str]) -> None:
    assert folder_parts(name, sep) == parts


@pytest.mark.parametrize("sep", [".", "/"])
@pytest.mark.parametrize(
    "name",
    ["", "..", ".", "../x", "a/../../b", "/etc", "/", "a//b", "a/", "./a", "a\0b", "cur", "tmp"],
)
def test_folder_parts_refuses_escapes(name: str, sep: str) -> None:
    with pytest.raises(FolderError) as e:
        folder_parts(name, sep)
    assert repr(name) in str(e.value)


def test_folder_parts_layout_collisions() -> None:
    with pytest.raises(FolderError):
        folder_parts("Work/new", "/")
    with pytest.raises(FolderError):
        folder_parts("Work/Projects", ".")  # '/' cannot be stored in a flat layout
    assert folder_parts("Work.new", ".") == ["Work.new"]


@pytest.mark.parametrize("sep", [".", "/"])
@pytest.mark.parametrize(
    "name", ["a\nb", "a\x1b[2Jb", "tab\there", "del\x7f", "y" * 256, "y" * 2000, "ü" * 128]
)
def test_folder_parts_refuses_controls_and_long_names(name: str, sep: str) -> None:
    with pytest.raises(FolderError) as e:
        folder_parts(name, sep)
    assert len(str(e.value)) < 250  # the name is shown cut
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value)


def test_folder_parts_long_nested_names_within_limits() -> None:
    name = "/".join(["d" * 200] * 5)  # 1004 bytes: each part fits, the whole too
    assert folder_parts(name, "/") == ["d" * 200] * 5
    with pytest.raises(FolderError, match="longer than 255 bytes"):
        folder_parts("ok/" + "ü" * 128, "/")  # 256 bytes in UTF-8


def _case_insensitive_store(tmp_path: Path, sep: str) -> MaildirStore:
    """A store whose probe found a case-insensitive file system (Linux's ext4 is not one)."""
    store = MaildirStore(tmp_path / "Mail", sep=sep, fsync=False)
    store._nocase = True
    return store


@pytest.mark.parametrize("sep", [".", "/"])
def test_case_clash_on_a_case_insensitive_root(tmp_path: Path, sep: str) -> None:
    store = _case_insensitive_store(tmp_path, sep)
    asyncio.run(store.create_folder("Work"))
    with pytest.raises(FolderError, match=r"ignores case.*'Work'"):
        asyncio.run(store.create_folder("work"))
    assert sorted(os.listdir(tmp_path / "Mail")) == ["Work"]
    with pytest.raises(FolderError, match="ignores case"):
        asyncio.run(store.open_folder("WORK", False))
    asyncio.run(store.open_folder("Work", False))  # the first keeps its folder


def test_case_clash_with_a_folder_already_on_disk(tmp_path: Path) -> None:
    """What the listing found owns its directory, whatever comes first from the server."""
    for sub in ("cur", "new", "tmp"):
        os.makedirs(tmp_path / "Mail" / "Archive" / "2024" / sub)
    store = _case_insensitive_store(tmp_path, "/")
    assert [f.name for f in asyncio.run(store.list_folders())] == ["Archive/2024"]
    with pytest.raises(FolderError, match="'Archive/2024'"):
        asyncio.run(store.create_folder("archive/2024"))
    assert not (tmp_path / "Mail" / "archive").exists()


def test_case_probe(tmp_path: Path) -> None:
    # an empty root: probed by writing a file, which is removed again
    store = MaildirStore(tmp_path, fsync=False)
    nocase = store._ignores_case(str(tmp_path))
    (tmp_path / "Probe").touch()
    assert nocase == (tmp_path / "pROBE").exists()
    assert os.listdir(tmp_path) == ["Probe"]  # the probe left nothing behind
    readonly = MaildirStore(tmp_path / "missing", readonly=True)
    assert readonly._ignores_case(str(tmp_path / "missing")) is False


def test_case_probe_reads_an_entry_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "INBOX").mkdir()
    (tmp_path / "Größe").mkdir()  # not ASCII: swapping its case proves nothing
    writes: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a: writes.append(p) or real_open(p, *a))
    # read-only too: nothing is written either way
    for store in (MaildirStore(tmp_path, fsync=False), MaildirStore(tmp_path, readonly=True)):
        assert store._ignores_case(str(tmp_path)) == (tmp_path / "inbox").exists()
    assert writes == []
    assert sorted(os.listdir(tmp_path)) == ["Größe", "INBOX"]


def test_case_probe_tells_a_case_insensitive_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the swapped name is the same file, case is ignored; where it is a file of its
    own (both listed), the entry is skipped."""
    (tmp_path / "Work").mkdir()
    (tmp_path / "Mail").mkdir()
    (tmp_path / "mAIL").mkdir()  # its own directory: a case-sensitive pair, proves nothing
    real_lstat = os.lstat

    def lstat(path: str) -> os.stat_result:
        head, tail = os.path.split(path)
        if tail == "wORK":
            path = os.path.join(head, "Work")  # as a case-insensitive file system answers
        return real_lstat(path)

    monkeypatch.setattr(os, "lstat", lstat)
    assert MaildirStore(tmp_path, fsync=False)._ignores_case(str(tmp_path)) is True


def test_case_sensitive_root_keeps_both(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "Mail", sep=".", fsync=False)
    store._nocase = False
    asyncio.run(store.create_folder("Work"))
    asyncio.run(store.create_folder("work"))
    assert sorted(os.listdir(tmp_path / "Mail")) == ["Work", "work"]

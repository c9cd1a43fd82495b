"""[mbnames]: how the section is read, and how the lists become the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailtwin.config.model import MbnamesConfig
from mailtwin.errors import ConfigError
from mailtwin.sync import mbnames
from tests.unit.test_config import error, load, write

GOOD = """[mbnames]
enabled = yes
filename = ~/muttrc.mailboxes
header = "mailboxes "
peritem = "+%(accountname)s/%(foldername)s"
sep = " "
footer = "\\n"
"""


def test_the_section_is_read_as_offlineimap_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config, warnings = load(write(tmp_path, extra=GOOD))
    assert warnings == []
    mb = config.mbnames
    assert mb is not None
    assert mb.filename == tmp_path / "muttrc.mailboxes"
    # Python strings, evaluated; peritem as written (its quotes are part of each item)
    assert (mb.header, mb.sep, mb.footer) == ("mailboxes ", " ", "\n")
    assert mb.peritem == '"+%(accountname)s/%(foldername)s"'
    assert not mb.incremental and mb.folderfilter is None and mb.sort_keyfunc is None


def test_disabled_or_absent_is_none(tmp_path: Path) -> None:
    assert load(write(tmp_path))[0].mbnames is None
    off = GOOD.replace("enabled = yes", "enabled = no")
    assert load(write(tmp_path, extra=off))[0].mbnames is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('footer = "\\n"\n', ""), "[mbnames] footer: is missing"),
        (('header = "mailboxes "', "header = mailboxes"), "[mbnames] header: cannot evaluate"),
        (('header = "mailboxes "', "header = 3"), "[mbnames] header: is a int, not a string"),
        (
            ('peritem = "+%(accountname)s/%(foldername)s"', "peritem = %(folder)s"),
            "[mbnames] peritem: is not a %-format",
        ),
        (
            ("enabled = yes", "enabled = yes\nfolderfilter = 3"),
            "[mbnames] folderfilter: is a int, not a function",
        ),
        (("enabled = yes", "enabled = maybe"), "[mbnames] enabled: 'maybe' is not a boolean"),
    ],
)
def test_bad_values_are_one_line_naming_the_option(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    exc = error(write(tmp_path, extra=text))
    assert str(exc).startswith(message), str(exc)


def conf(tmp_path: Path, **kw: object) -> MbnamesConfig:
    args: dict[str, object] = {
        "filename": tmp_path / "out",
        "header": "mailboxes ",
        "peritem": "+%(accountname)s/%(foldername)s",
        "sep": " ",
        "footer": "\n",
    }
    return MbnamesConfig(**(args | kw))  # type: ignore[arg-type]


def test_lists_of_every_account_sorted_into_one_file(tmp_path: Path) -> None:
    mb = conf(tmp_path)
    mbnames.record(tmp_path, mb, "work", "/m/work", ["Sent", "INBOX"])
    mbnames.record(tmp_path, mb, "home", None, ["INBOX"])
    mbnames.write(tmp_path, mb)
    assert (tmp_path / "out").read_text() == "mailboxes +home/INBOX +work/INBOX +work/Sent\n"
    saved = json.loads((tmp_path / "mbnames" / "work.json").read_text())
    assert saved == [
        {"accountname": "work", "foldername": "Sent", "localfolders": "/m/work"},
        {"accountname": "work", "foldername": "INBOX", "localfolders": "/m/work"},
    ]
    # an account's next sync replaces its own list only
    mbnames.record(tmp_path, mb, "work", "/m/work", ["INBOX"])
    mbnames.write(tmp_path, mb)
    assert (tmp_path / "out").read_text() == "mailboxes +home/INBOX +work/INBOX\n"


def test_filter_and_sort_key(tmp_path: Path) -> None:
    mb = conf(
        tmp_path,
        folderfilter=lambda account, folder: folder != "Trash",
        sort_keyfunc=lambda d: (d["foldername"] != "INBOX", d["foldername"]),
        peritem="%(foldername)s@%(localfolders)s",
        sep=",",
    )
    mbnames.record(tmp_path, mb, "work", "/m", ["Archive", "Trash", "INBOX"])
    mbnames.write(tmp_path, mb)
    assert (tmp_path / "out").read_text() == "mailboxes INBOX@/m,Archive@/m\n"


def test_a_damaged_list_is_named(tmp_path: Path) -> None:
    (tmp_path / "mbnames").mkdir()
    (tmp_path / "mbnames" / "work.json").write_text("{not json")
    with pytest.raises(Exception, match=r"\[mbnames\] cannot read .*work\.json") as info:
        mbnames.write(tmp_path, conf(tmp_path))
    assert not isinstance(info.value, ConfigError)
    assert not (tmp_path / "out").exists()


def test_prune(tmp_path: Path) -> None:
    mb = conf(tmp_path)
    for name in ("a", "b", "c"):
        mbnames.record(tmp_path, mb, name, None, ["INBOX"])
    assert [p.stem for p in mbnames.prune(tmp_path, ["b"], dry_run=True)] == ["a", "c"]
    assert len(list((tmp_path / "mbnames").iterdir())) == 3
    assert [p.stem for p in mbnames.prune(tmp_path, ["b"])] == ["a", "c"]
    assert [p.name for p in (tmp_path / "mbnames").iterdir()] == ["b.json"]

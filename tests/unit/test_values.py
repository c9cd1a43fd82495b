"""The frozen value classes (model.Frozen): what @dataclass(frozen=True, slots=True) gave them,
equality, hashing, repr, immutability, copies, keeps working without its start-up cost."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from mailtwin.config.model import (
    AccountConfig,
    AuthConfig,
    Config,
    GeneralConfig,
    OAuth2Config,
    RepositoryConfig,
)
from mailtwin.config.options import lookup
from mailtwin.model import (
    Delivered,
    FolderInfo,
    FolderStamp,
    Frozen,
    FrozenInstanceError,
    MessageInfo,
    Side,
    Snapshot,
    StoreCaps,
    replace,
)
from mailtwin.stores.base import FlagChange, ReceiveResult
from mailtwin.ui import events as ev


def repo(name: str = "R", **kw: object) -> RepositoryConfig:
    values: dict[str, object] = dict(
        name=name,
        type="IMAP",
        localfolders=None,
        sep=".",
        remotehost="imap.example.org",
        remoteport=None,
        remoteuser="me",
        remotepass="hunter2",
        ssl=True,
        starttls=True,
        readonly=False,
        sync_deletes=True,
        createfolders=True,
        folderfilter=bool,
        nametrans=str,
        folderincludes=(),
        expunge=True,
        maxconnections=1,
    )
    values.update(kw)
    return RepositoryConfig(**values)  # type: ignore[arg-type]


def test_equality_and_hash_by_value() -> None:
    a, b = FolderInfo("Work/Sub", "/"), FolderInfo("Work/Sub", "/", True)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != FolderInfo("Work/Sub", ".") and a != FolderInfo("Work/Sub", "/", False)
    assert FolderStamp("imap", (1, 2, 3, None)) == FolderStamp("imap", (1, 2, 3, None))
    assert FolderStamp("imap", (1,)) != FolderStamp("maildir", (1,))
    assert MessageInfo(7, frozenset({"\\Seen"})) == MessageInfo(7, frozenset({"\\Seen"}), None)
    assert FlagChange(1, frozenset(), frozenset()) == FlagChange(1, frozenset(), frozenset())
    assert Delivered(None, "k") != Delivered(1, "k")


def test_values_of_different_classes_differ() -> None:
    # as dataclasses: the same fields in another class are not equal (nor a tuple)
    assert ev.AccountStarted("x") != ev.Event("x")
    assert Delivered(1, "k") != (1, "k")
    assert FolderInfo("a", "/").__eq__(("a", "/", True)) is NotImplemented


def test_repr_names_the_fields_in_order() -> None:
    assert repr(FolderInfo("a", "/")) == "FolderInfo(name='a', sep='/', selectable=True)"
    assert (
        repr(ev.AccountDone("acct", True, 0.5))
        == "AccountDone(account='acct', ok=True, seconds=0.5)"
    )
    assert repr(StoreCaps()) == "StoreCaps(flags=None, knows_new_ids=True)"


def test_repr_leaves_secrets_out() -> None:
    shown = repr(repo(remotepass="hunter2"))
    assert "hunter2" not in shown and "remotepass" not in shown and "remoteuser='me'" in shown
    oauth = OAuth2Config(lambda: "id", lambda: "cs", lambda: "rt", lambda: "at")
    assert "client_secret" not in repr(oauth) and "refresh_token=" not in repr(oauth)
    assert "passeval" not in repr(AuthConfig(("PLAIN",), passeval=lambda: "pw"))


def test_fields_cannot_be_assigned() -> None:
    info = FolderInfo("a", "/")
    with pytest.raises(FrozenInstanceError):
        info.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del info.sep  # type: ignore[misc]
    with pytest.raises(AttributeError):
        info.other = 1  # type: ignore[attr-defined]
    assert info.name == "a"


def test_unhashable_fields_make_an_unhashable_value() -> None:
    done = ev.FolderDone("a", "INBOX", {Side.A: 1}, {Side.A: 0}, {Side.A: 0})
    assert done == ev.FolderDone("a", "INBOX", {Side.A: 1}, {Side.A: 0}, {Side.A: 0}, 0)
    with pytest.raises(TypeError):
        hash(done)


def test_copy_and_pickle() -> None:
    snap = Snapshot(1, 5, {4: MessageInfo(4, frozenset())}, modseq=9)
    assert copy.copy(snap) == snap and copy.deepcopy(snap) == snap
    assert pickle.loads(pickle.dumps(snap)) == snap
    assert pickle.loads(pickle.dumps(ev.Failed("a", "no", hint="h"))) == ev.Failed(
        "a", "no", None, "h"
    )


def test_every_value_class_lists_its_fields() -> None:
    def every(cls: type[Frozen]) -> list[type[Frozen]]:
        return [c for s in cls.__subclasses__() for c in (s, *every(s))]

    for cls in every(Frozen):
        assert cls._fields == cls.__match_args__
        assert len(set(cls._fields)) == len(cls._fields), cls


def test_replace() -> None:
    general = GeneralConfig(("A",), Path("/m"), 1, None, None, True)
    acct = AccountConfig("A", repo("L"), repo("R"), None, 0)
    config = Config(Path("/rc"), general, {"A": acct})
    changed = replace(config, accounts={})
    assert changed.accounts == {} and changed.general is general and config.accounts == {"A": acct}
    remote = replace(acct.remote, folderincludes=("INBOX",))
    assert remote.folderincludes == ("INBOX",) and remote.remotepass == "hunter2"
    assert replace(acct, remote=remote) == AccountConfig("A", repo("L"), remote, None, 0, 50, 25)
    with pytest.raises(TypeError):
        replace(acct, nosuchfield=1)


def test_receive_result() -> None:
    first, second = ReceiveResult(), ReceiveResult()
    first.delivered[1] = Delivered(2, "k")
    assert second.delivered == {} and second.failed == {}  # each its own dicts
    assert first == ReceiveResult({1: Delivered(2, "k")}) and first != second
    with pytest.raises(TypeError):
        hash(first)


@pytest.mark.parametrize(
    ("name", "row"),
    [
        ("customflag_x", "customflag_[a-z]"),
        ("customflag_a", "customflag_[a-z]"),
        ("customflag_z", "customflag_[a-z]"),
        ("customflag_A", None),
        ("customflag_xy", None),
        ("customflag_", None),
        ("customflag_1", None),
    ],
)
def test_customflag_rows(name: str, row: str | None) -> None:
    opt = lookup(("repository:Maildir", "repository"), name)
    assert (opt.name if opt is not None else None) == row

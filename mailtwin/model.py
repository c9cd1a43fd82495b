"""Frozen values shared by every layer: sides, flags, message infos, snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeVar

if TYPE_CHECKING:
    from datetime import datetime

_set = object.__setattr__  # how a Frozen's __init__ sets its fields


class FrozenInstanceError(AttributeError):
    """A field of a Frozen value was assigned to (as dataclasses.FrozenInstanceError)."""


class Frozen:
    """Base of the small immutable values: equality, hash and repr over the fields, and no
    assignment once built; what ``@dataclass(frozen=True, slots=True)`` makes, without
    compiling its generated methods for every class at start-up, which cost more than a whole
    no-op sync. A subclass lists its fields, in order, in ``__match_args__`` (as a dataclass
    has them), holds them in ``__slots__`` and sets them in its ``__init__`` with ``_set``."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _values: ClassVar[Any]  # the fields' values of an instance, for __eq__ and __hash__
    _hidden: ClassVar[frozenset[str]] = frozenset()  # fields left out of repr (secrets)

    def __init_subclass__(cls) -> None:
        fields = cls.__match_args__
        slots = (f for c in cls.__mro__ for f in vars(c).get("__slots__", ()))
        assert sorted(fields) == sorted(slots), f"{cls.__name__}: fields and slots differ"
        cls._fields = fields
        cls._values = attrgetter(*fields) if fields else staticmethod(lambda _: ())

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return bool(self._values(self) == self._values(other))

    def __hash__(self) -> int:
        return hash(self._values(self))

    def __repr__(self) -> str:
        shown = (f"{f}={getattr(self, f)!r}" for f in self._fields if f not in self._hidden)
        return f"{type(self).__qualname__}({', '.join(shown)})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[type[Frozen], tuple[object, ...]]:
        # copy and pickle: __init__ takes the fields in order (the default would assign them)
        return type(self), tuple(getattr(self, f) for f in self._fields)


_F = TypeVar("_F", bound=Frozen)


def replace(value: _F, **changes: object) -> _F:
    """A copy of ``value`` with some fields changed (each class's __init__ takes its fields by
    name); an unknown field is a TypeError."""
    unknown = changes.keys() - set(value._fields)
    if unknown:
        raise TypeError(f"{type(value).__name__} has no field {sorted(unknown)[0]!r}")
    args = {f: changes[f] if f in changes else getattr(value, f) for f in value._fields}
    return type(value)(**args)


class Side(Enum):
    """The two sides of an account: A is OfflineIMAP's local repository, B its remote one."""

    A = "a"
    B = "b"

    @property
    def other(self) -> Side:
        return Side.B if self is Side.A else Side.A


SIDE_NAME = {Side.A: "local", Side.B: "remote"}  # as OfflineIMAP's config names them


MessageId = int | str
"""An IMAP UID, or a Maildir key (the file's base name before ':')."""

Flags = frozenset[str]
"""IMAP flag names (``\\Seen``, ``\\Answered`` ... and keywords); Maildir letters are mapped."""

ContentKey = str
"""What re-matches one message's copies: Message-ID + CRLF size, or a header hash + CRLF size."""

SYSTEM_FLAGS: Flags = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
NO_FLAGS: Flags = frozenset()


class MessageInfo(NamedTuple):
    """One message in a snapshot. A tuple: a sync builds one for every message of every
    changed folder, and a tuple is built twice as fast as a frozen class."""

    id: MessageId
    flags: Flags
    size: int | None = None
    internal_date: datetime | None = None


class Snapshot(Frozen):
    """One folder as a store sees it at the start of a sync."""

    __match_args__ = ("uidvalidity", "uidnext", "messages", "modseq", "derived")
    __slots__ = __match_args__
    uidvalidity: int
    uidnext: int
    messages: Mapping[MessageId, MessageInfo]
    modseq: int | None
    # True: built from the last sync point and what changed since (see stores/since.py), not
    # listed in full; a message no status row named there may be missing
    derived: bool

    def __init__(
        self,
        uidvalidity: int,
        uidnext: int,
        messages: Mapping[MessageId, MessageInfo],
        modseq: int | None = None,
        derived: bool = False,
    ) -> None:
        _set(self, "uidvalidity", uidvalidity)
        _set(self, "uidnext", uidnext)
        _set(self, "messages", messages)
        _set(self, "modseq", modseq)
        _set(self, "derived", derived)


class Since(Frozen):
    """One side's last sync point, when the status vouches that its pair rows named every
    message of that side then (see sync/folder.py): a store with mod-sequences lists only what
    changed since, and ``known`` (each named id → its synced flags) stands for the rest."""

    __match_args__ = ("uidvalidity", "uidnext", "modseq", "known")
    __slots__ = __match_args__
    uidvalidity: int
    uidnext: int
    modseq: int
    known: Mapping[MessageId, Flags]

    def __init__(
        self, uidvalidity: int, uidnext: int, modseq: int, known: Mapping[MessageId, Flags]
    ) -> None:
        _set(self, "uidvalidity", uidvalidity)
        _set(self, "uidnext", uidnext)
        _set(self, "modseq", modseq)
        _set(self, "known", known)


class FolderInfo(Frozen):
    """A folder as listed by a store: its name in that store, and the hierarchy separator."""

    __match_args__ = ("name", "sep", "selectable")
    __slots__ = __match_args__
    name: str
    sep: str
    selectable: bool

    def __init__(self, name: str, sep: str, selectable: bool = True) -> None:
        _set(self, "name", name)
        _set(self, "sep", sep)
        _set(self, "selectable", selectable)


class Delivered(Frozen):
    """The result of copying one message: its id on the target (None: not known yet) and key."""

    __match_args__ = ("id", "key")
    __slots__ = __match_args__
    id: MessageId | None
    key: ContentKey

    def __init__(self, id: MessageId | None, key: ContentKey) -> None:
        _set(self, "id", id)
        _set(self, "key", key)


class StoreCaps(Frozen):
    """What a store can do, decided once at connect."""

    __match_args__ = ("flags", "knows_new_ids")
    __slots__ = __match_args__
    # flags the store can keep; None means any flag or keyword
    flags: Flags | None
    # True when append() reports the new ids (IMAP UIDPLUS, Maildir always)
    knows_new_ids: bool

    def __init__(self, flags: Flags | None = None, knows_new_ids: bool = True) -> None:
        _set(self, "flags", flags)
        _set(self, "knows_new_ids", knows_new_ids)


class FolderStamp(Frozen):
    """What a store tells of a folder without opening it. Equal stamps taken before two syncs
    mean the folder did not change in between, when ``complete``: IMAP (UIDVALIDITY, UIDNEXT,
    MESSAGES, HIGHESTMODSEQ); Maildir (st_mtime_ns of new/, of cur/). None: not known."""

    __match_args__ = ("kind", "values")
    __slots__ = __match_args__
    kind: str  # "imap" or "maildir": stamps of different kinds never match
    values: tuple[int | None, ...]

    def __init__(self, kind: str, values: tuple[int | None, ...]) -> None:
        _set(self, "kind", kind)
        _set(self, "values", values)

    @property
    def complete(self) -> bool:
        # without HIGHESTMODSEQ a flag change shows in no field of an IMAP stamp
        return bool(self.values) and None not in self.values

    def text(self) -> str:
        """The fixed text form kept in the status: ``imap 7 42 40 1093``, ``-`` for None."""
        return " ".join([self.kind, *("-" if v is None else str(v) for v in self.values)])

    @classmethod
    def parse(cls, text: str | None) -> FolderStamp | None:
        """The stamp of ``text()``; None for None or anything unreadable (that folder is then
        simply synced in full)."""
        if not text:
            return None
        kind, *rest = text.split()
        try:
            return cls(kind, tuple(None if v == "-" else int(v) for v in rest))
        except ValueError:
            return None

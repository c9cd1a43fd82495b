"""What changed in a folder since a mod-sequence (RFC 7162): the commands and their answers.

With QRESYNC enabled one command says it all: ``UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE m
VANISHED)`` sends the flags of every message changed or added since ``m`` and, as ``VANISHED
(EARLIER)``, the UIDs expunged since. (The same as ``SELECT (QRESYNC ...)``, but on the folder
the store has already selected, so it costs no second SELECT.) With CONDSTORE alone the same
FETCH without VANISHED, and the folder's whole UID list (``UID SEARCH``, as ranges with
ESEARCH): a UID the status knows and the list lacks is gone. Both are far less than every
message's flags. UID sets in answers stay ranges: a server may name millions of UIDs in a few
bytes.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

from mailtwin.stores.imap.wire import Arg, Untagged

_SET = re.compile(rb"\d+(?::\d+)?(?:,\d+(?::\d+)?)*\Z")
_ESEARCH_ALL = re.compile(rb"(?i)\bALL (\S+)")


def commands(modseq: int, qresync: bool, esearch: bool) -> list[list[Arg]]:
    """The commands to pipeline (the folder selected) for what changed after ``modseq``."""
    mods = b"(CHANGEDSINCE %d%s)" % (modseq, b" VANISHED" if qresync else b"")
    out: list[list[Arg]] = [[b"UID", b"FETCH", b"1:*", b"(UID FLAGS)", mods]]
    if not qresync:
        search: list[Arg] = [b"RETURN", b"(ALL)"] if esearch else []
        out.append([b"UID", b"SEARCH", *search, b"ALL"])
    return out


class UidRanges:
    """A set of UIDs as sorted, merged ranges."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted((min(a, b), max(a, b)) for a, b in ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        self._lo = [lo for lo, _ in merged]
        self._hi = [hi for _, hi in merged]

    def __contains__(self, uid: object) -> bool:
        if not isinstance(uid, int):
            return False
        i = bisect_right(self._lo, uid) - 1
        return i >= 0 and uid <= self._hi[i]


def uid_ranges(text: bytes) -> list[tuple[int, int]] | None:
    """``2,4:7`` → [(2, 2), (4, 7)]; None when ``text`` is no UID set."""
    if not _SET.match(text):
        return None
    out = []
    for part in text.split(b","):
        lo, _, hi = part.partition(b":")
        out.append((int(lo), int(hi or lo)))
    return out


class Changes:
    """What the answers to ``commands`` said; ``doubt``: something did not parse, or the UID
    list never came (then the folder is listed in full)."""

    __slots__ = ("doubt", "present", "vanished")

    def __init__(self) -> None:
        self.vanished: list[tuple[int, int]] = []
        self.present: list[tuple[int, int]] | None = None  # CONDSTORE alone: every UID there is
        self.doubt = False

    def take(self, u: Untagged) -> bool:
        """Note ``u`` if it is a VANISHED, SEARCH or ESEARCH response; False if it is not."""
        num, word = u.head()
        if num is not None or word not in (b"VANISHED", b"SEARCH", b"ESEARCH"):
            return False
        rest = u.parts[0][2 + len(word) :].strip()
        if word == b"VANISHED":
            if rest[:9].upper() == b"(EARLIER)":
                rest = rest[9:].strip()
            got = uid_ranges(rest)
            if got is None:
                self.doubt = True
            else:
                self.vanished += got
            return True
        present = self.present if self.present is not None else []
        if word == b"SEARCH":
            words = rest.split()
            if all(w.isdigit() for w in words):
                present += [(int(w), int(w)) for w in words]
            else:
                self.doubt = True
        else:  # ESEARCH: (TAG "x") UID [ALL set]; no ALL: no messages
            m = _ESEARCH_ALL.search(rest)
            got = uid_ranges(m.group(1)) if m else []
            if got is None:
                self.doubt = True
            else:
                present += got
        self.present = present
        return True

    def gone(self, known: Iterable[int]) -> list[int]:
        """Which of ``known`` are no longer in the folder."""
        if self.present is not None:
            there = UidRanges(self.present)
            return [u for u in known if u not in there]
        vanished = UidRanges(self.vanished)
        return [u for u in known if u in vanished]

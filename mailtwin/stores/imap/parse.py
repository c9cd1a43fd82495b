"""The one adapter over imapclient: its response parser for the small, bounded responses (FETCH
attributes other than bodies, LIST, STATUS, SELECT data, SEARCH, response codes). Anything
imapclient cannot parse becomes a ``ServerProtocolError``.

imapclient is imported on first need, not at start-up: with everything it pulls in, importing
it costs about 30 ms, a tenth of a whole incremental sync. The shapes every sync meets have
regex fast paths, each checked against imapclient by a property test: snapshot lines
(``* 7 FETCH (UID 9 FLAGS (\\Seen))``, by the hundred thousand, ~30 µs each in imapclient),
LIST and STATUS lines, simple response codes, FLAGS and SEARCH. The modified UTF-7 folder-name
codec and the INTERNALDATE format are small enough to live here; the tests hold them to
imapclient's.
"""

from __future__ import annotations

import binascii
import functools
import re
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from mailtwin.errors import ServerProtocolError, cut
from mailtwin.model import Flags
from mailtwin.stores.imap.probe import list_line, status_line
from mailtwin.stores.imap.wire import Untagged

# imapclient's parse results: nested tuples of bytes, int and None
Atom = bytes | int | None | tuple["Atom", ...]
Record = bytes | tuple[bytes, bytes]

_SYSTEM = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
RECENT = "\\Recent"

# ---- imapclient's parser, fed our framed lines ------------------------------------------------


def _records(u: Untagged, skip: int) -> list[Record]:
    """The response as imaplib-style records for imapclient, its first ``skip`` bytes dropped."""
    parts = list(u.parts)
    parts[0] = parts[0][skip:]
    recs: list[Record] = [(p, lit) for p, lit in zip(parts, u.literals, strict=False)]
    recs.append(parts[-1])
    return recs


# imapclient's parser recurses once per nesting level: a server's "((((..." must not reach
# Python's recursion limit. What we parse nests three levels at most (FETCH (MODSEQ (n))).
MAX_DEPTH = 16


@functools.cache
def _parse_errors() -> tuple[type[Exception], ...]:
    """What imapclient raises on input it did not expect (its ProtocolError and others)."""
    from imapclient.exceptions import ProtocolError

    return (ProtocolError, ValueError, IndexError, TypeError, RecursionError)


# arguments the fast path parses as imapclient would: atoms and numbers, one level of
# parentheses at most, none of its specials (quotes, literals, brackets, %) and no control bytes
_SIMPLE = re.compile(rb"[!#$&'*+,\-./0-9:;<=>?@A-Z\\^_`a-z|~ ()]*\Z")
_SIMPLE_TOKEN = re.compile(rb"[()]|[^ ()]+")


def _simple(text: bytes) -> tuple[Atom, ...] | None:
    """``text`` parsed as imapclient's ``parse_response`` would, when it is that simple."""
    if not _SIMPLE.match(text):
        return None
    out: list[Atom] = []
    inner: list[Atom] | None = None
    for t in _SIMPLE_TOKEN.findall(text):
        if t == b"(":
            if inner is not None:
                return None  # nested
            inner = []
        elif t == b")":
            if inner is None:
                return None
            out.append(tuple(inner))
            inner = None
        else:
            # imapclient's atoms: NIL is None, digits without a leading zero an int
            atom: Atom = t
            if t == b"NIL":
                atom = None
            elif t.isdigit() and (t[:1] != b"0" or len(t) == 1):
                atom = int(t)
            (out if inner is None else inner).append(atom)
    return tuple(out) if inner is None else None


def _check_depth(records: list[Record], what: str) -> None:
    texts = [r[0] if isinstance(r, tuple) else r for r in records]
    if sum(t.count(b"(") for t in texts) <= MAX_DEPTH:
        return
    depth = 0
    for t in texts:
        for c in t:
            if c == 40:  # "("
                depth += 1
                if depth > MAX_DEPTH:
                    raise ServerProtocolError(
                        f"the server's {what} nests deeper than {MAX_DEPTH} levels: "
                        + cut(b"".join(texts))
                    )
            elif c == 41:  # ")"
                depth = max(0, depth - 1)


def _parse(records: list[Record], what: str) -> tuple[Atom, ...]:
    if len(records) == 1 and isinstance(records[0], bytes):
        fast = _simple(records[0])
        if fast is not None:
            return fast
    _check_depth(records, what)
    from imapclient.response_parser import parse_response

    try:
        return tuple(parse_response(records))
    except _parse_errors() as e:
        raise ServerProtocolError(f"cannot parse the server's {what}: {cut(str(e))}") from e


def _after(u: Untagged, *words: bytes) -> int:
    """Where the response's data starts, after ``* `` and ``words`` (checked case-insensitively)."""
    line = u.parts[0]
    pos = 2
    for w in words:
        if line[pos : pos + len(w)].upper() != w:
            raise ServerProtocolError(f"expected {w.decode()}: {cut(u.text())}")
        pos += len(w) + 1
    return pos


def _text(value: Atom) -> str:
    """A name or flag as str; imapclient makes digit-only atoms ints."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, int):
        return str(value)
    raise ServerProtocolError(f"expected a string, got {cut(repr(value))}")


def flags(values: Atom) -> Flags:
    """IMAP flags as str: system flags in their canonical case, ``\\Recent`` dropped."""
    if not isinstance(values, tuple):
        raise ServerProtocolError(f"expected a flag list, got {cut(repr(values))}")
    out = set()
    for v in values:
        f = _text(v)
        f = _SYSTEM.get(f.lower(), f)
        if f.lower() != "\\recent":
            out.add(f)
    return frozenset(out)


@functools.lru_cache(maxsize=4096)
def _flag_words(words: bytes) -> Flags:
    """``\\Seen $Label`` → flags; the same few combinations come again and again."""
    return flags(tuple(words.split()))


# ---- response codes and capabilities ----------------------------------------------------------


def response_code(text: bytes) -> tuple[bytes, tuple[Atom, ...]] | None:
    """``[CODE args] text`` → (CODE upper-cased, parsed args); None without a code."""
    if text[:1] != b"[":
        return None
    end = text.find(b"]")
    if end < 0:
        raise ServerProtocolError(f"unterminated response code: {cut(text)}")
    inner = text[1:end]
    name, _, args = inner.partition(b" ")
    return name.upper(), _parse([args], "response code") if args else ()


def capabilities(words: bytes) -> frozenset[str]:
    """``IMAP4rev1 LITERAL+ AUTH=PLAIN`` → upper-cased names."""
    return frozenset(w.decode("ascii", "replace").upper() for w in words.split())


def code_capabilities(text: bytes) -> frozenset[str] | None:
    """The capabilities in a ``[CAPABILITY ...]`` response code, if the text has one."""
    if text[:12].upper() != b"[CAPABILITY ":
        return None
    end = text.find(b"]")
    return capabilities(text[12:end]) if end > 0 else None


def appenduid(text: bytes) -> tuple[int, list[int]] | None:
    """APPENDUID (RFC 4315) in a tagged OK's text: (uidvalidity, new uids in order)."""
    code = response_code(text)
    if code is None or code[0] != b"APPENDUID" or len(code[1]) != 2:
        return None
    validity, uids = code[1]
    if not isinstance(validity, int):
        return None
    return validity, expand_uids(uids)


def copyuid(text: bytes) -> tuple[int, list[int], list[int]] | None:
    """COPYUID (RFC 4315): (uidvalidity, source uids, new uids)."""
    code = response_code(text)
    if code is None or code[0] != b"COPYUID" or len(code[1]) != 3:
        return None
    validity, src, dst = code[1]
    if not isinstance(validity, int):
        return None
    return validity, expand_uids(src), expand_uids(dst)


def expand_uids(value: Atom) -> list[int]:
    """A uid-set (``3``, ``3:5,9``) as a list of uids, ranges ascending."""
    if isinstance(value, int):
        return [value]
    if not isinstance(value, bytes):
        raise ServerProtocolError(f"expected a UID set, got {cut(repr(value))}")
    out: list[int] = []
    try:
        for item in value.split(b","):
            lo, _, hi = item.partition(b":")
            a, b = int(lo), int(hi or lo)
            out.extend(range(min(a, b), max(a, b) + 1))
    except ValueError as e:
        raise ServerProtocolError(f"bad UID set: {cut(value)}") from e
    return out


# ---- SELECT / EXAMINE, STATUS, LIST, SEARCH ---------------------------------------------------


class SelectInfo:
    """What SELECT / EXAMINE told about a folder."""

    __slots__ = (
        "exists",
        "flags",
        "highestmodseq",
        "permanentflags",
        "readonly",
        "uidnext",
        "uidvalidity",
    )

    def __init__(self) -> None:
        self.exists = 0
        self.uidvalidity: int | None = None
        self.uidnext: int | None = None
        self.highestmodseq: int | None = None
        self.flags: Flags = frozenset()
        # None: the server did not say (then: any of ``flags``)
        self.permanentflags: Flags | None = None
        self.readonly = False

    def update(self, u: Untagged) -> None:
        num, word = u.head()
        if num is not None:
            if word == b"EXISTS":
                self.exists = num
            return
        if word == b"FLAGS":
            (value,) = _parse(_records(u, _after(u, b"FLAGS")), "FLAGS") or (None,)
            self.flags = flags(value)
        elif word == b"OK":
            self.code(u.parts[0][5:])

    def code(self, text: bytes) -> None:
        """A response code from ``* OK [...]`` or the tagged OK."""
        code = response_code(text)
        if code is None:
            return
        name, args = code
        first = args[0] if args else None
        if name == b"UIDVALIDITY" and isinstance(first, int):
            self.uidvalidity = first
        elif name == b"UIDNEXT" and isinstance(first, int):
            self.uidnext = first
        elif name == b"HIGHESTMODSEQ" and isinstance(first, int):
            self.highestmodseq = first
        elif name == b"NOMODSEQ":
            self.highestmodseq = None
        elif name == b"PERMANENTFLAGS":
            self.permanentflags = flags(first)
        elif name == b"READ-ONLY":
            self.readonly = True


class ListEntry(NamedTuple):
    """One LIST response; ``name`` as the server sent it (modified UTF-7 stays encoded)."""

    name: str
    sep: str
    attributes: frozenset[str]  # lower-cased: ``\\noselect``, ``\\haschildren`` ...


def list_entry(u: Untagged) -> ListEntry:
    if not u.literals and (fast := list_line(u.parts[0])) is not None:
        return ListEntry(*fast)  # the probe's parser: the two read a LIST alike
    num, word = u.head()
    atoms = _parse(_records(u, _after(u, word)), "LIST response")
    if num is not None or len(atoms) < 3 or not isinstance(atoms[0], tuple):
        raise ServerProtocolError(f"bad LIST response: {cut(u.text())}")
    attrs, sep, name = atoms[:3]
    return ListEntry(
        _mailbox(name),
        "" if sep is None else _text(sep),
        frozenset(_text(a).lower() for a in attrs),  # type: ignore[union-attr]
    )


def _mailbox(value: Atom) -> str:
    """A mailbox name (an astring: the atom NIL there is the folder named NIL, which imapclient
    reads as nil)."""
    return "NIL" if value is None else _text(value)


def status_items(u: Untagged) -> tuple[str, dict[str, int]]:
    """``* STATUS name (MESSAGES 3 UIDNEXT 9)`` → (name, {"MESSAGES": 3, "UIDNEXT": 9})."""
    if not u.literals and (fast := status_line(u.parts[0])) is not None:
        return fast  # the probe's parser: its stamps and the store's are read alike
    atoms = _parse(_records(u, _after(u, b"STATUS")), "STATUS response")
    if len(atoms) != 2 or not isinstance(atoms[1], tuple) or len(atoms[1]) % 2:
        raise ServerProtocolError(f"bad STATUS response: {cut(u.text())}")
    items = atoms[1]
    out = {}
    for key, value in zip(items[::2], items[1::2], strict=True):
        if isinstance(value, int):
            out[_text(key).upper()] = value
    return _mailbox(atoms[0]), out


def search_ids(u: Untagged) -> list[int]:
    """``* SEARCH 3 5 9`` → [3, 5, 9]."""
    data = u.parts[0][_after(u, b"SEARCH") :]
    if not data.strip():
        return []
    words = data.split()
    if all(w.isdigit() for w in words):
        return [int(w) for w in words]
    from imapclient.exceptions import ProtocolError
    from imapclient.response_parser import parse_message_list

    try:
        return list(parse_message_list([data]))
    except (ProtocolError, ValueError) as e:
        raise ServerProtocolError(f"bad SEARCH response: {cut(u.text())}") from e


# ---- FETCH ------------------------------------------------------------------------------------


class FetchItem(NamedTuple):
    """The small attributes of one FETCH response (a streamed body shows as ``body=None``)."""

    seq: int
    uid: int | None = None
    flags: Flags | None = None
    internal_date: datetime | None = None
    size: int | None = None
    modseq: int | None = None
    body: bytes | None = None  # a body sent as a quoted string instead of a literal


# the common, simple FETCH attributes; anything else (literals, nested lists, odd spacing) goes
# to imapclient
_FAST_ITEM = (
    rb"UID (?P<uid>\d+)|RFC822\.SIZE (?P<size>\d+)|MODSEQ \((?P<modseq>\d+)\)"
    rb'|FLAGS \((?P<flags>[^()"{}\[\]]*)\)|INTERNALDATE "(?P<date>[^"\\]*)"|BODY\[\] NIL'
)
_FAST_ITEMS = re.compile(_FAST_ITEM, re.I)
_ANY_ITEM = re.sub(rb"\?P<\w+>", b"?:", _FAST_ITEM)
_FAST_FETCH = re.compile(
    rb"\* (\d+) FETCH \(((?:%s)(?: (?:%s))*)\)\Z" % (_ANY_ITEM, _ANY_ITEM), re.I
)


# a snapshot's line: "* 7 FETCH (UID 9 FLAGS (\\Seen))", perhaps with a MODSEQ
_SNAPSHOT_LINE = re.compile(
    rb"\* (\d+) FETCH \(UID (\d+) (?:MODSEQ \((\d+)\) )?FLAGS \(([^()\"{}\[\]]*)\)"
    rb"(?: MODSEQ \((\d+)\))?\)\Z"
)


# the end of a fetched message, its streamed body shown as NIL (Dovecot's order of our items)
_BODY_LINE = re.compile(rb'\* (\d+) FETCH \(UID (\d+) INTERNALDATE "([^"\\]*)" BODY\[\] NIL\)\Z')


def fetch_item(u: Untagged) -> FetchItem | None:
    """The attributes of a FETCH response; None when ``u`` is some other response."""
    if not u.literals:
        line = u.parts[0]
        m = _SNAPSHOT_LINE.match(line)
        if m is not None:
            seq, uid, mod1, words, mod2 = m.groups()
            mod = mod1 or mod2
            return FetchItem(
                int(seq), int(uid), _flag_words(words), modseq=int(mod) if mod else None
            )
        m = _BODY_LINE.match(line)
        if m is not None:
            seq, uid, date = m.groups()
            return FetchItem(int(seq), int(uid), internal_date=_internaldate(date))
        m = _FAST_FETCH.match(line)
        if m is not None:
            return _fast_fetch(int(m.group(1)), m.group(2))
    num, word = u.head()
    if num is None or word != b"FETCH":
        return None
    recs = _records(u, 2)
    first = recs[0]
    # "3 FETCH (...)" → "3 (...)", the shape imapclient's parse_fetch_response takes
    i = len(b"%d FETCH " % num)
    if isinstance(first, tuple):
        recs[0] = (b"%d " % num + first[0][i:], first[1])
    else:
        recs[0] = b"%d " % num + first[i:]
    _check_depth(recs, "FETCH response")
    from imapclient.response_parser import parse_fetch_response

    try:
        parsed = parse_fetch_response(recs, normalise_times=False, uid_is_key=False)
    except _parse_errors() as e:
        raise ServerProtocolError(f"cannot parse FETCH response: {cut(u.text())}") from e
    if len(parsed) != 1:
        raise ServerProtocolError(f"bad FETCH response: {cut(u.text())}")
    attrs = next(iter(parsed.values()))
    uid, size, modseq = attrs.get(b"UID"), attrs.get(b"RFC822.SIZE"), attrs.get(b"MODSEQ")
    date, body = attrs.get(b"INTERNALDATE"), attrs.get(b"BODY[]")
    return FetchItem(
        num,
        uid if isinstance(uid, int) else None,
        flags(attrs[b"FLAGS"]) if b"FLAGS" in attrs else None,
        _plain_tz(date) if isinstance(date, datetime) else None,
        size if isinstance(size, int) else None,
        modseq[0] if isinstance(modseq, tuple) and isinstance(modseq[0], int) else None,
        body if isinstance(body, bytes) else None,
    )


# RFC 3501 date-time, a fixed format: "17-Jul-1996 02:44:25 -0700" (the day may be space-padded)
_DATE_TIME = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([-+]\d{4})\Z")
_MONTHS = {
    m: i for i, m in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}


def _internaldate(value: bytes) -> datetime | None:
    """An INTERNALDATE; the fixed RFC format directly (it comes once per fetched message),
    anything else through imapclient."""
    m = _DATE_TIME.match(value)
    month = _MONTHS.get(m.group(2).lower()) if m else None
    if m is None or month is None:
        from imapclient.datetime_util import parse_to_datetime

        try:
            return _plain_tz(parse_to_datetime(value, normalise=False))
        except ValueError:
            return None
    d, _, y, hh, mm, ss, tz = m.groups()
    try:
        return datetime(int(y), month, int(d), int(hh), int(mm), int(ss), tzinfo=_zone(tz))
    except ValueError:
        return None


@functools.lru_cache(maxsize=64)
def _zone(offset: bytes) -> timezone:
    minutes = int(offset[1:3]) * 60 + int(offset[3:5])
    return timezone(timedelta(minutes=-minutes if offset[:1] == b"-" else minutes))


def _plain_tz(dt: datetime) -> datetime:
    """imapclient's FixedOffset swapped for the stdlib's ``timezone``."""
    offset = dt.utcoffset()
    return dt if offset is None else dt.replace(tzinfo=timezone(offset))


def _fast_fetch(seq: int, items: bytes) -> FetchItem:
    uid = size = modseq = None
    fl: Flags | None = None
    date: datetime | None = None
    for it in _FAST_ITEMS.finditer(items):
        kind = it.lastgroup
        value = it.group(kind) if kind else b""
        if kind == "uid":
            uid = int(value)
        elif kind == "flags":
            fl = _flag_words(value)
        elif kind == "date":
            date = _internaldate(value)
        elif kind == "size":
            size = int(value)
        elif kind == "modseq":
            modseq = int(value)
    return FetchItem(seq, uid, fl, date, size, modseq)


# ---- names and dates --------------------------------------------------------------------------

# modified UTF-7 (RFC 3501 5.1.3): printable ASCII stands for itself ("&" as "&-"); any other run
# is "&", its UTF-16BE in base64 with "," for "/" and no padding, then "-"
_SHIFT_OUT = re.compile(r"&|[^\x20-\x7e]+")
_SHIFT_IN = re.compile(r"&([^-]*)-")


def _shift_out(m: re.Match[str]) -> str:
    run = m.group()
    if run == "&":
        return "&-"
    b64 = binascii.b2a_base64(run.encode("utf-16-be"), newline=False).rstrip(b"=")
    return "&" + b64.replace(b"/", b",").decode("ascii") + "-"


def _shift_in(m: re.Match[str]) -> str:
    b64 = m.group(1)
    if not b64:
        return "&"
    raw = b64.replace(",", "/").encode("ascii")
    return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4)).decode("utf-16-be")


def human_name(name: str) -> str:
    """A folder name as sent by the server (modified UTF-7) decoded for people; a name that is
    not canonical modified UTF-7 (``R&D``, ``&Jjo``) is shown as it is, so that two folders
    never show as one."""
    if "&" not in name:
        return name
    try:
        decoded = _SHIFT_IN.sub(_shift_in, name)
        if utf7_name(decoded) == name:
            return decoded
    except (UnicodeError, ValueError):
        pass
    return name


def utf7_name(name: str) -> str:
    """A folder name in modified UTF-7, as IMAP commands take it."""
    return _SHIFT_OUT.sub(_shift_out, name)


_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def internaldate(dt: datetime) -> bytes:
    """A datetime as an APPEND date-time (naive means local time)."""
    if dt.tzinfo is None:
        dt = dt.astimezone()
    text = dt.strftime(f"%d-{_MONTH_NAMES[dt.month - 1]}-%Y %H:%M:%S %z")
    return b'"' + text.encode("ascii") + b'"'

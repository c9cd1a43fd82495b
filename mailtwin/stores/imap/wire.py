"""IMAP on the wire, without sockets: encode commands, and frame the server's responses.

``Framer`` is fed bytes as they come off the socket and yields events. Message bodies
(``BODY[...]`` literals of FETCH responses) are handed out in chunks as they arrive, so a big
message never sits whole in memory; every other literal is inlined into its response line, and a
line with its inlined literals is capped so a hostile server cannot exhaust memory.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from mailtwin.errors import ServerProtocolError, cut
from mailtwin.model import Frozen, _set

# one response line with its inlined literals: room for a SEARCH of ~500k UIDs, yet bounded
LINE_CAP = 4 * 1024 * 1024
# one streamed message body: far above what mail systems take (Gmail 25 MB, Exchange Online
# 150 MB). Refused as soon as the server announces it, so nothing of it is written anywhere; it
# cannot be skipped without reading it all, so the connection ends there (ServerProtocolError:
# that folder fails). Not the listing's RFC822.SIZE plus slack: the server could lie there too.
BODY_CAP = 1 << 30
MAX_COMMAND = 8000  # keep command lines below the 8 KB many servers accept
QUOTED_MAX = 1024  # longer strings go as literals

# ---- encoding ---------------------------------------------------------------------------------

# RFC 3501 atom-specials: ( ) { SP CTL % * " \ ] ; astrings may contain "]"
_ASTRING_SAFE = re.compile(rb'[^(){ %*"\\\x00-\x1f\x7f-\xff]+\Z')
_QUOTABLE = re.compile(rb"[^\x00\r\n\x80-\xff]*\Z")


class Literal(Frozen):
    """An argument sent as a literal: bytes, or a file read from its current position."""

    __match_args__ = ("data", "size")
    __slots__ = __match_args__
    data: bytes | IO[bytes]
    size: int

    def __init__(self, data: bytes | IO[bytes], size: int) -> None:
        _set(self, "data", data)
        _set(self, "size", size)

    @classmethod
    def of(cls, data: bytes) -> Literal:
        return cls(data, len(data))


Arg = bytes | Literal


class Piece(Frozen):
    """One part of an encoded command: ``text`` first, then ``literal`` (if any).

    ``sync``: wait for the server's "+" between the text and the literal.
    """

    __match_args__ = ("text", "literal", "sync")
    __slots__ = __match_args__
    text: bytes
    literal: Literal | None
    sync: bool

    def __init__(self, text: bytes, literal: Literal | None = None, sync: bool = False) -> None:
        _set(self, "text", text)
        _set(self, "literal", literal)
        _set(self, "sync", sync)


def quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def astring(value: str | bytes) -> Arg:
    """An astring argument: atom when safe, quoted when possible, else a literal."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if raw and _ASTRING_SAFE.match(raw):
        return raw
    if len(raw) <= QUOTED_MAX and _QUOTABLE.match(raw):
        return quoted(raw)
    return Literal.of(raw)


def string(value: str | bytes) -> Arg:
    """A string argument (quoted or literal; never an atom)."""
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    if len(raw) <= QUOTED_MAX and _QUOTABLE.match(raw):
        return quoted(raw)
    return Literal.of(raw)


def encode(tag: bytes, args: Sequence[Arg], nonsync_max: int = -1) -> list[Piece]:
    """A command as pieces to send. Literals up to ``nonsync_max`` bytes go non-synchronizing
    (LITERAL+ allows any size, LITERAL- up to 4096; -1 when the server offers neither)."""
    pieces: list[Piece] = []
    text = bytearray(tag)
    for arg in args:
        text += b" "
        if isinstance(arg, bytes):
            text += arg
            continue
        plus = arg.size <= nonsync_max
        text += b"{%d%s}\r\n" % (arg.size, b"+" if plus else b"")
        pieces.append(Piece(bytes(text), arg, sync=not plus))
        text = bytearray()
    text += b"\r\n"
    pieces.append(Piece(bytes(text)))
    return pieces


def uid_set(ids: Iterable[int]) -> bytes:
    """Compressed UID set: ``1:5,7,9:12``. Needs at least one id."""
    return b",".join(_runs(sorted(set(ids))))


def _runs(ids: Sequence[int]) -> Iterator[bytes]:
    if not ids:
        raise ValueError("empty UID set")
    start = prev = ids[0]
    for uid in ids[1:]:
        if uid != prev + 1:
            yield b"%d" % start if start == prev else b"%d:%d" % (start, prev)
            start = uid
        prev = uid
    yield b"%d" % start if start == prev else b"%d:%d" % (start, prev)


def uid_sets(
    ids: Iterable[int], max_bytes: int = MAX_COMMAND - 200, max_count: int | None = None
) -> list[bytes]:
    """Compressed UID sets covering ``ids``, each at most ``max_bytes`` long and ``max_count``
    ids; an empty input gives no sets."""
    ordered = sorted(set(ids))
    out: list[bytes] = []
    cur: list[bytes] = []
    size = count = 0
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            if max_count is not None and count + (j + 1 - i) + 1 > max_count:
                break
            j += 1
        run = b"%d" % ordered[i] if i == j else b"%d:%d" % (ordered[i], ordered[j])
        n = j - i + 1
        if cur and (
            size + 1 + len(run) > max_bytes or (max_count is not None and count + n > max_count)
        ):
            out.append(b",".join(cur))
            cur, size, count = [], 0, 0
        cur.append(run)
        size += len(run) + (1 if size else 0)
        count += n
        i = j + 1
    if cur:
        out.append(b",".join(cur))
    return out


# ---- framing ----------------------------------------------------------------------------------


class Tagged(Frozen):
    """A command's completion: its tag, OK / NO / BAD, and the rest (response code and text)."""

    __match_args__ = ("tag", "status", "text")
    __slots__ = __match_args__
    tag: bytes
    status: str
    text: bytes

    def __init__(self, tag: bytes, status: str, text: bytes) -> None:
        _set(self, "tag", tag)
        _set(self, "status", status)
        _set(self, "text", text)


class Continuation(Frozen):
    __match_args__ = ("text",)
    __slots__ = __match_args__
    text: bytes

    def __init__(self, text: bytes) -> None:
        _set(self, "text", text)


class Untagged(Frozen):
    """One untagged response (``* ...``). ``parts`` is the line split at each inlined literal:
    ``parts[i]`` ends with its ``{n}`` marker and ``literals[i]`` follows it. A streamed body's
    literal is not kept: its marker is replaced by ``NIL``."""

    __match_args__ = ("parts", "literals")
    __slots__ = __match_args__
    parts: tuple[bytes, ...]
    literals: tuple[bytes, ...]

    def __init__(self, parts: tuple[bytes, ...], literals: tuple[bytes, ...] = ()) -> None:
        _set(self, "parts", parts)
        _set(self, "literals", literals)

    def head(self) -> tuple[int | None, bytes]:
        """The response's number (``* 3 EXISTS``) if any and its upper-cased keyword."""
        words = self.parts[0].split(b" ", 3)
        if len(words) > 2 and words[1].isdigit():
            return int(words[1]), words[2].upper()
        return None, words[1].upper() if len(words) > 1 else b""

    def text(self) -> bytes:
        """The line's text for messages and logs (inlined literals shown by their markers)."""
        return b"".join(self.parts)


class BodyStart(Frozen):
    """A FETCH response's body section begins: message ``seq``, ``size`` bytes follow."""

    __match_args__ = ("seq", "section", "size")
    __slots__ = __match_args__
    seq: int
    section: bytes
    size: int

    def __init__(self, seq: int, section: bytes, size: int) -> None:
        _set(self, "seq", seq)
        _set(self, "section", section)
        _set(self, "size", size)


class BodyChunk(Frozen):
    __match_args__ = ("data",)
    __slots__ = __match_args__
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set(self, "data", data)


class BodyEnd(Frozen):
    __slots__ = ()


Event = Tagged | Continuation | Untagged | BodyStart | BodyChunk | BodyEnd

BODY_END = BodyEnd()
_LITERAL_END = re.compile(rb"~?\{(\d{1,19})\}\Z")
_FETCH_HEAD = re.compile(rb"\* (\d+) FETCH ", re.I)
_STATUS_HEAD = re.compile(rb"\* (?:OK|NO|BAD|BYE|PREAUTH)\b", re.I)
_BODY_ITEM = re.compile(
    rb"((?:BODY|BINARY)\[[^\]]*\](?:<\d+>)?|RFC822(?:\.TEXT|\.HEADER)?) \Z", re.I
)


class Framer:
    """Sans-IO response framer: ``receive_data(bytes)``, then ``next_event()`` until None."""

    def __init__(self, line_cap: int = LINE_CAP, body_cap: int = BODY_CAP) -> None:
        self._cap = line_cap
        self._body_cap = body_cap
        self._inq: deque[bytes] = deque()  # received, not yet looked at
        self._buf = b""  # looked at; consumed up to _pos
        self._pos = 0
        self._scan = 0  # no CRLF in _buf between _pos and here
        self._parts: list[bytes] = []  # the untagged response being assembled
        self._lits: list[bytes] = []
        self._cur = bytearray()  # its current text part
        self._size = 0  # its size so far, with inlined literals
        self._body_left = -1  # bytes of a streamed body still to come; -1: not in a body
        self._lit_need = -1  # size of an inlined literal still to come; -1: none

    def receive_data(self, data: bytes) -> None:
        if data:
            self._inq.append(data)

    @property
    def idle(self) -> bool:
        """Nothing buffered and no response half read (checked before starting TLS)."""
        return (
            not self._inq
            and self._pos == len(self._buf)
            and not self._cur
            and not self._parts
            and self._body_left < 0
        )

    def next_event(self) -> Event | None:
        """The next complete event, or None when more data is needed."""
        while True:
            if self._body_left >= 0:
                return self._body()
            if self._lit_need >= 0:
                lit = self._take(self._lit_need)
                if lit is None:
                    return None
                self._lits.append(lit)
                self._lit_need = -1
            line = self._line()
            if line is None:
                return None
            if not self._cur and not self._parts:
                if line[:2] != b"* ":
                    return _other(line)
                # the common case, a whole line; and status responses, whose text has no literals
                if line[-1:] != b"}" or _STATUS_HEAD.match(line):
                    return Untagged((line,))
            self._cur += line
            self._size += len(line)
            m = None
            if line[-1:] == b"}":
                m = _LITERAL_END.search(self._cur, max(0, len(self._cur) - 24))
            if m is None:
                return self._finish_untagged()
            size = int(m.group(1))
            ev = self._start_body(m.start(), size)
            if ev is not None:
                return ev
            self._size += size
            if self._size > self._cap:
                raise ServerProtocolError(
                    f"server sent a {size}-byte literal in a response longer than allowed: "
                    + cut(bytes(self._cur))
                )
            self._parts.append(bytes(self._cur))
            self._cur.clear()
            self._lit_need = size

    def _start_body(self, marker: int, size: int) -> BodyStart | None:
        """Stream the literal at ``marker`` if it is a FETCH response's body section."""
        head = _FETCH_HEAD.match(self._parts[0] if self._parts else self._cur)
        if head is None:
            return None
        item = _BODY_ITEM.search(self._cur, max(0, marker - 200), marker)
        if item is None:
            return None
        if size > self._body_cap:
            raise ServerProtocolError(
                f"server announced a {size}-byte message, above mailtwin's limit of "
                f"{self._body_cap} bytes per message: " + cut(bytes(self._cur), 100)
            )
        del self._cur[marker:]
        self._cur += b"NIL"
        self._body_left = size
        return BodyStart(int(head.group(1)), item.group(1), size)

    def _finish_untagged(self) -> Untagged:
        self._parts.append(bytes(self._cur))
        ev = Untagged(tuple(self._parts), tuple(self._lits))
        self._parts, self._lits, self._size = [], [], 0
        self._cur.clear()
        return ev

    def _body(self) -> Event | None:
        left = self._body_left
        if left == 0:
            self._body_left = -1
            return BODY_END
        if self._pos == len(self._buf):  # hand out received chunks as they are: no copy
            if not self._inq:
                return None
            self._buf, self._pos, self._scan = self._inq.popleft(), 0, 0
        pos = self._pos
        end = min(len(self._buf), pos + left)
        data = self._buf[pos:end]
        self._pos = self._scan = end
        self._body_left = left - len(data)
        return BodyChunk(data)

    def _take(self, n: int) -> bytes | None:
        """The next ``n`` bytes, once they are all here."""
        while len(self._buf) - self._pos < n:
            if not self._inq:
                return None
            self._pull()
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        self._scan = self._pos
        return data

    def _pull(self) -> None:
        self._scan -= self._pos
        self._buf = self._buf[self._pos :] + self._inq.popleft()
        self._pos = 0

    def _line(self) -> bytes | None:
        """The next line without its CRLF, or None."""
        while True:
            i = self._buf.find(b"\r\n", max(self._scan, self._pos))
            if i >= 0:
                line = self._buf[self._pos : i]
                self._pos = self._scan = i + 2
                return line
            if self._size + len(self._buf) - self._pos > self._cap:
                raise ServerProtocolError(
                    f"server sent a response line longer than {self._cap} bytes: "
                    + cut(self._buf[self._pos : self._pos + 200])
                )
            if not self._inq:
                return None
            self._scan = max(self._pos, len(self._buf) - 1)
            self._pull()


def _other(line: bytes) -> Tagged | Continuation:
    if line[:1] == b"+":
        return Continuation(line[2:] if line[1:2] == b" " else line[1:])
    tag, _, rest = line.partition(b" ")
    status, _, text = rest.partition(b" ")
    word = status.upper()
    if not tag or word not in (b"OK", b"NO", b"BAD"):
        raise ServerProtocolError("server sent a line we cannot understand: " + cut(line))
    return Tagged(tag, word.decode(), text)

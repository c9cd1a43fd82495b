"""wire.py: command encoding, UID sets, and the response framer fed bytes split every way."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtwin.errors import ServerProtocolError
from mailtwin.stores.imap import wire
from mailtwin.stores.imap.wire import (
    BodyChunk,
    BodyEnd,
    BodyStart,
    Continuation,
    Event,
    Framer,
    Literal,
    Piece,
    Tagged,
    Untagged,
)

# ---- encoding ---------------------------------------------------------------------------------


def test_uid_set_compresses_runs() -> None:
    assert wire.uid_set([9, 1, 2, 3, 4, 5, 7, 10, 11, 12, 3]) == b"1:5,7,9:12"
    assert wire.uid_set([42]) == b"42"
    with pytest.raises(ValueError):
        wire.uid_set([])


def _expand(s: bytes) -> list[int]:
    out: list[int] = []
    for item in s.split(b","):
        lo, _, hi = item.partition(b":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@given(
    st.lists(st.integers(1, 5000), max_size=400),
    st.integers(20, 200),
    st.none() | st.integers(1, 50),
)
def test_uid_sets_cover_ids_within_limits(
    ids: list[int], max_bytes: int, max_count: int | None
) -> None:
    sets = wire.uid_sets(ids, max_bytes=max_bytes, max_count=max_count)
    got = [uid for s in sets for uid in _expand(s)]
    assert got == sorted(set(ids))
    for s in sets:
        assert len(s) <= max_bytes
        if max_count is not None:
            assert len(_expand(s)) <= max_count


def test_uid_sets_split_long_sparse_sets_under_8k() -> None:
    sets = wire.uid_sets(range(1, 200_000, 2))
    assert len(sets) > 1
    assert all(len(s) < wire.MAX_COMMAND for s in sets)
    assert wire.uid_sets([]) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("INBOX", b"INBOX"),
        ("Work/Projects", b"Work/Projects"),
        ("a]b", b"a]b"),
        ("Entw&APw-rfe", b"Entw&APw-rfe"),
        ("", b'""'),
        ("with space", b'"with space"'),
        ('q"uote\\', b'"q\\"uote\\\\"'),
        ("a*b%", b'"a*b%"'),
        ("(x)", b'"(x)"'),
        ("{3}", b'"{3}"'),
    ],
)
def test_astring_atom_or_quoted(value: str, expected: bytes) -> None:
    assert wire.astring(value) == expected


@pytest.mark.parametrize(
    "value", ["line\r\nbreak", "ünïcode", "nul\0", "x y" * 700], ids=["crlf", "8bit", "nul", "long"]
)
def test_astring_literal_when_it_cannot_quote(value: str) -> None:
    arg = wire.astring(value)
    assert isinstance(arg, Literal)
    assert arg.data == value.encode() and arg.size == len(value.encode())


def test_string_never_an_atom() -> None:
    assert wire.string("<id@x>") == b'"<id@x>"'


def test_encode_plain_command() -> None:
    assert wire.encode(b"A1", [b"SELECT", b"INBOX"]) == [Piece(b"A1 SELECT INBOX\r\n")]


def test_encode_synchronizing_and_plus_literals() -> None:
    lit = Literal.of(b"hello")
    sync = wire.encode(b"A2", [b"APPEND", b"INBOX", b"(\\Seen)", lit], nonsync_max=-1)
    assert sync == [
        Piece(b"A2 APPEND INBOX (\\Seen) {5}\r\n", lit, sync=True),
        Piece(b"\r\n"),
    ]
    plus = wire.encode(b"A3", [b"APPEND", b"INBOX", lit, lit], nonsync_max=1 << 62)
    assert plus == [
        Piece(b"A3 APPEND INBOX {5+}\r\n", lit, sync=False),
        Piece(b" {5+}\r\n", lit, sync=False),
        Piece(b"\r\n"),
    ]


def test_encode_literal_minus_limit() -> None:
    small, big = Literal.of(b"x" * 4096), Literal(io.BytesIO(b""), 4097)
    pieces = wire.encode(b"A4", [b"APPEND", b"X", small, big], nonsync_max=4096)
    assert [p.sync for p in pieces] == [False, True, False]
    assert pieces[1].text == b" {4097}\r\n"


# ---- framing ----------------------------------------------------------------------------------

TRANSCRIPT = (
    b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"
    b"* 3 EXISTS\r\n"
    b'* LIST (\\HasNoChildren) "/" {5}\r\nA "b"\r\n'
    b"* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n"
    b'* 2 FETCH (UID 8 INTERNALDATE "01-Jan-2024 10:00:00 +0100" BODY[] {12}\r\n'
    b"line1\nl\r\n}\r\n)\r\n"
    b"* 3 FETCH (BODY[] {0}\r\n UID 9)\r\n"
    b"* 4 FETCH (BODY[HEADER] {4}\r\nH\r\n\r BODY[]<0> {3}\r\nabc UID 10)\r\n"
    b"* 5 FETCH (ENVELOPE (NIL {2}\r\nxy) UID 11)\r\n"
    b"+ go on\r\n"
    b"+\r\n"
    b"A1 NO [TRYCREATE] no such folder\r\n"
    b"A2 OK\r\n"
)

EXPECTED: list[Event] = [
    Untagged((b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready",)),
    Untagged((b"* 3 EXISTS",)),
    Untagged((b'* LIST (\\HasNoChildren) "/" {5}', b""), (b'A "b"',)),
    Untagged((b"* 1 FETCH (UID 7 FLAGS (\\Seen))",)),
    BodyStart(2, b"BODY[]", 12),
    BodyChunk(b"line1\nl\r\n}\r\n"),
    BodyEnd(),
    Untagged((b'* 2 FETCH (UID 8 INTERNALDATE "01-Jan-2024 10:00:00 +0100" BODY[] NIL)',)),
    BodyStart(3, b"BODY[]", 0),
    BodyEnd(),
    Untagged((b"* 3 FETCH (BODY[] NIL UID 9)",)),
    BodyStart(4, b"BODY[HEADER]", 4),
    BodyChunk(b"H\r\n\r"),
    BodyEnd(),
    BodyStart(4, b"BODY[]<0>", 3),
    BodyChunk(b"abc"),
    BodyEnd(),
    Untagged((b"* 4 FETCH (BODY[HEADER] NIL BODY[]<0> NIL UID 10)",)),
    Untagged((b"* 5 FETCH (ENVELOPE (NIL {2}", b") UID 11)"), (b"xy",)),
    Continuation(b"go on"),
    Continuation(b""),
    Tagged(b"A1", "NO", b"[TRYCREATE] no such folder"),
    Tagged(b"A2", "OK", b""),
]


def drain(f: Framer) -> list[Event]:
    out = []
    while (ev := f.next_event()) is not None:
        out.append(ev)
    return out


def merged(events: list[Event]) -> list[Event]:
    """Body chunks joined: how a body is cut depends on how the bytes arrived."""
    out: list[Event] = []
    for ev in events:
        if isinstance(ev, BodyChunk) and out and isinstance(out[-1], BodyChunk):
            out[-1] = BodyChunk(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


def feed(pieces: list[bytes]) -> list[Event]:
    f = Framer()
    events = []
    for p in pieces:
        f.receive_data(p)
        events += drain(f)
    assert f.idle
    return merged(events)


def test_whole_transcript() -> None:
    assert feed([TRANSCRIPT]) == EXPECTED


def test_split_at_every_position() -> None:
    for i in range(len(TRANSCRIPT) + 1):
        assert feed([TRANSCRIPT[:i], TRANSCRIPT[i:]]) == EXPECTED, i


def test_byte_at_a_time() -> None:
    assert feed([TRANSCRIPT[i : i + 1] for i in range(len(TRANSCRIPT))]) == EXPECTED


@given(st.lists(st.integers(0, len(TRANSCRIPT)), max_size=12))
def test_split_anywhere(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(TRANSCRIPT)]
    assert feed([TRANSCRIPT[a:b] for a, b in itertools.pairwise(bounds)]) == EXPECTED


def test_body_chunks_are_handed_out_as_received() -> None:
    """A chunk wholly inside a body is passed on as the very object received: no copy."""
    f = Framer()
    f.receive_data(b"* 1 FETCH (BODY[] {300000}\r\n")
    assert f.next_event() == BodyStart(1, b"BODY[]", 300000)
    assert f.next_event() is None
    chunks = [bytes([65 + i]) * 100000 for i in range(3)]
    for c in chunks:
        f.receive_data(c)
        ev = f.next_event()
        assert isinstance(ev, BodyChunk) and ev.data is c
    f.receive_data(b" UID 5)\r\n")
    assert f.next_event() == BodyEnd()
    assert f.next_event() == Untagged((b"* 1 FETCH (BODY[] NIL UID 5)",))


def test_huge_declared_body_is_streamed_not_allocated() -> None:
    f = Framer(body_cap=1 << 62)
    f.receive_data(b"* 1 FETCH (BODY[] {99999999999999}\r\nabc")
    assert drain(f) == [BodyStart(1, b"BODY[]", 99999999999999), BodyChunk(b"abc")]


def test_body_over_the_cap_is_refused_when_announced() -> None:
    f = Framer()
    f.receive_data(b"* 1 FETCH (BODY[] {%d}\r\nabc" % (wire.BODY_CAP + 1))
    with pytest.raises(ServerProtocolError, match="limit of 1073741824 bytes per message"):
        f.next_event()
    f = Framer()
    f.receive_data(b"* 1 FETCH (BODY[] {%d}\r\nabc" % wire.BODY_CAP)
    assert f.next_event() == BodyStart(1, b"BODY[]", wire.BODY_CAP)


def test_literal8_body_is_streamed() -> None:
    f = Framer()
    f.receive_data(b"* 1 FETCH (BINARY[] ~{2}\r\n\0\1 UID 3)\r\n")
    assert drain(f) == [
        BodyStart(1, b"BINARY[]", 2),
        BodyChunk(b"\0\1"),
        BodyEnd(),
        Untagged((b"* 1 FETCH (BINARY[] NIL UID 3)",)),
    ]


def test_inlined_literal_over_the_cap_fails_before_reading_it() -> None:
    f = Framer(line_cap=1000)
    f.receive_data(b'* LIST () "/" {5000}\r\n')
    with pytest.raises(ServerProtocolError, match="5000-byte literal"):
        f.next_event()


def test_many_literals_add_up_to_the_cap() -> None:
    f = Framer(line_cap=1000)
    f.receive_data(b"* 1 FETCH (ENVELOPE (" + b"{100}\r\n" + b"x" * 100)
    for _ in range(20):
        f.receive_data(b" {100}\r\n" + b"y" * 100)
    with pytest.raises(ServerProtocolError):
        drain(f)


def test_endless_line_fails_at_the_cap() -> None:
    f = Framer(line_cap=1000)
    with pytest.raises(ServerProtocolError, match="longer than 1000"):
        for _ in range(100):
            f.receive_data(b"* OK " + b"x" * 100)
            f.next_event()


def test_many_small_literals_in_one_line() -> None:
    """No recursion per literal: a line may hold thousands."""
    n = 5000
    f = Framer()
    f.receive_data(b"* 1 FETCH (X (" + b"".join(b"{1}\r\n%d " % (i % 10) for i in range(n)))
    f.receive_data(b"))\r\n")
    (ev,) = drain(f)
    assert isinstance(ev, Untagged) and len(ev.literals) == n


@pytest.mark.parametrize("line", [b"garbage\r\n", b"A1 MAYBE fine\r\n", b"*\r\n", b"\r\n"])
def test_garbage_is_a_server_protocol_error(line: bytes) -> None:
    f = Framer()
    f.receive_data(line)
    with pytest.raises(ServerProtocolError):
        f.next_event()


def test_status_text_ending_like_a_literal_is_text() -> None:
    f = Framer()
    f.receive_data(b"* OK [ALERT] quota at {80}\r\nA1 OK done\r\n")
    assert drain(f) == [
        Untagged((b"* OK [ALERT] quota at {80}",)),
        Tagged(b"A1", "OK", b"done"),
    ]


def test_untagged_head() -> None:
    assert Untagged((b"* 12 EXISTS",)).head() == (12, b"EXISTS")
    assert Untagged((b"* 1 fetch (UID 1)",)).head() == (1, b"FETCH")
    assert Untagged((b"* ok [X] y",)).head() == (None, b"OK")
    assert Untagged((b"* BYE",)).head() == (None, b"BYE")


def test_idle_only_between_responses() -> None:
    f = Framer()
    states = [f.idle]
    f.receive_data(b"* 1 FETCH (BODY[] {3}\r\nab")
    drain(f)
    states.append(f.idle)
    f.receive_data(b"c)\r\n")
    drain(f)
    states.append(f.idle)
    assert states == [True, False, True]

"""A hostile server's bytes through the framer and the parse adapter: only the project's own
errors come out (never IndexError, ValueError, RecursionError ...), and what the framer buffers
stays under its caps however the bytes are split."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from mailtwin.errors import MailtwinError, ServerProtocolError
from mailtwin.stores.imap import parse
from mailtwin.stores.imap.wire import BodyChunk, BodyStart, Framer, Untagged

LINE_CAP = 2048
BODY_CAP = 4096
CHUNK_MAX = 512

# pieces of IMAP responses, to be put together wrongly
TOKENS = [
    b"* ", b"+ ", b"M1 ", b"M2 ", b"OK ", b"NO ", b"BAD ", b"BYE ", b"PREAUTH ", b"1 ", b"7 ",
    b"4294967296 ", b"99999999999999999999 ", b"-1 ", b"FETCH ", b"LIST ", b"LSUB ", b"STATUS ",
    b"SEARCH ", b"EXISTS", b"EXPUNGE", b"FLAGS ", b"CAPABILITY ", b"UID ", b"RFC822.SIZE ",
    b"MODSEQ ", b"INTERNALDATE ", b"BODY[] ", b"BODY[HEADER] ", b"BINARY[1] ", b"BODY[]<0> ",
    b"RFC822 ", b"NIL ", b"(", b")", b"((((", b"))))", b"[", b"]", b"[UIDVALIDITY ", b"[APPENDUID ",
    b"[COPYUID ", b"[PERMANENTFLAGS (", b"\"", b"\\", b"\\Seen ", b"\\Noselect ", b"\"/\" ",
    b"{0}", b"{3}", b"{5}", b"{12}", b"{4097}", b"{5000}", b"{1000000000000}", b"~{4}", b"{}",
    b"{x}", b"\r\n", b"\r", b"\n", b"\x00", b"\xff\xfe", b"&", b"&-", b"&AGE-", b"&Jjo", b"&2D3d-",
    b"INBOX", b"17-Jul-1996 02:44:25 -0700", b"\"32-Foo-1996 99:99:99 +9999\" ", b"3:5,9 ",
    b"1:*", b"*:1 ", b"a" * 300,
]  # fmt: skip

structured = st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join)
raw = st.binary(max_size=3000)
# everything a server may send: broken-but-plausible lines and plain noise, in any mix
stream = st.lists(st.one_of(structured, raw, structured.map(lambda b: b + b"\r\n")), max_size=8)


def _adapters(u: Untagged) -> None:
    """Every parse adapter that could meet this response; each either parses or refuses."""
    for fn in (parse.fetch_item, parse.list_entry, parse.status_items, parse.search_ids):
        with contextlib.suppress(ServerProtocolError):
            fn(u)
    info = parse.SelectInfo()
    with contextlib.suppress(ServerProtocolError):
        info.update(u)
    text = u.parts[0][2:]
    for code_fn in (parse.response_code, parse.appenduid, parse.copyuid, parse.code_capabilities):
        try:
            code_fn(text)
            code_fn(text[text.find(b" ") + 1 :])
        except ServerProtocolError:
            pass
    parse.human_name(text.decode("utf-8", "surrogateescape"))


def _feed(data: bytes, cuts: list[int]) -> None:
    f = Framer(line_cap=LINE_CAP, body_cap=BODY_CAP)
    pos = 0
    for n in [*cuts, len(data)]:
        chunk, pos = data[pos : pos + n], pos + n
        f.receive_data(chunk)
        while True:
            ev = f.next_event()  # may raise: only ServerProtocolError (checked by the caller)
            if ev is None:
                break
            if isinstance(ev, Untagged):
                assert sum(map(len, ev.parts)) + sum(map(len, ev.literals)) <= LINE_CAP + 3
                _adapters(ev)
            elif isinstance(ev, BodyStart):
                assert ev.size <= BODY_CAP
            elif isinstance(ev, BodyChunk):
                assert len(ev.data) <= CHUNK_MAX
        # what waits for more data: one chunk more than a line may hold, at most
        held = len(f._buf) - f._pos + sum(map(len, f._inq)) + len(f._cur) + f._size
        assert held <= 2 * LINE_CAP + 2 * CHUNK_MAX, held
        if pos >= len(data):
            break


@given(stream, st.lists(st.integers(1, CHUNK_MAX), max_size=40))
def test_framer_and_parser_raise_only_our_errors(pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    with contextlib.suppress(MailtwinError):
        _feed(data, cuts)


@given(st.integers(1, 3000), st.sampled_from([b"(", b"((", b"(\\Seen ", b"(NIL "]))
def test_deep_nesting_is_a_protocol_error(depth: int, opener: bytes) -> None:
    u = Untagged((b"* 1 FETCH (UID 1 FLAGS " + opener * depth + b")" * depth + b")",))
    with contextlib.suppress(ServerProtocolError):
        parse.fetch_item(u)
    u = Untagged((b"* LIST (" + opener * depth + b') "/" INBOX',))
    with contextlib.suppress(ServerProtocolError):
        parse.list_entry(u)


def test_huge_body_literal_is_refused_when_announced() -> None:
    f = Framer(body_cap=BODY_CAP)
    f.receive_data(b"* 1 FETCH (UID 5 BODY[] {1000000000000}\r\nFrom: x\r\n")
    try:
        f.next_event()
    except ServerProtocolError as e:
        assert "1000000000000-byte message" in str(e)
    else:
        raise AssertionError("a 10^12-byte body was accepted")


def test_huge_literal_outside_a_body_is_refused() -> None:
    f = Framer(line_cap=LINE_CAP)
    f.receive_data(b'* LIST () "/" {1000000000000}\r\nabc')
    try:
        f.next_event()
    except ServerProtocolError as e:
        assert "1000000000000-byte literal" in str(e)
    else:
        raise AssertionError("a 10^12-byte literal was accepted")


def test_endless_line_is_refused_once_over_the_cap() -> None:
    f = Framer(line_cap=LINE_CAP)
    fed = 0
    try:
        while fed < 10 * LINE_CAP:
            f.receive_data(b"* OK " + b"x" * 500)
            fed += 505
            assert f.next_event() is None
    except ServerProtocolError as e:
        assert "longer than" in str(e)
        assert fed <= LINE_CAP + 1010
    else:
        raise AssertionError("a line without end was buffered whole")

"""parse.py: the imapclient adapter, fed framed responses (bytes in, values out)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtwin.errors import ServerProtocolError
from mailtwin.stores.imap import parse
from mailtwin.stores.imap.parse import FetchItem, ListEntry
from mailtwin.stores.imap.wire import Framer, Untagged


def one(data: bytes) -> Untagged:
    """The one untagged response in ``data`` (streamed bodies skipped)."""
    f = Framer()
    f.receive_data(data)
    out = []
    while (ev := f.next_event()) is not None:
        if isinstance(ev, Untagged):
            out.append(ev)
    (u,) = out
    return u


# ---- FETCH ------------------------------------------------------------------------------------


F = frozenset


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            b"* 1 FETCH (UID 5 FLAGS (\\Seen \\Recent $Junk))",
            FetchItem(1, 5, F({"\\Seen", "$Junk"})),
        ),
        (b"* 2 FETCH (FLAGS () UID 6)", FetchItem(2, 6, F())),
        (
            b"* 3 fetch (uid 7 flags (\\SEEN \\answered))",
            FetchItem(3, 7, F({"\\Seen", "\\Answered"})),
        ),
        (
            b"* 4 FETCH (UID 8 MODSEQ (12) FLAGS (\\Draft))",
            FetchItem(4, 8, F({"\\Draft"}), modseq=12),
        ),
        (b"* 5 FETCH (UID 9 FLAGS () MODSEQ (13))", FetchItem(5, 9, F(), modseq=13)),
        (
            b"* 6 FETCH (FLAGS (\\Seen) RFC822.SIZE 12 UID 10)",
            FetchItem(6, 10, F({"\\Seen"}), size=12),
        ),
        (b"* 7 FETCH (FLAGS (\\Seen))", FetchItem(7, None, F({"\\Seen"}))),
        (b"* 8 FETCH (UID 11 FLAGS (1234 $x))", FetchItem(8, 11, F({"1234", "$x"}))),
        (b"* 9 FETCH (UID 12  FLAGS (a))", FetchItem(9, 12, F({"a"}))),  # odd spacing: imapclient
    ],
)
def test_fetch_flags(line: bytes, expected: FetchItem) -> None:
    assert parse.fetch_item(one(line + b"\r\n")) == expected


@pytest.mark.parametrize(
    "items",
    [
        b"UID 12 FLAGS (\\Seen $a)",
        b"UID 12 MODSEQ (99) FLAGS ()",
        b'UID 3 INTERNALDATE "17-Jul-1996 02:44:25 -0700" BODY[] NIL',
        b'BODY[] NIL INTERNALDATE " 7-Jul-1996 02:44:25 +0530" UID 3 RFC822.SIZE 77',
        b'INTERNALDATE "1-jan-2000 00:00:00 +0000" UID 4 FLAGS (\\Flagged)',
        b'UID 5 INTERNALDATE "31-Feb-2000 00:00:00 +0000"',  # no such day: None either way
    ],
)
def test_fetch_fast_paths_agree_with_imapclient(items: bytes) -> None:
    """The regex fast paths and imapclient agree (a literal item forces imapclient)."""
    fast = parse.fetch_item(one(b"* 9 FETCH (" + items + b")\r\n"))
    slow = parse.fetch_item(one(b"* 9 FETCH (X {1}\r\n. " + items + b")\r\n"))
    assert fast == slow


def test_fetch_with_streamed_body_and_date() -> None:
    data = b'* 3 FETCH (UID 7 BODY[] {4}\r\nabcd INTERNALDATE "17-Jul-1996 02:44:25 -0700")\r\n'
    item = parse.fetch_item(one(data))
    assert item is not None
    assert (item.seq, item.uid, item.body) == (3, 7, None)
    tz = timezone(timedelta(hours=-7))
    assert item.internal_date == datetime(1996, 7, 17, 2, 44, 25, tzinfo=tz)
    assert item.internal_date is not None and type(item.internal_date.tzinfo) is timezone


def test_fetch_with_quoted_body() -> None:
    item = parse.fetch_item(one(b'* 1 FETCH (UID 2 BODY[] "tiny")\r\n'))
    assert item is not None and item.body == b"tiny"


def test_fetch_item_is_none_for_other_responses() -> None:
    assert parse.fetch_item(one(b"* 3 EXISTS\r\n")) is None
    assert parse.fetch_item(one(b"* OK still here\r\n")) is None


def test_fetch_garbage() -> None:
    with pytest.raises(ServerProtocolError):
        parse.fetch_item(one(b"* 1 FETCH (UID 2 FLAGS (\\Seen)\r\n"))


# ---- LIST, STATUS, SEARCH, SELECT -------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'* LIST (\\HasNoChildren) "/" INBOX', ListEntry("INBOX", "/", F({"\\hasnochildren"}))),
        (b'* LIST (\\Noselect) "/" "Work"', ListEntry("Work", "/", F({"\\noselect"}))),
        (b'* LIST () "." "a \\"b\\" \\\\c"', ListEntry('a "b" \\c', ".", F())),
        (b"* LIST () NIL Entw&APw-rfe", ListEntry("Entw&APw-rfe", "", F())),
        (b'* LIST () "/" 2023', ListEntry("2023", "/", F())),
        (b'* LSUB () "/" "x"', ListEntry("x", "/", F())),
        (b'* LIST () "/" {7}\r\nA\r\nB C/', ListEntry("A\r\nB C/", "/", F())),
    ],
)  # fmt: skip
def test_list_entry(line: bytes, expected: ListEntry) -> None:
    assert parse.list_entry(one(line + b"\r\n")) == expected


@pytest.mark.parametrize("line", [b'* LIST (\\X "/" "a"', b"* LIST", b'* LIST "/" x'])
def test_list_garbage(line: bytes) -> None:
    with pytest.raises(ServerProtocolError):
        parse.list_entry(one(line + b"\r\n"))


def test_status_items() -> None:
    u = one(b'* STATUS "Sent Items" (MESSAGES 3 UIDNEXT 9 UIDVALIDITY 77)\r\n')
    assert parse.status_items(u) == ("Sent Items", {"MESSAGES": 3, "UIDNEXT": 9, "UIDVALIDITY": 77})


def test_search_ids() -> None:
    assert parse.search_ids(one(b"* SEARCH 3 5 9\r\n")) == [3, 5, 9]
    assert parse.search_ids(one(b"* SEARCH\r\n")) == []
    assert parse.search_ids(one(b"* SEARCH 4 (MODSEQ 7)\r\n")) == [4]
    with pytest.raises(ServerProtocolError):
        parse.search_ids(one(b"* SEARCH x y\r\n"))


def test_select_info() -> None:
    info = parse.SelectInfo()
    for line in [
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        b"* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited",
        b"* 172 EXISTS",
        b"* 1 RECENT",
        b"* OK [UNSEEN 12] Message 12 is first unseen",
        b"* OK [UIDVALIDITY 3857529045] UIDs valid",
        b"* OK [UIDNEXT 4392] Predicted next UID",
        b"* OK [HIGHESTMODSEQ 715194045007] Highest",
        b"* OK no code here",
    ]:
        info.update(one(line + b"\r\n"))
    info.code(b"[READ-ONLY] EXAMINE completed")
    assert (info.exists, info.uidvalidity, info.uidnext, info.highestmodseq) == (
        172,
        3857529045,
        4392,
        715194045007,
    )
    assert info.flags == {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"}
    assert info.permanentflags == {"\\Deleted", "\\Seen", "\\*"}
    assert info.readonly


# ---- response codes ---------------------------------------------------------------------------


def test_response_codes() -> None:
    assert parse.response_code(b"[TRYCREATE] no") == (b"TRYCREATE", ())
    assert parse.response_code(b"[uidnext 5] x") == (b"UIDNEXT", (5,))
    assert parse.response_code(b"no code") is None
    with pytest.raises(ServerProtocolError):
        parse.response_code(b"[UIDNEXT 5 never closed")


def test_appenduid_and_copyuid() -> None:
    assert parse.appenduid(b"[APPENDUID 38505 3955] APPEND completed") == (38505, [3955])
    assert parse.appenduid(b"[APPENDUID 38505 3955:3957,3960] ok") == (
        38505,
        [3955, 3956, 3957, 3960],
    )
    assert parse.appenduid(b"APPEND completed") is None
    assert parse.appenduid(b"[READ-WRITE] hm") is None
    assert parse.copyuid(b"[COPYUID 38505 304,319:320 3956:3958] Done") == (
        38505,
        [304, 319, 320],
        [3956, 3957, 3958],
    )
    with pytest.raises(ServerProtocolError):
        parse.appenduid(b"[APPENDUID 1 2:x] ok")


def test_capabilities() -> None:
    assert parse.capabilities(b"IMAP4rev1 literal+ AUTH=PLAIN") == {
        "IMAP4REV1",
        "LITERAL+",
        "AUTH=PLAIN",
    }
    assert parse.code_capabilities(b"[CAPABILITY IMAP4rev1 UIDPLUS] Logged in") == frozenset(
        {"IMAP4REV1", "UIDPLUS"}
    )
    assert parse.code_capabilities(b"Logged in") is None


# ---- names and dates --------------------------------------------------------------------------


def test_folder_names_utf7() -> None:
    assert parse.utf7_name("Entwürfe") == "Entw&APw-rfe"
    assert parse.human_name("Entw&APw-rfe") == "Entwürfe"
    assert parse.utf7_name("A&B") == "A&-B"
    assert parse.human_name("plain") == "plain"


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=30))
def test_utf7_round_trip(name: str) -> None:
    encoded = parse.utf7_name(name)
    assert encoded.isascii()
    assert parse.human_name(encoded) == name


def test_internaldate_format_round_trips() -> None:
    dt = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    text = parse.internaldate(dt)
    assert text == b'"03-Feb-2024 04:05:06 +0530"'
    item = parse.fetch_item(one(b"* 1 FETCH (UID 1 INTERNALDATE " + text + b")\r\n"))
    assert item is not None and item.internal_date == dt


# ---- the fast paths and the codecs, held to imapclient's ----------------------------------------

# imapclient is imported on first need only; these tests import it to compare against
from imapclient import imap_utf7  # noqa: E402
from imapclient.datetime_util import datetime_to_INTERNALDATE  # noqa: E402
from imapclient.response_parser import parse_response  # noqa: E402


def _imapclient_human(name: str) -> str:
    """human_name as it was, over imapclient's own codec."""
    try:
        decoded = str(imap_utf7.decode(name.encode("ascii")))
        if bytes(imap_utf7.encode(decoded)) == name.encode("ascii"):
            return decoded
    except (UnicodeError, ValueError, IndexError, TypeError):
        pass
    return name


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=30))
def test_utf7_encoding_is_imapclients(name: str) -> None:
    assert parse.utf7_name(name) == bytes(imap_utf7.encode(name)).decode("ascii")


# names a server may send: mostly what modified UTF-7 is made of, canonical or not
_UTF7ISH = st.text(st.sampled_from("&-,+/=AZaz09 Ab&-.xQ"), max_size=16) | st.text(
    st.characters(exclude_categories=["Cs"]), max_size=8
).map(parse.utf7_name)


@given(_UTF7ISH)
def test_human_name_is_imapclients(name: str) -> None:
    assert parse.human_name(name) == _imapclient_human(name)


@pytest.mark.parametrize(
    "name", ["R&D", "&Jjo", "&Jjo-", "&-", "&AGE-", "&AGEAYQ-", "a&b c-", "&,,,-"]
)
def test_human_name_keeps_what_is_not_canonical(name: str) -> None:
    assert parse.human_name(name) == _imapclient_human(name)


@given(
    st.datetimes(
        min_value=datetime(1000, 1, 1),
        timezones=st.builds(
            lambda m: timezone(timedelta(minutes=m)), st.integers(-23 * 60 - 59, 23 * 60 + 59)
        ),
    )
)
def test_internaldate_is_imapclients(dt: datetime) -> None:
    assert parse.internaldate(dt) == b'"' + datetime_to_INTERNALDATE(dt).encode("ascii") + b'"'


def test_internaldate_of_a_naive_datetime_is_local_time() -> None:
    naive = datetime(2024, 7, 1, 12, 0, 0)
    text = parse.internaldate(naive)
    item = parse.fetch_item(one(b"* 1 FETCH (UID 1 INTERNALDATE " + text + b")\r\n"))
    assert item is not None and item.internal_date is not None
    assert item.internal_date.timestamp() == naive.timestamp()


# response-code arguments, FLAGS lists, SEARCH data: atoms, numbers and one level of parens
_ARG_CHARS = st.sampled_from([*"\\*$:,.-+09az NIL()0123", "NIL", " ", "(", ")", "007"])


@given(st.lists(_ARG_CHARS, max_size=20).map("".join))
def test_simple_args_parse_as_imapclient_does(text: str) -> None:
    raw = text.encode("ascii")
    fast = parse._simple(raw)
    if fast is None:
        return  # left to imapclient
    assert fast == tuple(parse_response([raw]))


def test_simple_args_take_the_common_codes() -> None:
    assert parse._simple(b"APPENDUID 38505 3955:3957") == (b"APPENDUID", 38505, b"3955:3957")
    assert parse._simple(b"(\\Seen \\Answered \\*)") == ((b"\\Seen", b"\\Answered", b"\\*"),)
    assert parse._simple(b"((a))") is None  # nested: imapclient's
    assert parse._simple(b'"quoted"') is None


_NAMES = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12)


def _quote(name: str) -> bytes:
    return b'"' + name.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


@given(_NAMES, st.sampled_from([b'"/"', b'"."', b"NIL", b'"\\\\"']), st.booleans())
def test_list_and_status_fast_paths_agree_with_imapclient(
    name: str, sep: bytes, quoted: bool
) -> None:
    wire_name = _quote(name) if quoted or not name.isalnum() else name.encode()
    line = b"* LIST (\\HasNoChildren \\Marked) " + sep + b" " + wire_name
    atoms = parse_response([line[len(b"* LIST ") :]])
    expected = parse.ListEntry(
        parse._mailbox(atoms[2]),
        "" if atoms[1] is None else parse._text(atoms[1]),
        frozenset(parse._text(a).lower() for a in atoms[0]),
    )
    assert parse.list_entry(one(line + b"\r\n")) == expected
    status = b"* STATUS " + wire_name + b" (MESSAGES 3 UIDNEXT 9 HIGHESTMODSEQ 0)"
    got = parse.status_items(one(status + b"\r\n"))
    satoms = parse_response([status[len(b"* STATUS ") :]])
    assert got == (
        parse._mailbox(satoms[0]),
        {"MESSAGES": 3, "UIDNEXT": 9, "HIGHESTMODSEQ": 0},
    )


def test_a_storable_flag_is_an_atom_after_at_most_one_backslash() -> None:
    """store._FLAG, spelled as the characters an atom allows, against the definition."""
    from mailtwin.stores.imap.store import _FLAG

    def atom_char(c: str) -> bool:
        return "\x21" <= c <= "\x7e" and c not in '(){%*"\\]'

    chars = [chr(n) for n in range(0x300)] + ["\u00e9", "\u2028", "\U0001f600", "\U0010ffff"]
    for c in chars:
        for flag in (c, "\\" + c, "$" + c, c + "x", "\\\\" + c):
            body = flag[1:] if flag.startswith("\\") else flag
            assert bool(_FLAG.match(flag)) == (bool(body) and all(map(atom_char, body))), flag

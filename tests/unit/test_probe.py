"""The probe's own LIST and STATUS readers (no imapclient; the engine's parser takes them as
its fast path) agree with imapclient's parser, and give up (None) rather than guess on
anything else. The connection the probe opens ahead is handed over or dropped, never leaked."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient.response_parser import parse_response

from mailtwin.model import FolderStamp
from mailtwin.stores.imap import parse, probe, wire


def untagged(line: bytes) -> wire.Untagged:
    f = wire.Framer()
    f.receive_data(line + b"\r\n")
    ev = f.next_event()
    assert isinstance(ev, wire.Untagged)
    return ev


def as_sent(name: str) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    return raw if raw.isalnum() else wire.quoted(raw)


names = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="\r\n"),
    min_size=1,
    max_size=40,
)


@given(names, st.sampled_from([b'"/"', b'"."', b"NIL", b'"\\\\"']), st.booleans())
def test_list_lines_read_as_the_parser_reads_them(name: str, sep: bytes, noselect: bool) -> None:
    attrs = b"\\Noselect \\HasChildren" if noselect else b"\\HasNoChildren"
    line = b"* LIST (" + attrs + b") " + sep + b" " + as_sent(name)
    got = probe.list_line(untagged(line).parts[0])
    attrs_, sep_, name_ = parse_response([line[len(b"* LIST ") :]])
    want = (
        parse._mailbox(name_),
        "" if sep_ is None else parse._text(sep_),
        frozenset(parse._text(a).lower() for a in attrs_),
    )
    assert got == want


@given(names, st.lists(st.integers(0, 2**63), min_size=4, max_size=4))
def test_status_lines_read_as_the_parser_reads_them(name: str, values: list[int]) -> None:
    items = b" ".join(
        b"%s %d" % (k.encode(), v) for k, v in zip(probe.STAMP_ITEMS, values, strict=True)
    )
    line = b"* STATUS " + as_sent(name) + b" (" + items + b")"
    got = probe.status_line(untagged(line).parts[0])
    name_, items_ = parse_response([line[len(b"* STATUS ") :]])
    want = dict(zip([parse._text(k) for k in items_[::2]], items_[1::2], strict=True))
    assert got == (parse._mailbox(name_), want)


def test_anything_else_is_left_to_the_engine() -> None:
    for line in [
        b'* LIST (\\HasNoChildren) "/" {5}',  # a literal name
        b'* LIST \\HasNoChildren "/" INBOX',
        b"* STATUS INBOX (UIDNEXT x)",
        b"* STATUS INBOX (UIDNEXT)",
        b'* STATUS "a\\x" (MESSAGES 1)',
    ]:
        assert probe.list_line(line) is None and probe.status_line(line) is None, line
    assert probe.stamp({"UIDVALIDITY": 1, "UIDNEXT": 2, "MESSAGES": 1, "HIGHESTMODSEQ": 0}) == (
        FolderStamp("imap", (1, 2, 1, None))
    )


def test_a_folder_named_nil_is_read_alike() -> None:
    # NIL where a mailbox name stands is the folder named NIL (an astring), not nil
    line = b"* STATUS NIL (UIDVALIDITY 1 UIDNEXT 2 MESSAGES 1 HIGHESTMODSEQ 3)"
    assert probe.status_line(untagged(line).parts[0]) == parse.status_items(untagged(line))
    assert parse.status_items(untagged(line))[0] == "NIL"
    line = b'* LIST (\\HasNoChildren) "/" NIL'
    want = parse.list_entry(untagged(line))
    assert probe.list_line(untagged(line).parts[0]) == (want.name, want.sep, want.attributes)
    assert want.name == "NIL"


# ---- the connection opened ahead ----------------------------------------------------------------


def _login(port: int) -> probe.Login:
    return probe.Login("127.0.0.1", port, "u", None, ("PLAIN",), "", 5.0, None, False)  # type: ignore[arg-type]


def test_a_dial_dropped_before_its_greeting_closes_once_it_connects() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        dial = probe.Dial(_login(server.getsockname()[1]))
        conn, _ = server.accept()
        with conn:
            dial.close()  # the Maildir changed: dropped while the thread waits for the greeting
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n")
            conn.settimeout(5)
            assert conn.recv(100) == b""  # closed without a word: no login
        dial._thread.join(5)
        assert not dial._thread.is_alive()


def test_a_dial_hands_over_its_connection_past_the_greeting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        dial = probe.Dial(_login(server.getsockname()[1]))
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n")
            s = dial.session()
            assert s.caps is not None and "SASL-IR" in s.caps
            dial.close()  # after the hand-over: the session is the caller's, left open
            s.sock.sendall(b"p1 NOOP\r\n")
            assert conn.recv(100) == b"p1 NOOP\r\n"
            s.sock.close()


def test_a_dial_that_failed_tells_its_error_and_the_look_gives_up() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        login = _login(server.getsockname()[1])
        for attempt in range(2):
            dial = probe.Dial(login)
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"* BYE too busy\r\n")
                if attempt == 0:
                    with pytest.raises(probe.GiveUp, match="greeting"):
                        dial.session()
                else:
                    assert probe.look(login, dial) is None  # the engine tries, and says why

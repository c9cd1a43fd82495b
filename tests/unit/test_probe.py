"""The probe's own LIST and STATUS readers (no imapclient) agree with the engine's parser, and
give up (None) rather than guess on anything else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
    want = parse.list_entry(untagged(line))
    assert got == (want.name, want.sep, want.attributes)


@given(names, st.lists(st.integers(0, 2**63), min_size=4, max_size=4))
def test_status_lines_read_as_the_parser_reads_them(name: str, values: list[int]) -> None:
    items = b" ".join(
        b"%s %d" % (k.encode(), v) for k, v in zip(probe.STAMP_ITEMS, values, strict=True)
    )
    line = b"* STATUS " + as_sent(name) + b" (" + items + b")"
    got = probe.status_line(untagged(line).parts[0])
    assert got == parse.status_items(untagged(line))


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

"""Line-end converters and content keys on streams: any split into chunks gives the bytes and the
CRLF size of the one-shot conversion."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtwin.content import CrlfToLf, KeyBuilder, LfToCrlf, content_key, key_of, to_crlf

# bytes rich in line ends: CR, LF, CRLF, CR CR LF, and a little text between them
_PIECES = st.sampled_from([b"\r", b"\n", b"\r\n", b"\r\r\n", b"\n\r", b"a", b"xy ", b": "])
_DATA = st.lists(_PIECES, max_size=60).map(b"".join)


def _crlf_size(data: bytes) -> int:
    """Size with every bare LF counted as CRLF (the definition, written another way)."""
    return len(data) + sum(1 for i, c in enumerate(data) if c == 10 and data[i - 1 : i] != b"\r")


@st.composite
def _split(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = draw(_DATA)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(_split())
def test_crlf_to_lf_any_split(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    conv = CrlfToLf()
    out = b"".join(conv.feed(c) for c in chunks) + conv.flush()
    assert out == data.replace(b"\r\n", b"\n")
    assert conv.crlf_size == _crlf_size(data)


@given(_split())
def test_lf_to_crlf_any_split(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    conv = LfToCrlf()
    out = b"".join(conv.feed(c) for c in chunks)
    assert out == to_crlf(data)
    assert len(out) == _crlf_size(data)


@given(_split())
def test_key_builder_any_split(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    whole = KeyBuilder()
    whole.feed(data)
    fed = KeyBuilder()
    seen = KeyBuilder()  # header only; the size from a converter
    conv = CrlfToLf()
    for c in chunks:
        fed.feed(c)
        seen.see_header(c)
        conv.feed(c)
    conv.flush()
    assert fed.crlf_size == whole.crlf_size == _crlf_size(data)
    assert fed.key() == whole.key() == seen.key(conv.crlf_size)


@pytest.mark.parametrize(
    ("chunks", "lf"),
    [
        ([b"a\r", b"\nb"], b"a\nb"),  # CRLF split between chunks
        ([b"a\rb\r\n"], b"a\rb\n"),  # a lone CR stays
        ([b"a\r", b"b"], b"a\rb"),  # a lone CR at a chunk's end
        ([b"a\r\n", b"b"], b"a\nb"),  # a final line without EOL
        ([b"a\r"], b"a\r"),  # the message ends in a lone CR
        ([b"\r", b"\r", b"\n"], b"\r\n"),
        ([b"a\r\nb\nc\r\n"], b"a\nb\nc\n"),  # a bare LF among CRLFs
        ([b"a\nb\n"], b"a\nb\n"),  # LF only: as it is
        ([b"a\r\n\r\n" * 50], b"a\n\n" * 50),  # CRLF only, the usual case
    ],
)
def test_crlf_to_lf_edges(chunks: list[bytes], lf: bytes) -> None:
    conv = CrlfToLf()
    assert b"".join(conv.feed(c) for c in chunks) + conv.flush() == lf
    assert conv.crlf_size == _crlf_size(b"".join(chunks))


@pytest.mark.parametrize(
    ("chunks", "crlf"),
    [
        ([b"a\n", b"b\n"], b"a\r\nb\r\n"),  # LF only
        ([b"a\r\n", b"b\r\n"], b"a\r\nb\r\n"),  # CRLF already: as is
        ([b"a\r", b"\nb\n"], b"a\r\nb\r\n"),  # CRLF split, then a bare LF
        ([b"a\r", b"\n"], b"a\r\n"),  # CRLF split, nothing else
        ([b"a\r\nb\n"], b"a\r\nb\r\n"),  # mixed
        ([b"a\rb"], b"a\rb"),  # a lone CR stays
    ],
)
def test_lf_to_crlf_edges(chunks: list[bytes], crlf: bytes) -> None:
    conv = LfToCrlf()
    assert b"".join(conv.feed(c) for c in chunks) == crlf


def test_lf_only_passthrough_is_the_same_object() -> None:
    """LF input into a Maildir is written as it came."""
    chunk = b"Subject: x\n\nbody\n" * 100
    assert CrlfToLf().feed(chunk) is chunk


def test_crlf_passthrough_is_the_same_object() -> None:
    """CRLF input (IMAP → IMAP) is handed on without a copy."""
    chunk = b"Subject: x\r\n\r\nbody\r\n" * 100
    assert LfToCrlf().feed(chunk) is chunk


def test_header_split_across_chunks() -> None:
    """The blank line ending the header may straddle chunks; the body never joins the header."""
    msg = b"Message-ID: <a@b>\r\nSubject: s\r\n\r\nMessage-ID: <not@this>\r\n"
    for i in range(len(msg) + 1):
        kb = KeyBuilder()
        kb.see_header(msg[:i])
        kb.see_header(msg[i:])
        assert kb.key(len(msg)) == key_of(b"Message-ID: <a@b>\r\nSubject: s\r\n\r\n", len(msg))
        assert kb.key(len(msg)) == content_key(msg)

"""Content keys and line-end handling, computed on streams without re-serializing a message.

A content key is what lets two copies of one message find each other again (after a crash, a lost
state or a UIDVALIDITY change): the Message-ID plus the size the message has with CRLF line ends,
so an IMAP copy (CRLF) and its Maildir copy (LF) agree. Without a Message-ID, a hash of the header
(with CRLF line ends) stands in for it.
"""

from __future__ import annotations

import hashlib
import re

from mailtwin.model import ContentKey

HEADER_CAP = 256 * 1024  # a header longer than this is hashed only this far
_MSGID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


class KeyBuilder:
    """Fed a message's bytes in chunks (any line ends); gives its content key and CRLF size."""

    __slots__ = ("_done_header", "_header", "_last_cr", "crlf_size", "size")

    def __init__(self) -> None:
        self._header = bytearray()
        self._done_header = False
        self._last_cr = False
        self.size = 0
        self.crlf_size = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        lfs = chunk.count(b"\n")
        crlfs = chunk.count(b"\r\n") + (1 if self._last_cr and chunk[0:1] == b"\n" else 0)
        self.crlf_size += len(chunk) + (lfs - crlfs)
        self._last_cr = chunk[-1:] == b"\r"
        if not self._done_header:
            self._header += chunk
            end = _header_end(self._header)
            if end is not None:
                del self._header[end:]
                self._done_header = True
            elif len(self._header) > HEADER_CAP:
                del self._header[HEADER_CAP:]
                self._done_header = True

    def key(self) -> ContentKey:
        return key_of(bytes(self._header), self.crlf_size)


def key_of(header: bytes, crlf_size: int) -> ContentKey:
    """The key of a message from its header (up to and with the blank line) and CRLF size."""
    mid = message_id(header)
    if mid:
        return f"{mid} {crlf_size}"
    digest = hashlib.sha256(to_crlf(header[:HEADER_CAP])).hexdigest()[:32]
    return f"#{digest} {crlf_size}"


def message_id(header: bytes) -> str | None:
    """The Message-ID header's value, white space folded; None when there is none."""
    m = _MSGID.search(header)
    if m:
        mid = b" ".join(m.group(1).split()).strip()
        if mid:
            return mid.decode("utf-8", "replace")
    return None


def _header_end(buf: bytearray) -> int | None:
    """Index just after the blank line ending the header, or None if not seen yet."""
    best: int | None = None
    for sep in (b"\r\n\r\n", b"\n\n", b"\n\r\n"):
        i = buf.find(sep)
        if i >= 0 and (best is None or i + len(sep) < best):
            best = i + len(sep)
    return best


def content_key(data: bytes) -> ContentKey:
    kb = KeyBuilder()
    kb.feed(data)
    return kb.key()


def to_crlf(data: bytes) -> bytes:
    """Bare LF → CRLF; existing CRLF kept (never doubled)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class CrlfToLf:
    """Streaming CRLF → LF; a lone CR (not before LF) is kept as it is."""

    __slots__ = ("_pending_cr",)

    def __init__(self) -> None:
        self._pending_cr = False

    def feed(self, chunk: bytes) -> bytes:
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk.endswith(b"\r"):
            self._pending_cr = True
            chunk = chunk[:-1]
        return chunk.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        if self._pending_cr:
            self._pending_cr = False
            return b"\r"
        return b""


class LfToCrlf:
    """Streaming bare LF → CRLF; existing CRLF kept."""

    __slots__ = ("_last_cr",)

    def __init__(self) -> None:
        self._last_cr = False

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        out = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self._last_cr and chunk[0:1] == b"\n":
            out = out[1:]  # the CR was sent with the previous chunk
        self._last_cr = chunk[-1:] == b"\r"
        return out

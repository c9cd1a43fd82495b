"""Content keys and line-end handling, computed on streams without re-serializing a message.

A content key is what lets two copies of one message find each other again (after a crash, a lost
state or a UIDVALIDITY change): the Message-ID plus the size the message has with CRLF line ends,
so an IMAP copy (CRLF) and its Maildir copy (LF) agree. Without a Message-ID, a hash of the header
(with CRLF line ends) stands in for it.
"""

from __future__ import annotations

import re

from mailtwin.model import ContentKey

HEADER_CAP = 256 * 1024  # a header longer than this is hashed only this far
_MSGID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


class KeyBuilder:
    """Fed a message's bytes in chunks (any line ends); gives its content key and CRLF size.

    A writer that converts line ends already knows the CRLF size from its converter: it gives
    only the header to ``see_header`` (until ``header_done``) and the size to ``key``."""

    __slots__ = ("_header", "_last_cr", "crlf_size", "header_done")

    def __init__(self) -> None:
        self._header = bytearray()
        self.header_done = False
        self._last_cr = False
        self.crlf_size = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        lfs = chunk.count(b"\n")
        # a CRLF split between chunks counts once; no CR at all (a Maildir file) is the usual case
        crlfs = (1 if self._last_cr and chunk[0:1] == b"\n" else 0) + (
            chunk.count(b"\r\n") if b"\r" in chunk else 0
        )
        self.crlf_size += len(chunk) + (lfs - crlfs)
        self._last_cr = chunk[-1:] == b"\r"
        if not self.header_done:
            self.see_header(chunk)

    def see_header(self, chunk: bytes) -> None:
        """Take the next chunk of the message for its header (the size is counted elsewhere)."""
        if self.header_done:
            return
        if not self._header:  # the usual case, the whole header in the first chunk: copy just it
            end = _header_end(chunk)
            if end is not None:
                self._header += memoryview(chunk)[:end]
                self.header_done = True
                return
        start = max(0, len(self._header) - 3)  # a blank line may straddle the chunks
        self._header += chunk
        end = _header_end(self._header, start)
        if end is not None:
            del self._header[end:]
            self.header_done = True
        elif len(self._header) > HEADER_CAP:
            del self._header[HEADER_CAP:]
            self.header_done = True

    def key(self, crlf_size: int | None = None) -> ContentKey:
        """The key; ``crlf_size`` where the caller counted it, else what ``feed`` counted."""
        return key_of(bytes(self._header), self.crlf_size if crlf_size is None else crlf_size)


def key_of(header: bytes, crlf_size: int) -> ContentKey:
    """The key of a message from its header (up to and with the blank line) and CRLF size."""
    mid = message_id(header)
    if mid:
        return f"{mid} {crlf_size}"
    import hashlib  # here: a no-op run's start-up does not need OpenSSL's hashes

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


def _header_end(buf: bytes | bytearray, start: int = 0) -> int | None:
    """Index just after the blank line ending the header, or None if not seen yet; ``start``:
    no blank line begins before it."""
    best: int | None = None
    for sep in (b"\r\n\r\n", b"\n\n", b"\n\r\n"):
        i = buf.find(sep, start, best)
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


# a CR not followed by LF; every other CR is half a CRLF, and deleting all CRs is then the
# CRLF → LF conversion
_LONE_CR = re.compile(rb"\r(?!\n)")


def _all_crlf(chunk: bytes, no_cr: bytes) -> bool:
    """Whether every line end in ``chunk`` is a CRLF (no lone CR, no bare LF), given ``no_cr``,
    ``chunk`` with its CRs deleted: then putting a CR before each LF gives ``chunk`` again, and
    only then. Two replaces (memchr speed) and a memcmp: less than half of what counting the
    CRLFs costs, and what every chunk from an IMAP server takes."""
    return no_cr.replace(b"\n", b"\r\n") == chunk


class CrlfToLf:
    """Streaming CRLF → LF; a lone CR (not before LF) is kept as it is.

    ``crlf_size`` counts the input's size with CRLF line ends, as content keys do: each LF out
    stands for a CRLF (or a bare LF) in, so it is the output's size plus its LFs."""

    __slots__ = ("_pending_cr", "crlf_size")

    def __init__(self) -> None:
        self._pending_cr = False
        self.crlf_size = 0

    def feed(self, chunk: bytes) -> bytes:
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk[-1:] == b"\r":
            self._pending_cr = True
            chunk = chunk[:-1]
        out = chunk.replace(b"\r", b"")
        if len(out) == len(chunk):  # no CR at all (LF line ends): as it is
            self.crlf_size += len(out) + out.count(b"\n")
            return out
        if _all_crlf(chunk, out):  # the usual case (from IMAP): the CRLF size is the input's
            self.crlf_size += len(chunk)
            return out
        if _LONE_CR.search(chunk) is not None:  # a lone CR stays
            out = chunk.replace(b"\r\n", b"\n")
        self.crlf_size += len(out) + out.count(b"\n")
        return out

    def flush(self) -> bytes:
        if self._pending_cr:
            self._pending_cr = False
            self.crlf_size += 1
            return b"\r"
        return b""


class LfToCrlf:
    """Streaming bare LF → CRLF; existing CRLF kept. The output's size is the CRLF size."""

    __slots__ = ("_last_cr",)

    def __init__(self) -> None:
        self._last_cr = False

    def feed(self, chunk: bytes) -> bytes:
        if not chunk:
            return chunk
        last_cr, self._last_cr = self._last_cr, chunk[-1:] == b"\r"
        if b"\r" not in chunk:  # LF only (from a Maildir): one C-speed pass
            out = chunk.replace(b"\n", b"\r\n")
        elif _all_crlf(chunk, chunk.replace(b"\r", b"")) or (
            chunk.count(b"\n") == chunk.count(b"\r\n")  # CRLF, and lone CRs
        ):
            return chunk  # CRLF already (from IMAP): as is
        else:
            out = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if last_cr and chunk[0:1] == b"\n":
            out = out[1:]  # the CR was sent with the previous chunk
        return out

"""A tiny scripted IMAP server for hostile-server tests: asyncio on 127.0.0.1, in a thread.

By default it is a small, correct server: folders (names as raw bytes, sent as literals so that
any byte can be in them) with messages in memory, and enough of CAPABILITY, AUTHENTICATE PLAIN /
LOGIN, LIST, SELECT / EXAMINE, UID FETCH, UID SEARCH, CREATE, NOOP and LOGOUT for mailtwin to
sync. A test scripts misbehaviour with ``on(command, handler)``: the handler gets the session
and the request, writes what it likes (``s.send``, ``s.stream``) and returns True, or returns
False for the default answer. ``sent_after(command)`` tells how many bytes a handler got out
before the client hung up (a client that buffers without bound would take them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

HOST = "127.0.0.1"
CAPS = b"IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS"
STOP_TIMEOUT = 10.0


@dataclass
class Message:
    uid: int
    body: bytes
    flags: bytes = b""


@dataclass
class Request:
    tag: bytes
    command: str  # upper case; "UID FETCH" for UID commands
    args: list[bytes]  # astrings decoded (quoted unescaped, literals read); lists kept as text
    line: bytes  # the raw line (literals shown by their markers)


@dataclass
class Session:
    server: FakeImap
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    selected: bytes | None = None

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def stream(
        self, head: bytes, total: int, key: str, chunk: int = 64 * 1024, block: bytes = b""
    ) -> None:
        """Send ``head``, then up to ``total`` bytes of filler (``block`` again and again, or
        x's), counting what got out under ``key`` until the client stops reading (then the
        connection is dropped)."""
        await self.send(head)
        block = block or b"x" * chunk
        chunk = len(block)
        sent = 0
        try:
            while sent < total:
                self.writer.write(block)
                await asyncio.wait_for(self.writer.drain(), 5)
                sent += chunk
                self.server.sent[key] = sent
        except (OSError, TimeoutError):
            pass
        self.writer.close()


Handler = Callable[[Session, Request], Awaitable[bool]]


@dataclass
class FakeImap:
    folders: dict[bytes, list[Message]] = field(default_factory=lambda: {b"INBOX": []})
    greeting: bytes = b"* OK [CAPABILITY " + CAPS + b"] fake server ready\r\n"
    uidvalidity: int = 1
    handlers: dict[str, Handler] = field(default_factory=dict)
    sent: dict[str, int] = field(default_factory=dict)  # filled by Session.stream
    commands: list[str] = field(default_factory=list)  # every command received, in order
    port: int = 0

    def on(self, command: str, handler: Handler) -> None:
        self.handlers[command.upper()] = handler

    def sent_after(self, key: str) -> int:
        return self.sent.get(key, 0)

    # ---- running ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[FakeImap]:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        server: asyncio.Server | None = None

        async def start() -> None:
            nonlocal server
            server = await asyncio.start_server(self._serve, HOST, 0, limit=1 << 20)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(start(), loop).result(STOP_TIMEOUT)
        ready.wait(STOP_TIMEOUT)
        try:
            yield self
        finally:

            async def stop() -> None:
                assert server is not None
                server.close()
                for t in asyncio.all_tasks():
                    if t is not asyncio.current_task():
                        t.cancel()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(STOP_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT)
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = Session(self, reader, writer)
        try:
            await s.send(self.greeting)
            while not writer.is_closing():
                req = await _read_request(s)
                if req is None:
                    break
                self.commands.append(req.command)
                handler = self.handlers.get(req.command)
                if handler is not None and await handler(s, req):
                    continue
                if not await self._default(s, req):
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    # ---- the default, correct answers ---------------------------------------------------------
    async def _default(self, s: Session, r: Request) -> bool:
        """Answer ``r``; False when the connection is to end (LOGOUT)."""
        ok = r.tag + b" OK done\r\n"
        c = r.command
        if c == "CAPABILITY":
            await s.send(b"* CAPABILITY " + CAPS + b"\r\n" + ok)
        elif c in ("LOGIN", "AUTHENTICATE"):
            await s.send(r.tag + b" OK [CAPABILITY " + CAPS + b"] logged in\r\n")
        elif c == "LIST":
            out = b"".join(
                b'* LIST () "/" {%d}\r\n%s\r\n' % (len(name), name) for name in self.folders
            )
            await s.send(out + ok)
        elif c in ("SELECT", "EXAMINE"):
            name = r.args[0] if r.args else b""
            if name.upper() == b"INBOX":
                name = b"INBOX"
            if name not in self.folders:
                await s.send(r.tag + b" NO no such folder\r\n")
                return True
            s.selected = name
            msgs = self.folders[name]
            nxt = max((m.uid for m in msgs), default=0) + 1
            await s.send(
                b"* %d EXISTS\r\n* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
                b"* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n"
                b"%s OK [READ-WRITE] selected\r\n" % (len(msgs), self.uidvalidity, nxt, r.tag)
            )
        elif c == "UID FETCH":
            await s.send(self._fetch(s, r) + ok)
        elif c == "UID SEARCH":
            msgs = self.folders.get(s.selected or b"", [])
            await s.send(b"* SEARCH" + b"".join(b" %d" % m.uid for m in msgs) + b"\r\n" + ok)
        elif c == "CREATE":
            self.folders.setdefault(r.args[0] if r.args else b"", [])
            await s.send(ok)
        elif c == "LOGOUT":
            await s.send(b"* BYE bye\r\n" + ok)
            return False
        else:  # NOOP, CHECK, CLOSE, UNSELECT, ENABLE ...
            await s.send(ok)
        return True

    def _fetch(self, s: Session, r: Request) -> bytes:
        msgs = self.folders.get(s.selected or b"", [])
        uids = _uid_set(r.args[0] if r.args else b"", max((m.uid for m in msgs), default=0))
        items = r.line.upper()
        out = bytearray()
        for seq, m in enumerate(msgs, 1):
            if m.uid not in uids:
                continue
            attrs = [b"UID %d" % m.uid]
            if b"FLAGS" in items:
                attrs.append(b"FLAGS (%s)" % m.flags)
            if b"RFC822.SIZE" in items:
                attrs.append(b"RFC822.SIZE %d" % len(m.body))
            if b"INTERNALDATE" in items:
                attrs.append(b'INTERNALDATE "01-Jan-2024 10:00:00 +0000"')
            if b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]" in items:
                mid = re.search(rb"(?im)^Message-ID:[^\r\n]*\r\n", m.body)
                part = (mid.group() if mid else b"") + b"\r\n"
                attrs.append(b"BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s" % (len(part), part))
            elif b"BODY.PEEK[HEADER]" in items:
                part = m.body.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                attrs.append(b"BODY[HEADER] {%d}\r\n%s" % (len(part), part))
            elif b"BODY.PEEK[]" in items:
                attrs.append(b"BODY[] {%d}\r\n%s" % (len(m.body), m.body))
            out += b"* %d FETCH (%s)\r\n" % (seq, b" ".join(attrs))
        return bytes(out)


def _uid_set(text: bytes, top: int) -> set[int]:
    out: set[int] = set()
    for item in text.split(b","):
        lo, _, hi = item.partition(b":")
        a = top if lo == b"*" else int(lo or b"0")
        b = top if hi == b"*" else int(hi or lo or b"0") if hi else a
        out.update(range(min(a, b), max(a, b) + 1))
    return out


_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"|\{(\d+)\+?\}$|(\([^)]*\)|[^\s(]+)')


async def _read_request(s: Session) -> Request | None:
    """One command, its synchronizing literals answered with "+"."""
    line = await s.reader.readline()
    if not line:
        return None
    full = bytearray()
    args: list[bytes] = []
    while True:
        line = line.rstrip(b"\r\n")
        full += line
        lit = re.search(rb"\{(\d+)(\+?)\}$", line)
        for m in _ARG.finditer(line):
            if m.group(1) is not None:
                args.append(re.sub(rb"\\(.)", rb"\1", m.group(1)))
            elif m.group(3) is not None:
                args.append(m.group(3))
        if lit is None:
            break
        if not lit.group(2):
            await s.send(b"+ go on\r\n")
        args.append(await s.reader.readexactly(int(lit.group(1))))
        line = await s.reader.readline()
    tag, *words = args[:3] if args else [b""]
    command = words[0].decode("ascii", "replace").upper() if words else ""
    rest = args[2:]
    if command == "UID" and len(words) > 1:
        command += " " + words[1].decode("ascii", "replace").upper()
        rest = args[3:]
    return Request(tag, command, rest, bytes(full))

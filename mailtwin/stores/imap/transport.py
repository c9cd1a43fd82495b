"""One IMAP connection over asyncio: TLS / STARTTLS, login, capabilities, tags, pipelining.

Commands are sent with ``send`` (several may be in flight) and their completions collected with
``wait``; every untagged response and body chunk read meanwhile goes to the caller's handler. The
wire format lives in wire.py, the parsing of small responses in parse.py.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import NamedTuple

from mailtwin.errors import (
    AuthError,
    ClientProtocolError,
    ConnectionFailed,
    MailtwinError,
    ResponseFlood,
    ServerProtocolError,
    cut,
)
from mailtwin.stores.imap import parse, sasl, tls, wire
from mailtwin.stores.imap.tls import TlsPolicy
from mailtwin.stores.imap.wire import Arg, BodyStart, Continuation, Event, Literal, Tagged, Untagged

READ_SIZE = 256 * 1024
WRITE_BLOCK = 256 * 1024
LOGOUT_TIMEOUT = 5.0
PROBE_TIMEOUT = 10.0  # for the second handshake that reads a refused certificate
SLOW = "the server or the network is slow or down; socktimeout sets how long to wait"

Handler = Callable[[Event], Awaitable[None]]
# what an IDLE waits for: a message arrived, went or changed (RECENT and OK lines are not news)
_CHANGE = re.compile(rb"\* (?:\d+ (?:EXISTS|EXPUNGE|FETCH)\b|VANISHED\b)", re.I)
Debug = Callable[[str], None]


class Done(NamedTuple):
    """A command's completion (OK or NO; BAD raises)."""

    command: str
    status: str
    text: bytes

    @property
    def ok(self) -> bool:
        return self.status == "OK"


class Connection:
    """One IMAP connection. Not safe for concurrent use: callers serialize every send/wait
    sequence whose untagged responses they need (ImapStore holds a lock per connection)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: bool = False,
        starttls: bool = False,
        timeout: float | None = None,
        tls_policy: TlsPolicy | None = None,
        debug: Debug | None = None,
        ignore_caps: frozenset[str] = frozenset(),
    ) -> None:
        self.host, self.port = host, port
        self.where = f"{host}:{port}"
        self._tls, self._starttls, self._timeout = tls, starttls, timeout
        self._policy = tls_policy or TlsPolicy()
        self._verify = True  # False only for the probe that reads a refused certificate
        self._debug = debug
        self._ignore = frozenset(c.upper() for c in ignore_caps)
        self._caps: frozenset[str] | None = None
        self._framer = wire.Framer()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._out: list[bytes] = []
        self._done: dict[bytes, Tagged] = {}
        self._names: dict[bytes, str] = {}  # in-flight tag → command name
        self._tags = 0
        self._bye: bytes | None = None
        self._broken: str | None = None
        self._authenticated = False
        self.exists = 0  # messages in the selected folder, as the server last said
        # what the connection is used for now (e.g. "folder 'INBOX'"), set by the store so
        # that a lost connection names the folder it hit
        self.context: str | None = None

    # ---- capabilities -------------------------------------------------------------------------
    @property
    def caps(self) -> frozenset[str]:
        return self._caps or frozenset()

    @property
    def bye(self) -> bytes | None:
        """The text of the server's BYE, once it sent one."""
        return self._bye

    @property
    def broken(self) -> bool:
        """Failed or closed: no command can be sent on it any more."""
        return self._broken is not None or self._writer is None

    def _set_caps(self, caps: frozenset[str]) -> None:
        self._caps = caps - self._ignore

    @property
    def nonsync_max(self) -> int:
        """The largest literal we may send without waiting for "+" (RFC 7888)."""
        if "LITERAL+" in self.caps:
            return 1 << 62
        return 4096 if "LITERAL-" in self.caps else -1

    async def capability(self) -> frozenset[str]:
        done = await self.run([b"CAPABILITY"])  # the untagged CAPABILITY lands in _note
        if self._caps is None and (caps := parse.code_capabilities(done.text)) is not None:
            self._set_caps(caps)
        if self._caps is None:
            raise ServerProtocolError(f"{self.where}: server sent no CAPABILITY response")
        return self.caps

    # ---- connecting ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, read the greeting, and start TLS when asked. Fails with ConnectionFailed."""
        ctx = None
        if self._tls or self._starttls:
            try:
                ctx = tls.context(self._policy, verify=self._verify)
            except (ssl.SSLError, OSError) as e:  # a CA file that holds no certificate
                raise ConnectionFailed(
                    f"{self.where}: cannot set up TLS: {e}",
                    hint="check the files sslcacertfile, sslclientcert and sslclientkey name",
                    retry=False,
                ) from None
        try:
            async with asyncio.timeout(self._timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=ctx if self._tls else None,
                    server_hostname=self.host if self._tls else None,
                    limit=4 * READ_SIZE,
                )
        except TimeoutError:
            raise ConnectionFailed(
                f"{self.where}: no connection within {self._timeout} s"
            ) from None
        except ssl.SSLError as e:
            raise self._tls_error(e, await self._refused_cert(e)) from e
        except OSError as e:
            # asyncio's strerror is "Connect call failed (...)"; resolver errors are negative
            why = os.strerror(e.errno) if e.errno and e.errno > 0 else e.strerror or str(e)
            raise ConnectionFailed(f"{self.where}: cannot connect: {why}") from e
        sock = self._writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls and not self._verify:
            return  # the probe: the certificate is all it wants
        if self._tls:
            self._check_pin()
        await self._greeting()
        if self._starttls and not self._tls:
            assert ctx is not None
            await self._start_tls(ctx)

    async def _greeting(self) -> None:
        ev = await self._next_event()
        if not isinstance(ev, Untagged):
            raise ServerProtocolError(f"{self.where}: no IMAP greeting: {self._show(ev)}")
        _, word = ev.head()
        text = ev.parts[0][3 + len(word) :]
        if word == b"BYE":
            raise ConnectionFailed(f"{self.where}: server refused the connection: {cut(text)}")
        if word not in (b"OK", b"PREAUTH"):
            raise ServerProtocolError(f"{self.where}: not an IMAP greeting: {cut(ev.text())}")
        self._authenticated = word == b"PREAUTH"
        caps = parse.code_capabilities(text)
        if caps is not None:
            self._set_caps(caps)

    async def _start_tls(self, ctx: ssl.SSLContext) -> None:
        if self._authenticated:
            raise ConnectionFailed(
                f"{self.where}: server pre-authenticated the connection; cannot start TLS",
                retry=False,
            )
        if "STARTTLS" not in (self._caps or await self.capability()):
            raise ConnectionFailed(
                f"{self.where}: server does not offer STARTTLS; not sending the password",
                hint="use ssl = yes (port 993), or check the server's TLS setup",
                retry=False,
            )
        done = await self.run([b"STARTTLS"])
        if not done.ok:
            raise ConnectionFailed(f"{self.where}: STARTTLS refused: {cut(done.text)}", retry=False)
        if not self._framer.idle:  # data sent before the handshake could be injected
            raise ServerProtocolError(f"{self.where}: server sent data after STARTTLS")
        assert self._writer is not None
        try:
            async with asyncio.timeout(self._timeout):
                await self._writer.start_tls(ctx, server_hostname=self.host)
        except TimeoutError:
            raise self._fail(f"no TLS handshake within {self._timeout} s") from None
        except ssl.SSLError as e:
            self._fail("TLS failed")
            raise self._tls_error(e, await self._refused_cert(e)) from e
        except OSError as e:
            raise self._fail(f"TLS failed: {e.strerror or e}") from e
        self._check_pin()
        self._caps = None  # those sent before TLS cannot be trusted

    def _tls_error(self, e: ssl.SSLError, cert: bytes | None) -> ConnectionFailed:
        if isinstance(e, ssl.SSLCertVerificationError):
            return tls.untrusted(self.where, e.verify_message, cert)
        return ConnectionFailed(f"{self.where}: TLS failed: {e.reason or e}", retry=False)

    def _peer_cert(self) -> bytes | None:
        """The server's certificate (DER), once TLS is up."""
        obj = self._writer.get_extra_info("ssl_object") if self._writer is not None else None
        return obj.getpeercert(binary_form=True) if isinstance(obj, ssl.SSLObject) else None

    def _check_pin(self) -> None:
        """With cert_fingerprint, the server's certificate must be one it names; checked right
        after the handshake, before the greeting is read or anything is sent."""
        if not self._policy.fingerprints or not self._verify:
            return
        cert = self._peer_cert()
        if cert is None or not tls.pin_matches(cert, self._policy.fingerprints):
            self._fail("certificate pin mismatch")
            raise tls.pin_mismatch(self.where, cert)

    async def _refused_cert(self, e: ssl.SSLError) -> bytes | None:
        """The certificate that failed verification, for the error to show its fingerprint.
        OpenSSL does not hand out a certificate it refused, so a second connection that
        verifies nothing reads it and closes after the handshake (for STARTTLS, after the
        STARTTLS command): no credential is ever sent on it. Checking every certificate by hand
        instead would re-implement OpenSSL's chain and name checks; this costs one handshake,
        and only on failure."""
        if not isinstance(e, ssl.SSLCertVerificationError) or not self._verify:
            return None
        timeout = min(self._timeout or PROBE_TIMEOUT, PROBE_TIMEOUT)
        probe = Connection(
            self.host,
            self.port,
            tls=self._tls,
            starttls=self._starttls,
            timeout=timeout,
            tls_policy=self._policy,
        )
        probe._verify = False
        try:
            await probe.open()
            return probe._peer_cert()
        except (MailtwinError, OSError):
            return None
        finally:
            await probe.close()

    async def login(
        self,
        user: str,
        secrets: sasl.Secrets | str,
        mechanisms: Sequence[str] = ("PLAIN", "LOGIN"),
        authzid: str = "",
    ) -> None:
        """Authenticate with the first of ``mechanisms`` (the user's order) that the server
        offers, SASL-IR where offered. Secrets are asked for only now, off the event loop: a
        password command or an OAuth2 token refresh may take a while."""
        if self._authenticated:
            return
        if isinstance(secrets, str):
            secrets = sasl.Password(secrets)
        caps = self._caps or await self.capability()
        choice = sasl.choose(mechanisms, caps, secrets.has_token)
        mech = choice.mechanism
        if mech is None:
            raise self._no_mechanism(choice, mechanisms, secrets.has_token)
        if mech == "LOGIN":
            password = await asyncio.to_thread(secrets.password)
            tag = await self.send(
                [b"LOGIN", wire.astring(user), wire.astring(password)], secret=True
            )
            (done,) = await self.wait([tag])
        else:
            done = await self._authenticate(mech, user, secrets, authzid, "SASL-IR" in caps)
        if not done.ok:
            code = parse.response_code(done.text)
            if code is not None and code[0] == b"UNAVAILABLE":  # RFC 5530: try again later
                raise ConnectionFailed(f"{self.where}: login unavailable: {cut(done.text)}")
            token = mech in sasl.TOKEN_MECHANISMS
            if token:  # revoked before it expired: do not offer it again (autorefresh)
                secrets.token_rejected()
            raise sasl.refused(self.where, user, mech, cut(done.text))
        self._authenticated = True
        caps_now = parse.code_capabilities(done.text)
        if caps_now is not None:
            self._set_caps(caps_now)
        else:
            self._caps = None
            await self.capability()

    def _no_mechanism(
        self, choice: sasl.Choice, allowed: Sequence[str], has_token: bool
    ) -> AuthError:
        offered = ", ".join(choice.offered) or "none"
        hint = "add one the server offers to auth_mechanisms"
        if "LOGINDISABLED" in self.caps:
            hint = "the server takes no password before TLS: use ssl = yes or starttls = yes"
        elif not has_token and sasl.TOKEN_MECHANISMS & set(choice.offered):
            hint = "the server offers OAuth2: set oauth2_refresh_token (see `mailtwin auth`)"
        return AuthError(
            f"{self.where}: no allowed login mechanism: the server offers {offered}; "
            f"auth_mechanisms allows {', '.join(allowed) or 'none'}",
            hint=hint,
        )

    async def _authenticate(
        self, mech: str, user: str, secrets: sasl.Secrets, authzid: str, sasl_ir: bool
    ) -> Done:
        """AUTHENTICATE ``mech``: the initial response (inline with SASL-IR), then one answer per
        challenge; every answer is redacted in the debug output."""
        password = token = ""
        if mech in sasl.TOKEN_MECHANISMS:
            token = await asyncio.to_thread(secrets.access_token)
        else:
            password = await asyncio.to_thread(secrets.password)
        initial: bytes | None = None  # CRAM-MD5: the server speaks first
        if mech == "PLAIN":
            initial = sasl.plain(user, password, authzid)
        elif mech == "XOAUTH2":
            initial = sasl.xoauth2(user, token)
        elif mech == "OAUTHBEARER":
            initial = sasl.oauthbearer(user, token, self.host, self.port)
        if initial is not None and sasl_ir:
            tag = await self.send(
                [b"AUTHENTICATE", mech.encode(), base64.b64encode(initial)], secret=True
            )
            initial = None
        else:
            tag = await self.send([b"AUTHENTICATE", mech.encode()])
        answered = False
        while (ev := await self._continuation(tag, None)) is not None:
            try:
                challenge = base64.b64decode(ev.text.strip(), validate=True)
            except ValueError:
                raise self._fail(
                    f"server sent a challenge that is not base64 during AUTHENTICATE {mech}",
                    ServerProtocolError,
                ) from None
            if initial is not None:  # no SASL-IR: the empty challenge asks for it
                answer, initial = initial, None
            elif sasl.error_challenge(mech, challenge):
                answer = sasl.abort(mech)  # the server then completes with NO
            elif mech == "CRAM-MD5" and not answered:
                answer = sasl.cram_md5(user, password, challenge)
            else:
                raise self._fail(f"server sent an unexpected challenge during {mech} login")
            answered = True
            self._out.append(base64.b64encode(answer) + b"\r\n")
            self._say("C: <redacted>")
        (done,) = await self.wait([tag])
        return done

    async def logout(self) -> None:
        """LOGOUT politely (briefly), then close; never fails."""
        if self._writer is None:
            return
        if self._broken is None:
            try:
                async with asyncio.timeout(LOGOUT_TIMEOUT):
                    await self.run([b"LOGOUT"])
            except (ConnectionFailed, TimeoutError):
                pass
        await self.close()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        self._broken = self._broken or "closed"
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(LOGOUT_TIMEOUT):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass

    # ---- commands -----------------------------------------------------------------------------
    async def run(self, args: Sequence[Arg], handler: Handler | None = None) -> Done:
        """Send one command and wait for its completion."""
        tag = await self.send(args, handler)
        (done,) = await self.wait([tag], handler)
        return done

    async def run_all(
        self, commands: Iterable[Sequence[Arg]], handler: Handler | None = None
    ) -> list[Done]:
        """Pipelined: send every command, then wait for them all."""
        tags = [await self.send(args, handler) for args in commands]
        return await self.wait(tags, handler)

    async def send(
        self, args: Sequence[Arg], handler: Handler | None = None, *, secret: bool = False
    ) -> bytes:
        """Queue a command (literals included: waits for "+" where it must); returns its tag.
        A command the server ends before its literal (NO instead of "+") is left at that."""
        if self._broken is not None or self._writer is None:
            raise ConnectionFailed(f"{self._at()}connection unusable ({self._broken})")
        self._tags += 1
        tag = b"M%d" % self._tags
        name = args[0].decode() if isinstance(args[0], bytes) else "?"
        if name == "UID" and len(args) > 1 and isinstance(args[1], bytes):
            name += " " + args[1].decode()
        self._names[tag] = name
        if self._debug is not None:
            self._say_command(tag, args, secret)
        try:
            for piece in wire.encode(tag, args, self.nonsync_max):
                self._out.append(piece.text)
                if piece.literal is None:
                    continue
                if piece.sync and await self._continuation(tag, handler) is None:
                    return tag
                await self._write_literal(piece.literal, secret)
        except asyncio.CancelledError:
            self._fail("cancelled while sending a command")
            raise
        return tag

    async def wait(self, tags: Sequence[bytes], handler: Handler | None = None) -> list[Done]:
        """Read until every tag completed, passing untagged data to ``handler``. A server BAD
        raises ClientProtocolError. A handler's error (MailtwinError, OSError) is raised once the
        commands completed, so the connection stays usable; but ResponseFlood, at once."""
        await self._flush()
        pending = {t for t in tags if t not in self._done}
        failed: MailtwinError | OSError | None = None
        framer = self._framer
        try:
            while pending:
                # _next_event() inlined: this loop runs once per body chunk and response
                try:
                    ev = framer.next_event()
                except ServerProtocolError as e:
                    raise self._fail(str(e), ServerProtocolError) from e
                if ev is None:
                    await self._read()
                    continue
                if isinstance(ev, Untagged):
                    self._note(ev)
                if self._debug is not None:
                    self._say_event(ev)
                if isinstance(ev, Tagged):
                    self._completed(ev)
                    pending.discard(ev.tag)
                elif isinstance(ev, Continuation):
                    raise self._fail("server sent an unexpected continuation request")
                elif handler is not None and failed is None:
                    try:
                        await handler(ev)
                    except ResponseFlood as e:
                        # reading on would let the server go on for ever: hang up now
                        raise self._fail(str(e), ResponseFlood) from e
                    except (MailtwinError, OSError) as e:
                        failed = e
        except asyncio.CancelledError:
            self._fail("cancelled while reading responses")  # mid-response: cannot go on
            raise
        if failed is not None:
            raise failed
        out = []
        for t in tags:
            ev = self._done.pop(t)
            name = self._names.pop(t)
            if ev.status == "BAD":
                raise ClientProtocolError(
                    f"{self._at()}server rejected our {name} command: {cut(ev.text)}"
                )
            out.append(Done(name, ev.status, ev.text))
        return out

    async def idle(self, seconds: float, stop: asyncio.Event | None = None) -> bool:
        """IDLE (RFC 2177) on the selected folder until the server reports a change in it (True)
        or ``seconds`` pass or ``stop`` is set (False), then DONE. Its reads wait as long as
        asked: the socket timeout is for answers, and an idle server has nothing to say."""
        tag = await self.send([b"IDLE"])
        if await self._continuation(tag, None) is None:
            done = self._done.pop(tag)
            self._names.pop(tag)
            raise ClientProtocolError(f"{self._at()}server refused IDLE: {cut(done.text)}")
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        changed = False
        try:
            while not changed:
                try:
                    ev = self._framer.next_event()
                except ServerProtocolError as e:
                    raise self._fail(str(e), ServerProtocolError) from e
                if ev is None:
                    left = end - loop.time()
                    if left <= 0 or not await self._read_for(left, stop):
                        break
                    continue
                if self._debug is not None:
                    self._say_event(ev)
                if isinstance(ev, Tagged):
                    self._completed(ev)
                    if ev.tag == tag:  # the server ended it (RFC 2177 allows it)
                        self._done.pop(tag)
                        self._names.pop(tag)
                        return changed
                elif isinstance(ev, Untagged):
                    self._note(ev)
                    changed = _CHANGE.match(ev.parts[0]) is not None
                elif isinstance(ev, Continuation):
                    raise self._fail("server sent an unexpected continuation request")
        except asyncio.CancelledError:
            self._fail("cancelled while idling")
            raise
        self._out.append(b"DONE\r\n")
        if self._debug is not None:
            self._say("C: DONE")
        await self.wait([tag])
        return changed

    async def _read_for(self, seconds: float, stop: asyncio.Event | None) -> bool:
        """Read what arrives within ``seconds``; False when nothing did, or ``stop`` was set."""
        if self._reader is None or self._broken is not None:
            raise ConnectionFailed(f"{self._at()}connection unusable ({self._broken})")
        if stop is not None and stop.is_set():
            return False
        read = asyncio.ensure_future(self._reader.read(READ_SIZE))
        stopped = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            waits = {read} if stopped is None else {read, stopped}
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopped is not None:
                stopped.cancel()
            if not read.done():
                # a read cancelled before it ran took nothing from the stream
                read.cancel()
                await asyncio.wait([read])
        if read.cancelled():
            return False
        try:
            data = read.result()
        except OSError as e:
            raise self._fail(f"connection lost: {e.strerror or e}") from e
        self._received(data)
        return True

    def _completed(self, ev: Tagged) -> None:
        if ev.tag not in self._names:
            raise self._fail(f"server completed a command we did not send: {cut(ev.tag)}")
        self._done[ev.tag] = ev

    async def _continuation(self, tag: bytes, handler: Handler | None) -> Continuation | None:
        """Wait for "+"; None when the command completed instead."""
        await self._flush()
        while True:
            ev = await self._next_event()
            if isinstance(ev, Continuation):
                return ev
            if isinstance(ev, Tagged):
                self._completed(ev)
                if ev.tag == tag:
                    return None
            elif handler is not None:
                try:
                    await handler(ev)
                except (MailtwinError, OSError):
                    self._fail("a response handler failed")  # the server awaits our literal
                    raise

    async def _write_literal(self, lit: Literal, secret: bool = False) -> None:
        if self._debug is not None and not secret:  # a secret's length is a secret too
            self._say(f"C: <literal, {lit.size} bytes>")
        if isinstance(lit.data, bytes):
            self._out.append(lit.data)
            if lit.size >= WRITE_BLOCK:
                await self._flush()
            return
        await self._flush()
        left = lit.size
        while left > 0:
            try:
                block = lit.data.read(min(WRITE_BLOCK, left))
            except OSError as e:  # the server awaits the rest of the literal: cannot go on
                raise self._fail(f"could not read a message to upload: {e}") from e
            if not block:
                raise self._fail(f"a message to upload ended {left} bytes early")
            left -= len(block)
            self._out.append(block)
            await self._flush()

    # ---- I/O ----------------------------------------------------------------------------------
    async def _flush(self) -> None:
        if not self._out:
            return
        assert self._writer is not None
        data = b"".join(self._out)
        self._out.clear()
        try:
            self._writer.write(data)
            async with asyncio.timeout(self._timeout):
                await self._writer.drain()
        except TimeoutError:
            raise self._fail(f"could not send within {self._timeout} s", hint=SLOW) from None
        except OSError as e:
            raise self._fail(f"connection lost while sending: {e.strerror or e}") from e

    async def _next_event(self) -> Event:
        while True:
            try:
                ev = self._framer.next_event()
            except ServerProtocolError as e:
                raise self._fail(str(e), ServerProtocolError) from e
            if ev is not None:
                if isinstance(ev, Untagged):
                    self._note(ev)
                if self._debug is not None:
                    self._say_event(ev)
                return ev
            await self._read()

    async def _read(self) -> None:
        if self._reader is None or self._broken is not None:
            raise ConnectionFailed(f"{self._at()}connection unusable ({self._broken})")
        try:
            async with asyncio.timeout(self._timeout):
                data = await self._reader.read(READ_SIZE)
        except TimeoutError:
            raise self._fail(f"no answer within {self._timeout} s", hint=SLOW) from None
        except OSError as e:
            raise self._fail(f"connection lost: {e.strerror or e}") from e
        self._received(data)

    def _received(self, data: bytes) -> None:
        """What a read brought, to the framer; nothing at all: the server hung up."""
        if not data:
            bye = f" ({cut(self._bye)})" if self._bye else ""
            raise self._fail("server closed the connection" + bye)
        self._framer.receive_data(data)

    def _note(self, ev: Untagged) -> None:
        """What the connection itself tracks: BYE, capabilities, the selected folder's size."""
        p0 = ev.parts[0]
        if p0.endswith(b" EXISTS"):
            if p0[2:-7].isdigit():
                self.exists = int(p0[2:-7])
            return
        if p0.endswith(b" EXPUNGE"):
            self.exists = max(0, self.exists - 1)
            return
        word = p0[2:13].upper()
        if word.startswith(b"BYE"):
            self._bye = ev.parts[0][6:]
        elif word.startswith(b"CAPABILITY"):
            self._set_caps(parse.capabilities(ev.parts[0][13:]))
        elif word.startswith(b"OK [CAPABIL"):
            caps = parse.code_capabilities(ev.parts[0][5:])
            if caps is not None:
                self._set_caps(caps)

    def _at(self) -> str:
        """Where, for a message: the server, and the folder when the store said which."""
        return f"{self.where}: {self.context}: " if self.context else f"{self.where}: "

    def _fail(
        self, what: str, kind: type[ConnectionFailed] = ConnectionFailed, hint: str | None = None
    ) -> ConnectionFailed:
        """The connection is unusable from now on; the error to raise, naming the folder and
        the command it was used for."""
        self._broken = what
        if self._writer is not None:
            self._writer.transport.abort()
        # the oldest command in flight
        doing = next((n for t, n in self._names.items() if t not in self._done), None)
        during = f" during {doing}" if doing and not what.startswith("cancelled") else ""
        return kind(f"{self._at()}{what}{during}", hint)

    # ---- debug ----------------------------------------------------------------------------------
    def _say(self, line: str) -> None:
        if self._debug is not None:
            self._debug(line)

    def _say_command(self, tag: bytes, args: Sequence[Arg], secret: bool) -> None:
        words = [tag.decode()]
        for i, a in enumerate(args):
            if secret and i >= (2 if args[0] == b"AUTHENTICATE" else 1):
                words.append("<redacted>")
                break
            words.append(a.decode("utf-8", "replace") if isinstance(a, bytes) else f"{{{a.size}}}")
        self._say("C: " + " ".join(words))

    def _say_event(self, ev: Event) -> None:
        line = self._show(ev)
        if line:
            self._say(line)

    @staticmethod
    def _show(ev: Event) -> str:
        if isinstance(ev, Untagged):
            return "S: " + ev.text().decode("utf-8", "replace")
        if isinstance(ev, Tagged):
            return f"S: {ev.tag.decode('ascii', 'replace')} {ev.status} " + ev.text.decode(
                "utf-8", "replace"
            )
        if isinstance(ev, Continuation):
            return "S: + " + ev.text.decode("utf-8", "replace")
        if isinstance(ev, BodyStart):
            return (
                f"S: <{ev.section.decode('ascii', 'replace')} of message {ev.seq}: {ev.size} bytes>"
            )
        return ""

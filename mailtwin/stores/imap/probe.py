"""A blocking, read-only look at an IMAP account: log in, one LIST-STATUS, log out.

Run before the engine starts (sync/preflight.py), so that a run with nothing to do never
imports asyncio or imapclient: on a cron no-op those imports cost more than the whole sync.
It reads through the transport's sans-IO framer and picks the login mechanism with the
transport's own choice (sasl.py). Anything it does not expect — a server without LIST-STATUS
and CONDSTORE, a literal folder name, a certificate it cannot verify — makes it give up (None);
the full sync then does the job and reports what went wrong. A refused login is the exception:
it is reported from here, so that a wrong password reaches the server once per run, not twice.
"""

from __future__ import annotations

import re
import socket
import sys
from binascii import a2b_base64, b2a_base64  # base64's own, without importing base64
from collections.abc import Callable, Mapping

from mailtwin.errors import AuthError, MailtwinError, cut
from mailtwin.model import FolderInfo, FolderStamp, Frozen, _set
from mailtwin.stores.imap import sasl, wire
from mailtwin.stores.imap.wire import Continuation, Tagged, Untagged

# a folder's stamp: any append, expunge or flag change moves one of these (with CONDSTORE);
# the engine's store lists and stamps folders with these too
STAMP_ITEMS = ("UIDVALIDITY", "UIDNEXT", "MESSAGES", "HIGHESTMODSEQ")
STAMP_ARG = b"(" + " ".join(STAMP_ITEMS).encode() + b")"
# more folders than any account has: a server that lists more is flooding us
MAX_FOLDERS = 100_000
_READ = 64 * 1024

# a name as the fast paths accept it: an atom or a quoted string with \\ and \" escapes
_NAME = rb'(?:"((?:[^"\\\r\n]|\\["\\])*)"|([^\s(){%*"\\\]]+))'
_SEP = rb'(?:"((?:[^"\\]|\\["\\])?)"|NIL)'
_LIST = re.compile(rb"\* LIST \(([^)]*)\) " + _SEP + rb" " + _NAME + rb"\Z", re.I)
_STATUS = re.compile(rb"\* STATUS " + _NAME + rb" \(([A-Z0-9 ]*)\)\Z", re.I)
_CAPS = re.compile(rb"\[CAPABILITY ([^\]]*)\]", re.I)


class GiveUp(Exception):
    """Something the probe does not handle: leave the account to the full sync."""


class Listing(Frozen):
    __match_args__ = ("folders", "stamps")
    __slots__ = __match_args__
    folders: list[FolderInfo]
    stamps: dict[str, FolderStamp | None]

    def __init__(self, folders: list[FolderInfo], stamps: dict[str, FolderStamp | None]) -> None:
        _set(self, "folders", folders)
        _set(self, "stamps", stamps)


class Login(Frozen):
    """What the probe needs to log in: the same values the store's connections use."""

    __match_args__ = (
        "host",
        "port",
        "user",
        "secrets",
        "mechanisms",
        "authzid",
        "timeout",
        "tls",
        "implicit_tls",
    )
    __slots__ = __match_args__
    host: str
    port: int
    user: str
    secrets: sasl.Secrets
    mechanisms: tuple[str, ...]
    authzid: str
    timeout: float | None
    # wraps the connected socket in TLS (implicit) or after STARTTLS; None: plaintext
    tls: Callable[[socket.socket], socket.socket] | None
    implicit_tls: bool

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        secrets: sasl.Secrets,
        mechanisms: tuple[str, ...],
        authzid: str,
        timeout: float | None,
        tls: Callable[[socket.socket], socket.socket] | None,
        implicit_tls: bool,
    ) -> None:
        _set(self, "host", host)
        _set(self, "port", port)
        _set(self, "user", user)
        _set(self, "secrets", secrets)
        _set(self, "mechanisms", mechanisms)
        _set(self, "authzid", authzid)
        _set(self, "timeout", timeout)
        _set(self, "tls", tls)
        _set(self, "implicit_tls", implicit_tls)


def folder_name(name: str) -> str:
    """INBOX in any case is INBOX (as the store says it)."""
    return "INBOX" if name.upper() == "INBOX" else name


def stamp(items: Mapping[str, int]) -> FolderStamp:
    values = [items.get(k) for k in STAMP_ITEMS]
    if values[-1] == 0:  # HIGHESTMODSEQ 0: the folder keeps no mod-sequences
        values[-1] = None
    return FolderStamp("imap", tuple(values))


def _unquote(quoted: bytes | None, atom: bytes | None) -> str:
    if quoted is not None:
        # (_NAME lets only \" and \\ escape: a name without a backslash has none to undo)
        raw = re.sub(rb"\\([\"\\])", rb"\1", quoted) if b"\\" in quoted else quoted
    else:
        assert atom is not None
        raw = atom
    return raw.decode("utf-8", "surrogateescape")


def list_line(line: bytes) -> tuple[str, str, frozenset[str]] | None:
    """``* LIST (\\HasNoChildren) "/" "a b"`` → (name, sep, lower-cased attributes)."""
    m = _LIST.match(line)
    if m is None:
        return None
    attrs = frozenset(a.decode("ascii", "replace").lower() for a in m[1].split())
    sep = _unquote(m[2], None) if m[2] is not None else ""
    return _unquote(m[3], m[4]), sep, attrs


def status_line(line: bytes) -> tuple[str, dict[str, int]] | None:
    """``* STATUS "a b" (UIDNEXT 9 MESSAGES 3)`` → (name, {"UIDNEXT": 9, "MESSAGES": 3})."""
    m = _STATUS.match(line)
    if m is None:
        return None
    words = m[3].split()
    if len(words) % 2:
        return None
    items = {}
    for key, value in zip(words[::2], words[1::2], strict=True):
        if not value.isdigit():
            return None
        items[key.decode("ascii").upper()] = int(value)
    return _unquote(m[1], m[2]), items


class _Session:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.framer = wire.Framer()
        self.n = 0
        self.caps: frozenset[str] | None = None  # as the greeting told them

    def events(self) -> Tagged | Continuation | Untagged:
        while True:
            ev = self.framer.next_event()
            if ev is not None:
                if not isinstance(ev, Tagged | Continuation | Untagged) or (
                    isinstance(ev, Untagged) and ev.literals
                ):
                    raise GiveUp("a literal or a body")
                return ev
            data = self.sock.recv(_READ)
            if not data:
                raise GiveUp("connection closed")
            self.framer.receive_data(data)

    def send(self, line: bytes) -> bytes:
        self.n += 1
        tag = b"p%d" % self.n
        self.sock.sendall(tag + b" " + line + b"\r\n")
        return tag

    def until(self, tag: bytes, on: Callable[[Untagged], None] | None = None) -> Tagged:
        while True:
            ev = self.events()
            if isinstance(ev, Tagged):
                if ev.tag != tag:
                    raise GiveUp("an unexpected completion")
                return ev
            if isinstance(ev, Continuation):
                raise GiveUp("an unexpected continuation")
            if on is not None:
                on(ev)


def _caps_of(text: bytes) -> frozenset[str] | None:
    m = _CAPS.search(text)
    return frozenset(w.decode("ascii", "replace").upper() for w in m[1].split()) if m else None


def _capability(s: _Session) -> frozenset[str]:
    found: list[frozenset[str]] = []

    def on(u: Untagged) -> None:
        line = u.parts[0]
        if line[:13].upper() == b"* CAPABILITY ":
            found.append(frozenset(w.decode("ascii", "replace").upper() for w in line[13:].split()))

    done = s.until(s.send(b"CAPABILITY"), on)
    if done.status != "OK" or not found:
        raise GiveUp("no CAPABILITY")
    return found[-1]


def _login(s: _Session, login: Login, caps: frozenset[str]) -> frozenset[str]:
    """The transport's mechanism choice; its exchanges, minus the error paths (a refusal or a
    challenge we do not expect: give up, and the engine logs in and says what went wrong)."""
    mech = sasl.choose(login.mechanisms, caps, login.secrets.has_token).mechanism
    initial: bytes | None = None
    if mech == "LOGIN":
        user, pw = wire.astring(login.user), wire.astring(login.secrets.password())
        if not isinstance(user, bytes) or not isinstance(pw, bytes):
            raise GiveUp("a login that needs a literal")
        tag = s.send(b"LOGIN " + user + b" " + pw)
    elif mech in ("PLAIN", "XOAUTH2", "OAUTHBEARER", "CRAM-MD5"):
        if mech == "PLAIN":
            initial = sasl.plain(login.user, login.secrets.password(), login.authzid)
        elif mech == "XOAUTH2":
            initial = sasl.xoauth2(login.user, login.secrets.access_token())
        elif mech == "OAUTHBEARER":
            token = login.secrets.access_token()
            initial = sasl.oauthbearer(login.user, token, login.host, login.port)
        if initial is not None and "SASL-IR" in caps:
            tag = s.send(
                b"AUTHENTICATE " + mech.encode() + b" " + b2a_base64(initial, newline=False)
            )
            initial = None
        else:
            tag = s.send(b"AUTHENTICATE " + mech.encode())
            ev = s.events()
            if not isinstance(ev, Continuation):
                raise GiveUp("no continuation")
            if initial is None:  # CRAM-MD5: the server's challenge first
                challenge = a2b_base64(ev.text, strict_mode=True)  # b64decode(validate=True)
                initial = sasl.cram_md5(login.user, login.secrets.password(), challenge)
            s.sock.sendall(b2a_base64(initial, newline=False) + b"\r\n")
    else:
        raise GiveUp(f"login mechanism {mech}")
    done = s.until(tag)
    if done.status != "OK":
        code = re.match(rb"\[([A-Z-]+)", done.text)
        if code is not None and code[1] == b"UNAVAILABLE":
            raise GiveUp("login unavailable")  # try again later: the engine's business
        if mech in sasl.TOKEN_MECHANISMS:
            login.secrets.token_rejected()
        # said here, not tried again by the engine: a wrong password is sent once per run
        raise sasl.refused(f"{login.host}:{login.port}", login.user, mech, cut(done.text))
    return _caps_of(done.text) or _capability(s)


def look(login: Login, dial: Dial | None = None) -> Listing | None:
    """The account's folders and their stamps, or None (see the module docstring). Raises
    AuthError when the server refused the login: that, the engine would only repeat.
    ``dial``: the connection, opened ahead (by ``Dial(login)``)."""
    try:
        s = dial.session() if dial is not None else _open(login)
    except _LEFT_TO_ENGINE:
        return None
    try:
        return _list(s, login)
    except AuthError:
        raise
    except _LEFT_TO_ENGINE:
        return None
    finally:
        s.sock.close()


# what makes the probe give up: the engine tries again, and reports what still goes wrong
_LEFT_TO_ENGINE = (GiveUp, OSError, ValueError, UnicodeError, MailtwinError)


class Dial:
    """A connection opened in a thread (connect, TLS, greeting) while the caller looks at
    its Maildir: over a long link the greeting's round trip then costs nothing. It never logs
    in by itself: ``session()`` hands the connection over, ``close()`` drops it unused (the
    Maildir changed: the engine logs in, and a wrong password is still sent once per run)."""

    def __init__(self, login: Login) -> None:
        import threading

        self.login = login
        self._lock = threading.Lock()
        self._session: _Session | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._going = threading.Event()
        # the thread takes the GIL back after each blocking call (name lookup, connect, recv)
        # within 0.5 ms instead of a whole 5 ms switch interval of this busy thread
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._interval, 0.0005))
        self._thread = threading.Thread(target=self._run, args=(login,), daemon=True)
        try:
            self._thread.start()
        except BaseException:
            sys.setswitchinterval(self._interval)  # no Dial to close: put it back here
            raise
        self._going.wait(0.1)  # it reached its first blocking call: the SYN is on its way

    def _run(self, login: Login) -> None:
        self._going.set()
        try:
            s = _open(login)
        except BaseException as e:  # handed to session()
            self._error = e
            return
        with self._lock:
            if self._closed:
                s.sock.close()
            else:
                self._session = s

    def session(self) -> _Session:
        self._thread.join()
        sys.setswitchinterval(self._interval)
        with self._lock:
            s, self._session = self._session, None
        if s is None:
            raise self._error or GiveUp("no connection")
        return s

    def close(self) -> None:
        """Drop the connection, now or once the thread has it; never waits."""
        sys.setswitchinterval(self._interval)
        with self._lock:
            self._closed = True
            s, self._session = self._session, None
        if s is not None:
            s.sock.close()


def _open(login: Login) -> _Session:
    """A connection past its greeting (and STARTTLS), not logged in."""
    # an ASCII host name as bytes (getaddrinfo takes them): what the idna codec would make of
    # it, without importing that codec (and unicodedata) at every run
    host = login.host.encode("ascii") if login.host.isascii() else login.host
    address = (host, login.port)
    sock = socket.create_connection(address, timeout=login.timeout)  # type: ignore[arg-type]
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if login.implicit_tls:
            assert login.tls is not None
            sock = login.tls(sock)
        s = _Session(sock)
        greeting = s.events()
        if not isinstance(greeting, Untagged) or greeting.head()[1] != b"OK":
            raise GiveUp("greeting")  # PREAUTH and BYE: the engine's business
        s.caps = _caps_of(greeting.parts[0])
        if login.tls is not None and not login.implicit_tls:
            caps = s.caps or _capability(s)
            if "STARTTLS" not in caps:
                raise GiveUp("no STARTTLS")  # never a plaintext login: the engine refuses
            done = s.until(s.send(b"STARTTLS"))
            if done.status != "OK" or not s.framer.idle:
                raise GiveUp("STARTTLS")
            sock = s.sock = login.tls(sock)
            s.caps = None
        return s
    except BaseException:
        sock.close()
        raise


def _list(s: _Session, login: Login) -> Listing:
    caps = _login(s, login, s.caps or _capability(s))
    if not {"LIST-STATUS", "CONDSTORE"} <= caps:
        raise GiveUp("no LIST-STATUS")  # no stamps: every folder needs a look anyway
    folders: list[FolderInfo] = []
    stamps: dict[str, FolderStamp | None] = {}

    def on(u: Untagged) -> None:
        line = u.parts[0]
        word = line[2:9].upper()
        if word.startswith(b"LIST "):
            entry = list_line(line)
            if entry is None:
                raise GiveUp("a LIST line")
            if len(folders) >= MAX_FOLDERS:
                raise GiveUp("too many folders")  # the engine hangs up and says so
            name, sep, attrs = entry
            selectable = not attrs & {"\\noselect", "\\nonexistent"}
            folders.append(FolderInfo(folder_name(name), sep, selectable))
        elif word == b"STATUS ":
            st = status_line(line)
            if st is None:
                raise GiveUp("a STATUS line")
            if len(stamps) >= MAX_FOLDERS:
                raise GiveUp("too many folders")
            stamps[folder_name(st[0])] = stamp(st[1])

    cmd = b'LIST "" "*" RETURN (STATUS ' + STAMP_ARG + b")"
    if s.until(s.send(cmd), on).status != "OK":
        raise GiveUp("LIST-STATUS failed")
    s.send(b"LOGOUT")  # not waited for: nothing depends on its answer
    return Listing(folders, stamps)

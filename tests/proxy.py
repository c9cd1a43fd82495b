"""A TCP proxy for fault tests: forwards 127.0.0.1:<port> to a server, and on request cuts or
stalls a connection at a chosen byte, refuses new connections, or runs a callback when the
client sends a given command (to make "another client" change things in the middle of a sync).

Threads, plain sockets, bounded: at most ``max_connections`` at once, every socket times out,
``stop()`` closes everything and joins every thread. Started and stopped by the test.

A ``Fault`` fires once, on the first connection where it triggers: counting starts when the
client has sent ``trigger`` (from the connection's start when None), and after ``after`` more
bytes in ``direction`` ("server": what the server sends; "client": what the client sends) the
connection is cut (both sockets closed) or stalled (nothing forwarded either way any more, the
sockets left open until the client gives up or the proxy stops).

``rewrite_server(fn)`` passes every chunk the server sends through ``fn`` (e.g. to hide a
capability); chunks are as read, so a pattern split across two reads is not seen.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

HOST = "127.0.0.1"
CHUNK = 64 * 1024
IO_TIMEOUT = 10.0  # no socket operation of the proxy blocks longer
POLL = 0.1  # how often idle threads look at the stop flag


@dataclass
class Fault:
    action: Literal["cut", "stall"]
    direction: Literal["server", "client"]
    after: int
    trigger: bytes | None = None
    fired: threading.Event = field(default_factory=threading.Event)


@dataclass
class Hook:
    """``callback(sent)`` runs when the client sends ``pattern`` (``sent``: the client's recent
    bytes, the pattern among them); those bytes reach the server only once it returned."""

    pattern: bytes
    callback: Callable[[bytes], None]
    once: bool = True
    calls: int = 0


class Proxy:
    def __init__(
        self, target_port: int, target_host: str = HOST, max_connections: int = 16
    ) -> None:
        self.target = (target_host, target_port)
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._hooks: list[Hook] = []
        self._refuse = 0
        self._rewrite: Callable[[bytes], bytes] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []  # one per connection
        self._acceptor: threading.Thread
        self._socks: set[socket.socket] = set()
        self.connections = 0  # accepted since start
        self.refused = 0
        self.errors: list[str] = []  # hook failures, shown by the test that cares
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self.port: int = self._listener.getsockname()[1]

    # ---- control --------------------------------------------------------------------------
    def start(self) -> None:
        self._listener.listen(16)
        self._listener.settimeout(POLL)
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(IO_TIMEOUT)  # no new connection from here on
        _close(self._listener)
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            _close(s)
        for t in self._threads:
            t.join(IO_TIMEOUT)

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fault(
        self,
        action: Literal["cut", "stall"],
        direction: Literal["server", "client"],
        after: int,
        trigger: bytes | None = None,
    ) -> Fault:
        f = Fault(action, direction, after, trigger)
        with self._lock:
            self._faults.append(f)
        return f

    def on_client(
        self, pattern: bytes, callback: Callable[[bytes], None], once: bool = True
    ) -> Hook:
        h = Hook(pattern, callback, once)
        with self._lock:
            self._hooks.append(h)
        return h

    def rewrite_server(self, fn: Callable[[bytes], bytes] | None) -> None:
        """Pass what the server sends through ``fn`` from now on (None: unchanged)."""
        with self._lock:
            self._rewrite = fn

    def refuse(self, count: int = 1) -> None:
        """Close the next ``count`` connections as soon as they are accepted."""
        with self._lock:
            self._refuse += count

    def clear(self) -> None:
        """No more faults, hooks or refusals (connections already stalled stay stalled)."""
        with self._lock:
            self._faults.clear()
            self._hooks.clear()
            self._refuse = 0
            self._rewrite = None

    # ---- threads --------------------------------------------------------------------------
    def _spawn(self, client: socket.socket) -> None:
        t = threading.Thread(target=self._serve, args=(client,), daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                refuse = self._refuse > 0 or len(self._socks) >= 2 * self.max_connections
                if self._refuse > 0:
                    self._refuse -= 1
                if refuse:
                    self.refused += 1
                else:
                    self.connections += 1
            if refuse:
                _close(client)
                continue
            self._spawn(client)

    @contextlib.contextmanager
    def _tracked(self, *socks: socket.socket) -> Iterator[None]:
        with self._lock:
            self._socks.update(socks)
        try:
            yield
        finally:
            with self._lock:
                self._socks.difference_update(socks)
            for s in socks:
                _close(s)

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=IO_TIMEOUT)
        except OSError:
            _close(client)
            return
        client.settimeout(IO_TIMEOUT)
        with self._tracked(client, server):
            _Pipe(self, client, server).run()

    # ---- shared state, under the lock ---------------------------------------------------------
    def _take_fault(self, window: bytes, new: int) -> Fault | None:
        """The first armed fault whose trigger ends in the last ``new`` bytes of ``window``."""
        with self._lock:
            for f in self._faults:
                if f.trigger is None or _ends_in(window, new, f.trigger) >= 0:
                    self._faults.remove(f)
                    return f
        return None

    def _hooks_for(self, window: bytes, new: int) -> list[Hook]:
        with self._lock:
            hit = [h for h in self._hooks if _ends_in(window, new, h.pattern) >= 0]
            for h in hit:
                h.calls += 1
                if h.once:
                    self._hooks.remove(h)
        return hit


class _Pipe:
    """One proxied connection."""

    def __init__(self, proxy: Proxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.tail = b""  # the client's last bytes, to find a pattern split across reads
        self.fault: Fault | None = None
        self.left = 0  # bytes the fault still lets through
        self.stalled = False

    def run(self) -> None:
        p = self.proxy
        if p._faults:
            self._arm(b"", 0)
        while not p._stop.is_set():
            try:
                ready, _, _ = select.select([self.client, self.server], [], [], POLL)
            except (OSError, ValueError):
                return
            for sock in ready:
                try:
                    data = sock.recv(CHUNK)
                except OSError:
                    return
                if not data:
                    return
                if self.stalled:
                    continue  # read and dropped: the other side never sees it
                if sock is self.client:
                    if not self._from_client(data):
                        return
                else:
                    rewrite = p._rewrite
                    if rewrite is not None:
                        data = rewrite(data)
                    if not self._forward(data, "server", self.client):
                        return

    def _arm(self, window: bytes, new: int) -> Fault | None:
        """Take a fault whose trigger just went by; its count starts after the trigger."""
        f = self.proxy._take_fault(window, new)
        if f is not None:
            self.fault, self.left = f, f.after
        return f

    def _from_client(self, data: bytes) -> bool:
        before = self.tail
        window = before + data
        self.tail = window[-256:]
        for h in self.proxy._hooks_for(window, len(data)):
            try:
                h.callback(window)
            except Exception as e:  # a test's hook failed: keep proxying, let the test see it
                self.proxy.errors.append(f"hook {h.pattern!r}: {e!r}")
        if self.fault is None and self.proxy._faults:
            f = self._arm(window, len(data))
            if f is not None and f.direction == "client" and f.trigger is not None:
                # count from the end of the trigger, not from the start of this read
                at = _ends_in(window, len(data), f.trigger) + len(f.trigger) - len(before)
                try:
                    self.server.sendall(data[:at])
                except OSError:
                    return False
                data = data[at:]
        return self._forward(data, "client", self.server)

    def _forward(self, data: bytes, direction: str, to: socket.socket) -> bool:
        f = self.fault
        if f is not None and f.direction == direction and not self.stalled:
            if len(data) >= self.left:
                data, self.left = data[: self.left], 0
                if data:
                    try:
                        to.sendall(data)
                    except OSError:
                        return False
                f.fired.set()
                if f.action == "cut":
                    return False
                self.stalled = True
                return True
            self.left -= len(data)
        try:
            to.sendall(data)
        except OSError:
            return False
        return True


def _ends_in(window: bytes, new: int, pattern: bytes) -> int:
    """Where ``pattern`` first occurs in ``window`` ending within its last ``new`` bytes; -1."""
    return window.find(pattern, max(0, len(window) - new - len(pattern) + 1))


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()

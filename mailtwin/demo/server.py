"""Throwaway IMAP servers on 127.0.0.1 for the demo and the tests; each is stopped by its PID.

`Dovecot`: a private Dovecot 2.3 (own config and directory, free ports, any number of users).
`Pymap`: the pure-Python pymap server (the `demo` extra) with its in-memory `dict` backend and one
user, for machines without Dovecot. `start_server` picks one.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import importlib.util
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

ServerKind = Literal["auto", "dovecot", "pymap"]


class NoServerError(RuntimeError):
    """Neither Dovecot nor pymap is installed (or the one asked for is not)."""


@dataclass
class User:
    name: str
    password: str
    home: Path

    @property
    def maildir(self) -> Path:
        """The server-side Maildir (Dovecot only; pymap keeps mail in memory)."""
        return self.home / "Maildir"


class Server(Protocol):
    base: Path
    port: int
    pid: int | None

    @property
    def description(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def new_user(self, prefix: str = "u") -> User: ...
    def client(self, user: User) -> imaplib.IMAP4: ...


# ---- process and port helpers ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[0] != "Z"


def stop_pid(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM ``pid``, wait for it to go; SIGKILL if it is still there after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


def wait_for_greeting(port: int, alive: Callable[[], bool], log: Path) -> None:
    """Wait until an IMAP greeting comes from ``port``; fail early if the server died."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if not alive():
            raise RuntimeError(f"the IMAP server exited during start-up; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the IMAP server did not greet on {HOST}:{port}; see {log}")
        time.sleep(0.05)


def login(port: int, user: User) -> imaplib.IMAP4:
    c = imaplib.IMAP4(HOST, port, timeout=30)
    c.login(user.name, user.password)
    return c


def _check_reachable(path: Path, uid: int) -> None:
    """The mail user ``uid`` must be able to enter ``path``: fail early, naming the directory."""
    if uid == os.getuid():
        return
    for d in [path, *path.parents]:
        st = d.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"Dovecot's mail user (uid {uid}) cannot enter {d}: "
                "let it in (chmod o+x) or put the server directory elsewhere"
            )


# ---- Dovecot ---------------------------------------------------------------------------------
def dovecot_installed() -> bool:
    return Path(DOVECOT).exists()


class Dovecot:
    """A private Dovecot rooted at ``base``; ``start``, ``new_user``, ``stop`` (by PID)."""

    def __init__(self, base: Path, extra_conf: str = "") -> None:
        self.base = base
        self.extra_conf = extra_conf  # appended to dovecot.conf (tests: other limits)
        self.port = free_port()
        self.tls_port = free_port()
        # Dovecot asks http://127.0.0.1:<oauth_port>/introspect whether an OAuth2 token is
        # valid (XOAUTH2, OAUTHBEARER): the tests serve it there; elsewhere those logins fail
        self.oauth_port = free_port()
        self.pid: int | None = None
        self._ids = itertools.count(1)
        # mail processes may not run as root: as root use nobody, otherwise the caller
        if os.getuid() == 0:
            mail_user = pwd.getpwnam("nobody")
            self.login_user, self.internal_user = "dovenull", "dovecot"
            self.internal_group = "dovecot"
        else:  # everything runs as the caller; Dovecot's own users and groups are out of reach
            mail_user = pwd.getpwuid(os.getuid())
            self.login_user = self.internal_user = mail_user.pw_name
            self.internal_group = grp.getgrgid(os.getgid()).gr_name
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid

    @property
    def description(self) -> str:
        out = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True).stdout
        return f"Dovecot {out.split()[0] if out.strip() else '(unknown version)'}"

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        b = self.base
        for d in ("etc", "run", "state", "log", "mail"):
            (b / d).mkdir(parents=True, exist_ok=True)
        os.chmod(b, 0o755)
        _check_reachable(b, self.uid)
        os.chown(b / "mail", self.uid, self.gid)
        os.chmod(b / "log", 0o777)
        self._make_cert()
        conf = CONF.format(
            base=b,
            port=self.port,
            tls_port=self.tls_port,
            login_user=self.login_user,
            internal_user=self.internal_user,
            internal_group=self.internal_group,
            uid=self.uid,
            gid=self.gid,
        )
        (b / "etc" / "dovecot.conf").write_text(conf + self.extra_conf + "\n")
        (b / "etc" / "dovecot-oauth2.conf.ext").write_text(OAUTH2_CONF.format(port=self.oauth_port))
        # output to a file, not a pipe: the daemon's children would hold a pipe open forever
        with open(b / "log" / "start.log", "ab") as log:
            subprocess.run(
                [DOVECOT, "-c", str(b / "etc" / "dovecot.conf")],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            # the daemonized master writes its pid file a moment after the launcher returns
            pid_file = b / "run" / "master.pid"
            deadline = time.monotonic() + START_TIMEOUT
            while not pid_file.exists() or not pid_file.read_text().strip():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot wrote no pid file; see {b / 'log'}")
                time.sleep(0.02)
            self.pid = int(pid_file.read_text().strip())
            pid = self.pid
            wait_for_greeting(self.port, lambda: pid_alive(pid), b / "log" / "dovecot.log")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None

    def _make_cert(self) -> None:
        etc = self.base / "etc"
        if (etc / "cert.pem").exists():
            return
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
             "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(etc / "key.pem"), "-out", str(etc / "cert.pem")],
            check=True, capture_output=True,
        )  # fmt: skip

    @property
    def cert(self) -> Path:
        """The server's self-signed certificate (a CA file that trusts it)."""
        return self.base / "etc" / "cert.pem"

    # ---- users -------------------------------------------------------------------------------
    def new_user(self, prefix: str = "u") -> User:
        """A fresh user: any name logs in with password ``pw-<name>`` (a static passdb, which
        needs no reload, unlike a passwd-file that Dovecot re-reads at most once a second)."""
        name = f"{prefix}{next(self._ids)}"
        return User(name, f"pw-{name}", self.base / "mail" / name)

    def client(self, user: User) -> imaplib.IMAP4:
        """A plain imaplib client logged in as ``user``: the tests' independent view."""
        return login(self.port, user)

    # ---- command counts ----------------------------------------------------------------------
    def command_counts(self, reset: bool = True) -> dict[str, int]:
        """IMAP commands by name since the last reset (all users), from Dovecot's stats."""
        args = [DOVEADM, "-c", str(self.base / "etc" / "dovecot.conf"), "-f", "tab",
                "stats", "dump"] + (["-r"] if reset else [])  # fmt: skip
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        counts: dict[str, int] = {}
        lines = out.splitlines()
        if not lines:
            return counts
        head = lines[0].split("\t")
        for line in lines[1:]:
            row = dict(zip(head, line.split("\t"), strict=False))
            name = row.get("metric_name", "")
            if name.startswith("imap_cmd_"):
                counts[name.removeprefix("imap_cmd_")] = int(row.get("count", "0"))
        return counts


def start_dovecot(extra_conf: str = "") -> Dovecot:
    """A started Dovecot in a new directory under the system temp directory."""
    base = Path(tempfile.mkdtemp(prefix="mailtwin-dovecot-"))
    d = Dovecot(base, extra_conf)
    d.start()
    return d


CONF = """\
base_dir = {base}/run
state_dir = {base}/state
instance_name = mailtwin-test-{port}
protocols = imap
listen = 127.0.0.1
log_path = {base}/log/dovecot.log
info_log_path = {base}/log/dovecot.log
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 xoauth2 oauthbearer
ssl = yes
ssl_cert = <{base}/etc/cert.pem
ssl_key = <{base}/etc/key.pem
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {uid}
last_valid_uid = 0
mail_location = maildir:~/Maildir
mailbox_list_index = yes
mail_fsync = never
protocol imap {{
  mail_max_userip_connections = 100
}}
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
}}
passdb {{
  driver = static
  args = password=pw-%u
  mechanisms = plain login cram-md5
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {base}/etc/dovecot-oauth2.conf.ext
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = 1
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
metric imap_cmd {{
  filter = event=imap_command_finished
  group_by = cmd_name
}}
"""

# the token's introspection (RFC 7662 style): POST token=...; the answer names the user
OAUTH2_CONF = """\
introspection_mode = post
introspection_url = http://127.0.0.1:{port}/introspect
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
"""


# ---- pymap -----------------------------------------------------------------------------------
def pymap_installed() -> bool:
    return importlib.util.find_spec("pymap") is not None


class Pymap:
    """pymap's in-memory `dict` backend on a free port, plain IMAP, one user.

    pymap has no ``__main__``; we run its console entry point with this interpreter. Its other
    services (admin, managesieve, swim) would listen beyond IMAP when their extras are present,
    so they are switched off.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.pid: int | None = None
        self.user = User("demo", secrets.token_hex(8), base)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._handed_out = False

    @property
    def description(self) -> str:
        from importlib.metadata import version

        return f"pymap {version('pymap')} (in memory)"

    def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        log_path = self.base / "pymap.log"
        self._log = open(log_path, "ab")  # noqa: SIM115 (closed in stop)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from pymap.main import main; main()",
             "--host", HOST, "--port", str(self.port), "--no-tls",
             "--no-service", "admin", "--no-service", "managesieve", "--no-service", "swim",
             "dict", "--demo-user", self.user.name, "--demo-password", self.user.password],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it
        )  # fmt: skip
        self.pid = self._proc.pid
        proc = self._proc
        try:
            wait_for_greeting(self.port, lambda: proc.poll() is None, log_path)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._proc is not None and self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = self.pid = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def new_user(self, prefix: str = "u") -> User:
        """The one user the dict backend knows (it takes no others)."""
        if self._handed_out:
            raise RuntimeError("pymap's dict backend serves a single user")
        self._handed_out = True
        return self.user

    def client(self, user: User) -> imaplib.IMAP4:
        return login(self.port, user)


def start_server(base: Path, kind: ServerKind = "auto") -> Server:
    """Start Dovecot (when installed, or asked for) or else pymap, rooted at ``base``."""
    if kind == "dovecot" or (kind == "auto" and dovecot_installed()):
        if not dovecot_installed():
            raise NoServerError("dovecot is not installed: apt-get install dovecot-imapd")
        server: Server = Dovecot(base)
    elif pymap_installed():
        server = Pymap(base)
    else:
        raise NoServerError(
            "no IMAP server for the demo: install Dovecot (apt-get install dovecot-imapd) "
            "or pymap (pip install 'mailtwin[demo]')"
        )
    server.start()
    return server

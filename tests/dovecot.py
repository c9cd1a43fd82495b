"""A private Dovecot for tests: own config and directory, free ports on 127.0.0.1, stopped by PID.

One server per test session; each test takes fresh users (`new_user`) so tests never see each
other's mail. Users are added to a passwd-file that Dovecot re-reads when it changes.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class User:
    name: str
    password: str
    home: Path

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"


class Dovecot:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.tls_port = free_port()
        self.pid: int | None = None
        self._ids = itertools.count(1)
        if os.getuid() == 0:
            mail_user = pwd.getpwnam("nobody")
            self.login_user, self.internal_user = "dovenull", "dovecot"
        else:
            mail_user = pwd.getpwuid(os.getuid())
            self.login_user = self.internal_user = mail_user.pw_name
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        b = self.base
        for d in ("etc", "run", "state", "log", "mail"):
            (b / d).mkdir(parents=True, exist_ok=True)
        os.chmod(b, 0o755)
        os.chown(b / "mail", self.uid, self.gid)
        os.chmod(b / "log", 0o777)
        (b / "etc" / "passwd").write_text("")
        self._make_cert()
        conf = CONF.format(
            base=b,
            port=self.port,
            tls_port=self.tls_port,
            login_user=self.login_user,
            internal_user=self.internal_user,
            uid=self.uid,
        )
        (b / "etc" / "dovecot.conf").write_text(conf)
        # output to a file, not a pipe: the daemon's children would hold a pipe open forever
        with open(b / "log" / "start.log", "ab") as log:
            subprocess.run(
                [DOVECOT, "-c", str(b / "etc" / "dovecot.conf")],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self.pid = int((b / "run" / "master.pid").read_text().strip())
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not come up; see {b / 'log' / 'dovecot.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
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

    # ---- users -----------------------------------------------------------------------------
    def new_user(self, prefix: str = "u") -> User:
        name = f"{prefix}{next(self._ids)}"
        home = self.base / "mail" / name
        with open(self.base / "etc" / "passwd", "a") as f:
            f.write(f"{name}:{{PLAIN}}pw-{name}:{self.uid}:{self.gid}::{home}::\n")
        return User(name, f"pw-{name}", home)

    def client(self, user: User) -> imaplib.IMAP4:
        """A plain imaplib client logged in as ``user``: the tests' independent view."""
        c = imaplib.IMAP4("127.0.0.1", self.port)
        c.login(user.name, user.password)
        return c

    # ---- command counts --------------------------------------------------------------------
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


def start_dovecot() -> Dovecot:
    base = Path(tempfile.mkdtemp(prefix="mailtwin-dovecot-"))
    d = Dovecot(base)
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
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{base}/etc/cert.pem
ssl_key = <{base}/etc/key.pem
default_login_user = {login_user}
default_internal_user = {internal_user}
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
  driver = passwd-file
  args = scheme=PLAIN {base}/etc/passwd
}}
userdb {{
  driver = passwd-file
  args = {base}/etc/passwd
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

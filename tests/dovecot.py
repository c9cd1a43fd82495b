"""A private Dovecot for tests: own config and directory, free ports on 127.0.0.1, stopped by PID.

One server per test session; each test takes fresh users (`new_user`) so tests never see each
other's mail (any name logs in with password `pw-<name>`).
The launcher itself lives in `mailtwin.demo.server`, shared with `mailtwin demo`.
"""

from __future__ import annotations

from mailtwin.demo.server import DOVEADM, DOVECOT, Dovecot, User, free_port, start_dovecot

__all__ = ["DOVEADM", "DOVECOT", "Dovecot", "User", "free_port", "start_dovecot"]

"""Shared fixtures: a real Dovecot (see dovecot.py) and hypothesis profiles."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.dovecot import DOVECOT, Dovecot, User, start_dovecot

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One private Dovecot for the session. In CI a missing Dovecot fails; it never skips."""
    if not Path(DOVECOT).exists() and not shutil.which("dovecot"):
        if os.environ.get("CI"):
            pytest.fail("dovecot is not installed (CI must install dovecot-imapd)")
        pytest.skip("dovecot is not installed: apt-get install dovecot-imapd")
    d = start_dovecot()
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(d.base, ignore_errors=True)


@pytest.fixture
def imap_user(dovecot: Dovecot) -> User:
    """A fresh, empty IMAP account on the session's Dovecot."""
    return dovecot.new_user()


@pytest.fixture(autouse=True)
def _no_secrets_from_other_tests() -> Iterator[None]:
    """Passwords registered for masking are process-wide: one test's ("a", say) would mask
    letters in every later test's output."""
    from mailtwin.ui import redact

    yield
    redact.forget()

"""Fixtures for end-to-end tests: a fault-injecting proxy in front of the session's Dovecot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dovecot import Dovecot
from tests.proxy import Proxy


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[Proxy]:
    """A proxy on a free 127.0.0.1 port forwarding to Dovecot; stopped (threads joined) after."""
    with Proxy(dovecot.port) as p:
        yield p

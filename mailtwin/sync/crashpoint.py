"""A test-only crash hook: ``MAILTWIN_TEST_CRASH_AT=N`` ends the process at the Nth step.

The steps are the points where a real crash leaves something half done: after a batch is
journaled, after each copied message lands, after a batch of effects and before it is recorded,
after it is recorded. Tests crash at every step in turn, run again, and check that both sides
converge with nothing lost and nothing duplicated (as isync's test suite does with -Ts<N>).
``MAILTWIN_TEST_CRASH_LOG=FILE`` appends each step's name to FILE, to count them.
Never set these outside tests.
"""

from __future__ import annotations

import os

_AT = int(os.environ.get("MAILTWIN_TEST_CRASH_AT", "0") or 0)
_LOG = os.environ.get("MAILTWIN_TEST_CRASH_LOG")
_count = 0
ACTIVE = bool(_AT or _LOG)
EXIT_CODE = 86


def step(what: str) -> None:
    if not ACTIVE:
        return
    global _count
    _count += 1
    if _LOG:
        with open(_LOG, "a") as f:
            f.write(f"{_count} {what}\n")
    if _count == _AT:
        os._exit(EXIT_CODE)  # no cleanup, no flush: as a power cut or kill -9 would

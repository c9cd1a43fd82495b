"""The process's shared outputs beside the UI's own lines: ``-d`` debug lines and crash reports.

Both go to stderr and to the ``-l`` log file (when the UI opened one), with secrets masked.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from mailtwin.ui.redact import redact

_log: TextIO | None = None
# what a terminal would act on (escape sequences, carriage returns) or cannot encode (lone
# surrogates from undecodable names): a hostile server's folder name must not rewrite the screen
_UNPRINTABLE = "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]"


def _escape(m: re.Match[str]) -> str:
    return repr(m.group())[1:-1]


def clean(text: str) -> str:
    """``text`` fit to print: secrets masked, control characters shown escaped (``\\x1b``);
    newlines and tabs stay."""
    text = redact(text)
    if text.isprintable():  # the usual line: none of _UNPRINTABLE is printable
        return text
    return re.sub(_UNPRINTABLE, _escape, text)


def has_log() -> bool:
    """Whether lines are copied to a log file (``-l``)."""
    return _log is not None


def set_log(log: TextIO | None) -> None:
    """Where lines are copied besides stderr (``-l``)."""
    global _log
    _log = log


def log_line(line: str) -> None:
    """Copy an already masked line to the log file, if any."""
    if _log is not None:
        _log.write(line + "\n")
        _log.flush()


def debug(category: str, line: str) -> None:
    """One ``-d`` line, e.g. ``debug("imap[Remote]", "C: M1 SELECT INBOX")``."""
    out = clean(f"{category}: {line}")
    print(out, file=sys.stderr, flush=True)
    log_line(out)


def capture_logging() -> None:
    """Route Python's logging (asyncio's "Task exception was never retrieved" and the like,
    with their tracebacks) through the same masking, to stderr and the log."""
    import logging

    class _Masked(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                text = clean(self.format(record))
            except Exception:  # logging must never raise
                self.handleError(record)
                return
            print(text, file=sys.stderr, flush=True)
            log_line(text)

    root = logging.getLogger()
    if not any(type(h).__name__ == "_Masked" for h in root.handlers):
        handler = _Masked(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)


def crash(exc: BaseException) -> None:
    """A traceback for a bug report: frames and the message, never local variables, secrets
    masked."""
    import traceback

    text = clean("".join(traceback.format_exception(exc)).rstrip("\n"))
    print(text, file=sys.stderr, flush=True)
    log_line(text)

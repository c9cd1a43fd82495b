"""ui/redact.py and ui/output.py: registered secrets and LOGIN / AUTHENTICATE arguments never
reach an output line; control characters are shown escaped."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailtwin.ui import output, redact
from mailtwin.ui.redact import MASK


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    redact.forget()
    yield
    redact.forget()


def test_registered_secrets_are_masked_everywhere_in_a_line() -> None:
    redact.register("hunter2")
    redact.register(b"ya29.token-abc")
    line = "login failed for hunter2 (hunter2!) with Bearer ya29.token-abc"
    assert redact.redact(line) == f"login failed for {MASK} ({MASK}!) with Bearer {MASK}"


def test_quoted_and_repr_forms_are_masked() -> None:
    pw = "a\"b\\c'd"
    redact.register(pw)
    quoted = '"' + pw.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert pw not in redact.redact(f"x {pw} y")
    assert redact.redact(quoted) == f'"{MASK}"'
    assert repr(pw)[1:-1] not in redact.redact(f"RuntimeError({pw!r})")


def test_plain_blobs_are_masked() -> None:
    redact.register_plain("joe", "pw-joe")
    for raw in (b"\0joe\0pw-joe", b"joe\0joe\0pw-joe"):
        blob = base64.b64encode(raw).decode()
        assert blob not in redact.redact(f"C: M1 authenticate plain {blob}")


def test_longest_secret_wins() -> None:
    redact.register("abc")
    redact.register("abcdef")
    assert redact.redact("xabcdefx abc") == f"x{MASK}x {MASK}"


def test_commands_are_masked_by_shape_without_registration() -> None:
    assert redact.redact('C: M1 LOGIN joe "s3 cret"') == f"C: M1 LOGIN joe {MASK}"
    assert redact.redact("C: M1 LOGIN joe s3cret") == f"C: M1 LOGIN joe {MASK}"
    assert redact.redact("C: M2 LOGIN {3} {6}") == f"C: M2 LOGIN {{3}} {MASK}"
    assert redact.redact("C: M1 AUTHENTICATE PLAIN AGpvZQBwdw==") == (
        f"C: M1 AUTHENTICATE PLAIN {MASK}"
    )
    assert redact.redact("C: M1 AUTHENTICATE XOAUTH2 dXNlcj1q") == (
        f"C: M1 AUTHENTICATE XOAUTH2 {MASK}"
    )
    # prose and capabilities stay as they are
    for line in (
        "login as 'joe' refused: [AUTHENTICATIONFAILED] Authentication failed.",
        "S: * CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=PLAIN LOGIN-REFERRALS",
        "S: * OK [CAPABILITY IMAP4rev1 AUTH=LOGIN AUTH=CRAM-MD5 AUTH=XOAUTH2] ready",
        "S: * CAPABILITY IMAP4rev1 LOGIN X Y AUTHENTICATE PLAIN Z",
        "C: M1 AUTHENTICATE PLAIN",
    ):
        assert redact.redact(line) == line


def test_nothing_registered_changes_nothing() -> None:
    redact.register("")
    redact.register(None)
    assert redact.redact("plain text") == "plain text"


def test_clean_escapes_what_a_terminal_acts_on() -> None:
    assert output.clean("a\x1b[2Jb\r\x07c\udcff") == "a\\x1b[2Jb\\r\\x07c\\udcff"
    assert output.clean("two\n\tlines é ☺") == "two\n\tlines é ☺"
    assert output.clean("one line é ☺\xa0") == "one line é ☺\xa0"  # printable: as is
    assert output.clean("\x85\x9b1m") == "\\x85\\x9b1m"  # C1 controls too


def test_quiet_ui_says_only_problems(capsys: pytest.CaptureFixture[str]) -> None:
    from mailtwin.ui import events as ev
    from mailtwin.ui.text import make_ui

    redact.register("hunter2")
    emit = make_ui("quiet", capture=False)
    emit(ev.AccountStarted("a"))
    emit(ev.AccountDone("a", True, 0.1))
    emit(ev.Failed("a", "login hunter2 refused\x1b[2J", hint="check it"))
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == f"ERROR: account a: login {MASK} refused\\x1b[2J\n  hint: check it\n"


def test_quiet_ui_still_logs_everything(tmp_path: Path) -> None:
    from mailtwin.ui import events as ev
    from mailtwin.ui.text import make_ui

    log = tmp_path / "log"
    try:
        emit = make_ui("quiet", logfile=log, capture=False)
        emit(ev.AccountStarted("a\x1b"))
    finally:
        output.set_log(None)
    assert log.read_text() == "account a\\x1b: syncing\n"


def test_debug_lines_and_crashes_go_masked_to_stderr_and_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    redact.register("hunter2")
    log = io.StringIO()
    output.set_log(log)
    try:
        output.debug("imap[R]", 'C: M1 LOGIN joe "hunter2"')
        try:
            secret = "hunter2"  # a local: tracebacks never show locals
            raise RuntimeError(f"boom {secret}")
        except RuntimeError as e:
            output.crash(e)
    finally:
        output.set_log(None)
    err = capsys.readouterr().err
    for text in (err, log.getvalue()):
        assert "hunter2" not in text
        assert "imap[R]: C: M1 LOGIN joe <redacted>" in text
        assert "RuntimeError: boom <redacted>" in text and "Traceback" in text


def test_python_logging_goes_masked_to_stderr_and_log(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    redact.register("hunter2")
    log = io.StringIO()
    output.set_log(log)
    root = logging.getLogger()
    # an earlier in-process run (the CLI tests) may have installed it already
    root.handlers[:] = [h for h in root.handlers if type(h).__name__ != "_Masked"]
    before = list(root.handlers)
    try:
        output.capture_logging()
        output.capture_logging()  # once is enough
        assert len(root.handlers) == len(before) + 1
        try:
            raise RuntimeError("token hunter2")
        except RuntimeError:
            logging.getLogger("asyncio").exception("Task exception was never retrieved")
    finally:
        root.handlers[:] = before
        output.set_log(None)
    err = capsys.readouterr().err
    for text in (err, log.getvalue()):
        assert "asyncio: Task exception was never retrieved" in text
        assert "RuntimeError: token <redacted>" in text and "hunter2" not in text

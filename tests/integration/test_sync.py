"""IMAP ↔ Maildir through the CLI, on a real Dovecot, with an OfflineIMAP-format config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dovecot import Dovecot, User
from tests.integration.helpers import Env, lf, msg, server_writes


@pytest.fixture
def env(dovecot: Dovecot, imap_user: User, tmp_path: Path) -> Env:
    e = Env(dovecot, imap_user, tmp_path)
    e.write_config()
    return e


def test_initial_sync_is_complete_and_byte_exact(env: Env) -> None:
    big = b"Message-ID: <big@example.org>\r\nSubject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 10_600
    bodies = {
        "INBOX": [
            msg(1),
            b"Message-ID: <lf@example.org>\nSubject: bare LF\n\nline one\nline two\n",
            b"Message-ID: <8bit@example.org>\r\nSubject: 8bit\r\n\r\ncaf\xc3\xa9 \xff\xfe\r\n",
            b"Subject: no message id\r\n\r\nanonymous\r\n",
            b"Message-ID: <nofinal@example.org>\r\nSubject: x\r\n\r\nno final newline",
            big,
        ],
        "Work/Projects": [msg(10), msg(11)],
        "Работа": [msg(20)],
    }
    for folder, items in bodies.items():
        for i, b in enumerate(items):
            env.append(folder, b, "\\Seen" if i % 2 else "", create=(i == 0 and folder != "INBOX"))
    env.store("INBOX", 1, "+FLAGS", "\\Flagged \\Answered")
    env.run()
    for folder, local_name in (
        ("INBOX", "INBOX"),
        ("Work/Projects", "Work.Projects"),
        ("Работа", "&BCAEMAQxBD4EQgQw-"),
    ):
        srv = env.server(folder)
        loc = env.local(local_name)
        assert sorted(lf(b) for _, b in srv.values()) == sorted(b for _, b, _ in loc.values())
        by_body = {lf(b): f for f, b in srv.values()}
        for flags, body, _ in loc.values():
            assert flags == by_body[body] - {"\\Recent"}
    assert len(big) > 10 * 1024 * 1024


def test_second_sync_changes_nothing(env: Env, dovecot: Dovecot) -> None:
    for i in range(5):
        env.append("INBOX", msg(i), "\\Seen" if i % 2 else "", create=False)
    env.add_local("INBOX", "1700000000.local1.host", msg("L1"), "S")
    env.run()
    before = env.listing()
    dovecot.command_counts(reset=True)
    env.run()
    assert server_writes(dovecot.command_counts()) == {}
    assert env.listing() == before


def test_changes_propagate_both_ways(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    env.append("INBOX", msg(2), create=False)
    env.append("INBOX", msg(3), "\\Seen", create=False)
    env.run()
    loc = env.local("INBOX")
    by_body = {b: (k, p) for k, (_, b, p) in loc.items()}
    srv = env.server("INBOX")
    uid_of = {lf(b): uid for uid, (_, b) in srv.items()}
    # server: new mail, a flag, an expunge
    env.append("INBOX", msg(4), create=False)
    env.store("INBOX", uid_of[lf(msg(1))], "+FLAGS", "\\Flagged")
    env.expunge("INBOX", uid_of[lf(msg(2))])
    # local: new mail, a flag, a deletion
    env.add_local("INBOX", "1700000001.new.host", lf(msg(5)), "")
    _, p3 = by_body[lf(msg(3))]
    p3.rename(p3.with_name(p3.name.split(":")[0] + ":2,RS"))
    env.run()
    srv = env.server("INBOX")
    loc = env.local("INBOX")
    want = {lf(msg(n)) for n in (1, 3, 4, 5)}
    assert {lf(b) for _, b in srv.values()} == want
    assert {b for _, b, _ in loc.values()} == want
    sflags = {lf(b): f for f, b in srv.values()}
    lflags = {b: f for f, b, _ in loc.values()}
    assert sflags[lf(msg(1))] == lflags[lf(msg(1))] == {"\\Flagged"}
    assert sflags[lf(msg(3))] == lflags[lf(msg(3))] == {"\\Seen", "\\Answered"}
    # and local deletion reaches the server
    for _k, (_, b, p) in env.local("INBOX").items():
        if b == lf(msg(4)):
            p.unlink()
    env.run()
    assert {lf(b) for _, b in env.server("INBOX").values()} == want - {lf(msg(4))}


def test_concurrent_flags_are_united(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    env.run()
    ((key, (_, _, path)),) = env.local("INBOX").items()
    env.store("INBOX", 1, "+FLAGS", "\\Flagged")
    path.rename(path.with_name(f"{key}:2,S"))
    env.run()
    ((flags, _),) = env.server("INBOX").values()
    assert flags == {"\\Flagged", "\\Seen"}
    ((lflags, _, _),) = env.local("INBOX").values()
    assert lflags == {"\\Flagged", "\\Seen"}


def test_new_mail_on_both_sides_copied_exactly_once(env: Env) -> None:
    env.append("INBOX", msg(1), create=False)
    env.run()
    env.append("INBOX", msg(2), create=False)
    env.add_local("INBOX", "1700000002.x.host", lf(msg(3)), "S")
    env.run()
    env.run()
    srv = sorted(lf(b) for _, b in env.server("INBOX").values())
    loc = sorted(b for _, b, _ in env.local("INBOX").values())
    assert srv == loc == sorted(lf(msg(n)) for n in (1, 2, 3))


def test_readonly_remote_is_never_written(env: Env, dovecot: Dovecot) -> None:
    env.write_config(remote="readonly = True")
    env.append("INBOX", msg(1), create=False)
    env.append("Archive", msg(2))
    env.add_local("INBOX", "1700000003.x.host", lf(msg(3)), "")
    env.add_local("LocalOnly", "1700000004.x.host", lf(msg(4)), "")
    dovecot.command_counts(reset=True)
    env.run()
    ((key, (_, _, path)),) = [(k, v) for k, v in env.local("INBOX").items() if v[1] == lf(msg(1))]
    path.rename(path.with_name(f"{key}:2,FS"))
    path = next(iter(env.local("Archive").values()))[2]
    path.unlink()
    env.run()
    assert server_writes(dovecot.command_counts()) == {}
    assert len(env.server("INBOX")) == 1 and len(env.server("Archive")) == 1
    assert "LocalOnly" not in env.server_folders()
    # the server's mail did arrive, and the local-only message stayed local
    assert {b for _, b, _ in env.local("INBOX").values()} == {lf(msg(1)), lf(msg(3))}


def test_sync_deletes_no_keeps_local_copy(env: Env) -> None:
    env.write_config(remote="sync_deletes = no")
    env.append("INBOX", msg(1), create=False)
    env.append("INBOX", msg(2), create=False)
    env.run()
    env.expunge("INBOX", 1)
    env.run()
    env.run()
    assert len(env.local("INBOX")) == 2
    assert len(env.server("INBOX")) == 1  # and the kept copy is not uploaded again


def test_expunge_no_only_marks_deleted(env: Env) -> None:
    env.write_config(remote="expunge = no")
    env.append("INBOX", msg(1), create=False)
    env.run()
    next(iter(env.local("INBOX").values()))[2].unlink()
    env.run()
    ((flags, _),) = env.server("INBOX").values()
    assert "\\Deleted" in flags
    env.run()
    assert env.local("INBOX") == {}


def test_dry_run_changes_nothing_and_names_the_plan(env: Env, dovecot: Dovecot) -> None:
    env.append("INBOX", msg(1), create=False)
    env.run()
    env.append("INBOX", msg(2), create=False)
    env.append("ServerNew", msg(3))
    env.add_local("INBOX", "1700000005.x.host", lf(msg(4)), "")
    env.add_local("LocalNew", "1700000006.x.host", lf(msg(5)), "")
    before = env.listing()
    dovecot.command_counts(reset=True)
    p = env.run("--dry-run")
    assert server_writes(dovecot.command_counts()) == {}
    assert env.listing() == before
    out = p.stdout
    assert "would create folder ServerNew on the local side" in out
    assert "would create folder LocalNew on the remote side" in out
    assert "copy remote 2 → local" in out
    assert "copy local 1700000005.x.host → remote" in out


def test_folderfilter_nametrans_includes_and_flags(env: Env) -> None:
    env.write_config(
        remote="""folderfilter = lambda f: f not in ['Spam', 'Extra']
nametrans = lambda f: re.sub('^Lists/', 'L.', f)
folderincludes = ['Extra']""",
        local="""nametrans = lambda f: re.sub('^L\\\\.', 'Lists/', f)""",
    )
    env.append("Spam", msg(1))
    env.append("Lists/dev", msg(2))
    env.append("Extra", msg(3))
    env.append("Other", msg(4))
    env.run("-f", "Lists/dev,Extra")
    assert sorted(p.name for p in env.maildir.iterdir()) == ["Extra", "L.dev"]
    env.run()
    assert sorted(p.name for p in env.maildir.iterdir()) == ["Extra", "INBOX", "L.dev", "Other"]
    # a local folder maps back through the local nametrans
    env.add_local("L.new", "1700000007.x.host", lf(msg(5)))
    env.run()
    assert "Lists/new" in env.server_folders()
    # -k overrides an option; `_` stands for the space in the section name
    env.append("Other", msg(6), create=False)
    env.run("-k", "Repository_test-remote:folderfilter=lambda f: False")
    assert len(env.local("Other")) == 1
    env.run()
    assert len(env.local("Other")) == 2


def test_accounts_flag_picks_accounts(env: Env) -> None:
    text = env.config.read_text().replace("accounts = test", "accounts = test, broken")
    text += """
[Account broken]
localrepository = test-local
remoterepository = broken-remote

[Repository broken-remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = 1
remoteuser = x
remotepass = y
ssl = no
starttls = no
"""
    env.config.write_text(text)
    env.append("INBOX", msg(1), create=False)
    assert env.run(check=False).returncode == 1  # the broken account fails, test syncs
    assert len(env.local("INBOX")) == 1
    env.append("INBOX", msg(2), create=False)
    p = env.run("-a", "test")
    assert "broken" not in p.stdout + p.stderr
    assert len(env.local("INBOX")) == 2


def test_bad_password_closed_port_and_config_error(env: Env, dovecot: Dovecot) -> None:
    env.append("INBOX", msg(1), create=False)
    env.write_config(password="wrong-secret")
    p = env.run(check=False)
    assert p.returncode == 1, p.stderr
    assert "wrong-secret" not in p.stderr + p.stdout
    assert len(p.stderr.strip().splitlines()) <= 2, p.stderr
    assert not env.maildir.exists() or not any(env.maildir.iterdir())

    env.write_config(port=1)
    p = env.run(check=False)
    assert p.returncode == 1 and "127.0.0.1:1" in p.stderr, p.stderr

    env.write_config(remote="maxconnections = many")
    p = env.run(check=False)
    assert p.returncode == 2
    assert "maxconnections" in p.stderr and "many" in p.stderr
    assert len(p.stderr.strip().splitlines()) <= 2, p.stderr
    assert len(env.server("INBOX")) == 1


def test_second_instance_is_refused(env: Env) -> None:
    import fcntl

    (env.tmp / "meta").mkdir()
    with open(env.tmp / "meta" / "test.lock", "w") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as OfflineIMAP holds it
        p = env.run(check=False)
    assert p.returncode == 3
    assert "another process" in p.stderr


def test_ssl_with_system_trusted_certificate(env: Env, dovecot: Dovecot) -> None:
    env.write_config(port=dovecot.tls_port, ssl=True)
    env.append("INBOX", msg(1), create=False)
    env.run(env={"SSL_CERT_FILE": str(dovecot.cert)})
    assert len(env.local("INBOX")) == 1
    p = env.run(check=False, env={"SSL_CERT_FILE": "/nonexistent"})
    assert p.returncode == 1 and "certificate" in p.stderr.lower()


def test_host_and_port_from_the_pythonfile(env: Env) -> None:
    """remotehosteval and remoteporteval reach the server the helpers name."""
    (env.tmp / "helpers.py").write_text(
        f"def host():\n    return '127.0.0.1'\nPORT = {env.dovecot.port}\n"
    )
    env.write_config(
        general=f"pythonfile = {env.tmp}/helpers.py",
        remote="remotehosteval = host()\nremoteporteval = PORT",
        port=1,  # remoteport: overridden
    )
    text = env.config.read_text().replace("remotehost = 127.0.0.1", "remotehost = unused.invalid")
    env.config.write_text(text)
    env.append("INBOX", msg(1), create=False)
    env.run()
    assert [b for _, b, _ in env.local("INBOX").values()] == [lf(msg(1))]

from tests.dovecot import Dovecot, User


def test_fixture_serves_fresh_users(dovecot: Dovecot, imap_user: User) -> None:
    c = dovecot.client(imap_user)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"0"]
    c.append("INBOX", None, None, b"Subject: x\r\n\r\nbody\r\n")
    c.logout()
    counts = dovecot.command_counts()
    assert counts.get("APPEND") == 1

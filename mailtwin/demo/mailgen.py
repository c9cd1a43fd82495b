"""A deterministic, realistic-looking mailbox: the same seed gives the same bytes.

Pure: no I/O. Folder names are tuples of parts; the filler joins them with the server's delimiter.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

Folder = tuple[str, ...]

# (folder, weight): nested, and non-ASCII names (modified UTF-7 on the wire)
FOLDERS: list[tuple[Folder, int]] = [
    (("INBOX",), 40),
    (("Archive",), 22),
    (("Work",), 6),
    (("Work", "Projects"), 16),
    (("Größe",), 8),
    (("Работа",), 8),
]
PEOPLE = [
    ("Alice", "Smith"), ("Bob", "Müller"), ("Chloé", "Dubois"), ("Dmitri", "Ivanov"),
    ("Eve", "Tanaka"), ("François", "Rossi"), ("Greta", "Larsen"), ("Hiro", "Okafor"),
    ("Ingrid", "García"), ("José", "Silva"), ("Lena", "Kowalski"), ("Priya", "Patel"),
    ("Søren", "Nguyen"), ("Tomás", "O'Brien"),
]  # fmt: skip
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example"]
ME = Address("Demo User", "demo", "mailtwin.example")
TOPICS = [
    "quarterly report", "release 2.4", "server migration", "budget review", "team offsite",
    "invoice #{n}", "patch review", "backup schedule", "Größenänderung der Ablage",
    "отчёт за неделю", "customer incident {n}", "draft proposal", "meeting notes",
]  # fmt: skip
WORDS = (  # noqa: SIM905 (a list literal of 50 words would be longer)
    "the of and to in is that for it as with on be by this are from at or have not meeting "
    "report budget release server folder sync patch review deadline invoice schedule proposal "
    "draft update question thanks please attached latest version backup storage index cache "
    "config deploy customer order naïve café résumé"
).split()
ATTACHMENTS = [("report.pdf", "application", "pdf"), ("photo.jpg", "image", "jpeg")]


@dataclass(frozen=True, slots=True)
class DemoMessage:
    folder: Folder
    raw: bytes  # CRLF line ends, as on the wire
    flags: tuple[str, ...]
    date: datetime


def _address(rnd: random.Random) -> Address:
    first, last = rnd.choice(PEOPLE)
    ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
    local = ascii_name.decode().lower().replace("'", "")
    return Address(f"{first} {last}", local, rnd.choice(DOMAINS))


def _body(rnd: random.Random, sender: Address) -> str:
    paras = []
    for _ in range(rnd.randint(1, 4)):
        lines = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 12))) for _ in range(3)]
        paras.append("\n".join(line.capitalize() + "." for line in lines))
    return "Hi,\n\n" + "\n\n".join(paras) + f"\n\nRegards,\n{sender.display_name}\n"


def _flags(rnd: random.Random) -> tuple[str, ...]:
    flags = []
    if rnd.random() < 0.6:
        flags.append("\\Seen")
    if rnd.random() < 0.1:
        flags.append("\\Answered")
    if rnd.random() < 0.08:
        flags.append("\\Flagged")
    return tuple(flags)


def generate(n: int = 200, seed: int = 1) -> list[DemoMessage]:
    """``n`` messages spread over FOLDERS; about one in twenty carries an attachment."""
    rnd = random.Random(seed)
    folders = [f for f, _ in FOLDERS]
    weights = [w for _, w in FOLDERS]
    start = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        sender = _address(rnd)
        tz = timezone(timedelta(hours=rnd.choice([-5, 0, 1, 2, 3, 9])))
        date = (start - timedelta(minutes=rnd.randint(0, 2 * 365 * 24 * 60))).astimezone(tz)
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = ME
        if rnd.random() < 0.2:
            msg["Cc"] = _address(rnd)
        topic = rnd.choice(TOPICS).format(n=rnd.randint(100, 999))
        msg["Subject"] = ("Re: " if rnd.random() < 0.3 else "") + topic.capitalize()
        msg["Date"] = format_datetime(date)
        msg["Message-ID"] = f"<{seed}.{i}.{rnd.getrandbits(48):012x}@demo.mailtwin.example>"
        msg.set_content(_body(rnd, sender))
        if rnd.random() < 0.05:
            name, maintype, subtype = rnd.choice(ATTACHMENTS)
            data = rnd.randbytes(rnd.randint(2_000, 12_000))
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
            msg.set_boundary(f"=_mailtwin_demo_{seed}_{i}")  # the default is random
        folder = rnd.choices(folders, weights)[0]
        out.append(DemoMessage(folder, msg.as_bytes(policy=SMTP), _flags(rnd), date))
    return out

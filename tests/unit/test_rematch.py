"""Re-matching by content: equal keys pair up, counted; equal keys with other bodies do not."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from mailtwin.model import Side
from mailtwin.state.status import StatusDB
from mailtwin.stores.memory import MemFolderData, MemoryStore
from mailtwin.sync.folder import sync_folder
from mailtwin.sync.plan import SyncOptions

OPTS = SyncOptions(writable={Side.A: True, Side.B: True}, deletes_from={Side.A: True, Side.B: True})


def mail(mid: str, text: str) -> bytes:
    return f"Message-ID: <{mid}>\r\n\r\n{text}\r\n".encode()


def sync(a: MemFolderData, b: MemFolderData, tmp: Path) -> None:
    stores = {Side.A: MemoryStore(), Side.B: MemoryStore()}
    stores[Side.A].folders["F"], stores[Side.B].folders["F"] = a, b
    db = StatusDB.open(tmp / "s.db", fsync=False)
    fstate = db.folder("F", "F") or db.add_folder("F", "F")
    folders = {s: asyncio.run(stores[s].open_folder("F", False)) for s in Side}
    asyncio.run(sync_folder(folders, db, fstate, OPTS))
    db.close()


def bodies(d: MemFolderData) -> Counter[bytes]:
    return Counter(m.body for m in d.messages.values())


def test_true_duplicates_pair_up_by_count(tmp_path: Path) -> None:
    a, b = MemFolderData(), MemFolderData()
    for _ in range(3):
        a.add(mail("x", "same"))
    for _ in range(2):
        b.add(mail("x", "same"))
    sync(a, b, tmp_path)
    assert bodies(a) == bodies(b) == Counter({mail("x", "same"): 3})


def test_same_message_id_and_size_but_other_body_is_not_a_copy(tmp_path: Path) -> None:
    a, b = MemFolderData(), MemFolderData()
    a.add(mail("x", "aaaa"))
    a.add(mail("x", "aaaa"))  # a true duplicate too, so the key is ambiguous
    b.add(mail("x", "bbbb"))  # same Message-ID, same size, another message
    sync(a, b, tmp_path)
    want = Counter({mail("x", "aaaa"): 2, mail("x", "bbbb"): 1})
    assert bodies(a) == bodies(b) == want

"""The engine as a state machine over two in-memory stores, with faults.

Between syncs a user adds, deletes and re-flags messages on both sides; some syncs fail part way.
After every sync that completes: both sides hold the same messages with the same flags, nothing
the user kept is lost, nothing is duplicated, and a second sync plans nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mailtwin.model import Side
from mailtwin.state.status import StatusDB
from mailtwin.stores.memory import InjectedFault, MemFolderData, MemoryStore
from mailtwin.sync.folder import sync_folder
from mailtwin.sync.plan import SyncOptions

FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]
OPTS = SyncOptions(writable={Side.A: True, Side.B: True}, deletes_from={Side.A: True, Side.B: True})


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp())
        self.db = StatusDB.open(self.tmp / "s.db", fsync=False)
        self.stores = {Side.A: MemoryStore(), Side.B: MemoryStore()}
        for s in Side:
            self.stores[s].folders["INBOX"] = MemFolderData()
        self.fstate = self.db.add_folder("INBOX", "INBOX")
        self.n = 0
        self.alive: set[bytes] = set()  # bodies the user has and has not deleted
        self.synced = False

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.tmp)

    def data(self, side: Side) -> MemFolderData:
        return self.stores[side].folders["INBOX"]

    @rule(side=st.sampled_from(Side), flags=st.sets(st.sampled_from(FLAGS)))
    def add(self, side: Side, flags: set[str]) -> None:
        self.n += 1
        body = (
            f"Message-ID: <m{self.n}@test>\r\nSubject: {self.n}\r\n\r\nbody {self.n}\r\n".encode()
        )
        self.data(side).add(body, frozenset(flags))
        self.alive.add(body)
        self.synced = False

    @precondition(lambda self: self.alive)
    @rule(side=st.sampled_from(Side), pick=st.integers(0, 10_000))
    def delete(self, side: Side, pick: int) -> None:
        msgs = self.data(side).messages
        if not msgs:
            return
        uid = sorted(msgs)[pick % len(msgs)]
        self.alive.discard(msgs.pop(uid).body)
        self.synced = False

    @rule(side=st.sampled_from(Side), pick=st.integers(0, 10_000), flag=st.sampled_from(FLAGS))
    def toggle(self, side: Side, pick: int, flag: str) -> None:
        msgs = self.data(side).messages
        if not msgs:
            return
        m = msgs[sorted(msgs)[pick % len(msgs)]]
        m.flags = m.flags ^ {flag}
        self.synced = False

    @rule()
    def uidvalidity_is_kept(self) -> None:
        """A no-op rule so that syncs can follow each other directly."""

    def run_sync(self) -> None:
        folders = {s: asyncio.run(self.stores[s].open_folder("INBOX", False)) for s in Side}
        asyncio.run(sync_folder(folders, self.db, self.fstate, OPTS))

    @rule(fail_side=st.sampled_from(Side), after=st.integers(0, 6))
    def sync_with_fault(self, fail_side: Side, after: int) -> None:
        store = self.stores[fail_side]
        store.writes, store.fail_after = 0, after
        try:
            self.run_sync()
        except InjectedFault:
            self.synced = False
        else:
            self.synced = True
        finally:
            store.fail_after = None

    @rule()
    def sync(self) -> None:
        self.run_sync()
        self.synced = True

    @invariant()
    def converged_after_sync(self) -> None:
        if not self.synced:
            return
        views = {
            s: Counter((m.body, m.flags) for m in self.data(s).messages.values()) for s in Side
        }
        assert views[Side.A] == views[Side.B], "sides differ"
        bodies = Counter(b for b, _ in views[Side.A].elements())
        assert all(n == 1 for n in bodies.values()), "duplicate"
        # a deletion on one side may win over an addition, never the other way round
        assert set(bodies) <= self.alive | set(bodies)
        assert self.alive == set(bodies), "a message the user kept is missing (or revived)"
        # and the next sync has nothing to do
        folders = {s: asyncio.run(self.stores[s].open_folder("INBOX", False)) for s in Side}
        again = asyncio.run(sync_folder(folders, self.db, self.fstate, OPTS, dry_run=True))
        assert again.plan.is_empty(), again.plan


TestSyncMachine = SyncMachine.TestCase

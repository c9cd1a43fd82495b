"""One folder pair, one sync: snapshot both sides, plan, apply."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from mailtwin.errors import SafetyStop
from mailtwin.model import Side, Snapshot
from mailtwin.state.status import FolderState, StatusDB
from mailtwin.stores.base import Folder
from mailtwin.sync.apply import Report, apply
from mailtwin.sync.plan import Plan, SyncOptions, plan


@dataclass
class FolderResult:
    plan: Plan
    report: Report
    snapshots: Mapping[Side, Snapshot]


async def sync_folder(
    folders: Mapping[Side, Folder],
    db: StatusDB,
    fstate: FolderState,
    opts: SyncOptions,
    dry_run: bool = False,
    label: str = "",
) -> FolderResult:
    snap_a, snap_b = await asyncio.gather(folders[Side.A].snapshot(), folders[Side.B].snapshot())
    snaps = {Side.A: snap_a, Side.B: snap_b}
    pairs = db.pairs(fstate)
    for s in Side:
        known = fstate.uidvalidity(s)
        if known is not None and known != snaps[s].uidvalidity and pairs:
            raise SafetyStop(
                f"folder {label or fstate.name(s)}: UIDVALIDITY changed on side {s.value} "
                f"({known} → {snaps[s].uidvalidity}): the server renumbered every message",
                hint="nothing was changed; to start this folder over, move the status "
                "database aside (mailtwin then re-matches messages by content)",
            )
    p = plan(snap_a, snap_b, pairs, opts)
    if dry_run:
        return FolderResult(p, Report(), snaps)
    if fstate.uidvalidity_a != snap_a.uidvalidity or fstate.uidvalidity_b != snap_b.uidvalidity:
        with db.transaction():
            db.set_uidvalidity(fstate, snap_a.uidvalidity, snap_b.uidvalidity)
    report = await apply(p, folders, db, fstate)
    return FolderResult(p, report, snaps)

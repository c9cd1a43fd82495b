"""One folder pair, one sync: snapshot both sides, plan, apply.

Before planning, what the status remembers is checked against what the stores say. A folder
renumbered on a side (UIDVALIDITY changed) or put back from a backup (UIDNEXT or HIGHESTMODSEQ
lower than recorded) makes the recorded UIDs meaningless: the folder's pairs are forgotten and
its messages re-matched by content, so nothing is deleted and nothing duplicated. The same
re-match pairs up a copy that landed before a crash could record it, and rebuilds a lost state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from mailtwin.model import ContentKey, MessageId, Side, Snapshot
from mailtwin.state.status import FolderState, StatusDB
from mailtwin.stores.base import Folder
from mailtwin.sync.apply import Report, apply
from mailtwin.sync.plan import Plan, SyncOptions, plan, unpaired

SIDE_NAME = {Side.A: "local", Side.B: "remote"}


@dataclass
class FolderResult:
    plan: Plan
    report: Report
    snapshots: Mapping[Side, Snapshot]
    warnings: list[str] = field(default_factory=list)


def renumbered(fstate: FolderState, side: Side, snap: Snapshot) -> str | None:
    """Why the recorded UIDs of ``side`` no longer hold, or None when they do."""
    known = fstate.uidvalidity(side)
    if known is None:
        return None
    if known != snap.uidvalidity:
        return f"UIDVALIDITY changed ({known} → {snap.uidvalidity})"
    uidnext = fstate.uidnext(side)
    if uidnext and snap.uidnext and snap.uidnext < uidnext:
        return f"UIDNEXT went back ({uidnext} → {snap.uidnext}): restored from a backup?"
    modseq = fstate.modseq(side)
    if modseq and snap.modseq is not None and snap.modseq < modseq:
        return f"HIGHESTMODSEQ went back ({modseq} → {snap.modseq}): restored from a backup?"
    return None


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
    warnings: list[str] = []
    pairs = db.pairs(fstate)
    forget = False
    for s in Side:
        why = renumbered(fstate, s, snaps[s])
        if why and pairs:
            warnings.append(
                f"{SIDE_NAME[s]} side: {why}; matching its messages again by content "
                "(nothing is deleted)"
            )
            forget = True
    if forget:
        pairs = []
    interrupted = db.pending(fstate)
    if interrupted:
        warnings.append(
            f"{interrupted} copies of an earlier run were interrupted; "
            "matching them by content so none is copied twice"
        )

    loose = unpaired(snap_a, snap_b, pairs)
    keys: dict[Side, Mapping[MessageId, ContentKey]] | None = None
    if loose[Side.A] and loose[Side.B]:
        ka, kb = await asyncio.gather(
            folders[Side.A].keys(sorted(loose[Side.A], key=str)),
            folders[Side.B].keys(sorted(loose[Side.B], key=str)),
        )
        keys = {Side.A: ka, Side.B: kb}
    p = plan(snap_a, snap_b, pairs, opts, keys)
    if dry_run:
        return FolderResult(p, Report(), snaps, warnings)
    with db.transaction():
        if forget:
            db.forget_pairs(fstate)
        db.clear_pending(fstate)
        fstate = db.set_sync_point(fstate, snaps)
    report = await apply(p, folders, db, fstate, snaps)
    return FolderResult(p, report, snaps, warnings)

"""One folder pair, one sync: snapshot both sides, plan, apply.

Before planning, what the status remembers is checked against what the stores say. A folder
renumbered on a side (UIDVALIDITY changed) or put back from a backup (UIDNEXT or HIGHESTMODSEQ
lower than recorded) makes the recorded UIDs meaningless: the folder's pairs are forgotten and
its messages re-matched by content, so nothing is deleted and nothing duplicated. The same
re-match pairs up a copy that landed before a crash could record it, and rebuilds a lost state.

A changed folder on a store with mod-sequences (IMAP CONDSTORE / QRESYNC) costs only its
changes: its snapshot is derived from the last sync point (stores/since.py) as the pair rows
with their synced flags, less what vanished, plus what changed or arrived since the sync
point's HIGHESTMODSEQ. That is the folder's true content only when, as of the sync point, (1)
every message of that side was named by a pair row and (2) each one's synced flags were its
flags or a later change moved its mod-sequence. A message that is not named (a copy that
failed, one whose new id a server without UIDPLUS did not tell, one kept alone because the
other side is read-only) has a UID below the recorded UIDNEXT and no new mod-sequence, so a
derived snapshot would never show it again. Hence the side's "covered" mark: the sync point is
recorded (and the mark cleared) before anything is changed; the mark is set only after apply
finished without a failure and, looking at the rows then, every message of that side's snapshot
is named (but those marked \\Deleted: their copy is never made, and un-deleting one moves its
mod-sequence). Apply's own changes all move mod-sequences or add UIDs above UIDNEXT, so (2)
holds, but for a side whose other side is read-only: the rows then record the read-only side's
flags (plan.py, _merge_row), so that side is never marked. A crash, a failure, a safety stop or
a dry run leaves the mark as it was: cleared, or true of the sync point it belongs to.
Forgetting pairs clears it. A pending journal row, a renumbered or restored side (UIDVALIDITY
changed, UIDNEXT or HIGHESTMODSEQ went back, checked by the store), a re-match and a safety
stop's count all ask for full snapshots.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from mailtwin.errors import FolderError, MessageError, SafetyStop
from mailtwin.model import (
    SIDE_NAME,
    ContentKey,
    FolderStamp,
    Frozen,
    MessageId,
    Side,
    Since,
    Snapshot,
    _set,
    replace,
)
from mailtwin.state.rows import PairRow
from mailtwin.state.status import FolderState, StatusDB
from mailtwin.stores.base import Folder
from mailtwin.sync.apply import Report, apply, unkept
from mailtwin.sync.plan import DELETED, Delete, Plan, SyncOptions, plan, unpaired

# an emptied Maildir folder stops the sync when it held more than this many messages; fewer is
# everyday life (the one draft sent, the small Trash emptied)
EMPTIED_MIN = 5


class FolderResult:
    __slots__ = ("plan", "report", "snapshots", "warnings")

    def __init__(
        self,
        plan: Plan,
        report: Report,
        snapshots: Mapping[Side, Snapshot],
        warnings: list[str] | None = None,
    ) -> None:
        self.plan = plan
        self.report = report
        self.snapshots = snapshots
        self.warnings = [] if warnings is None else warnings


class CarryOver(Frozen):
    """Where OfflineIMAP kept its state for this account, to adopt on a first sync."""

    __match_args__ = ("metadata", "account", "remote_repo", "local_repo", "sep_a")
    __slots__ = __match_args__
    metadata: Path
    account: str
    remote_repo: str
    local_repo: str
    sep_a: str

    def __init__(
        self, metadata: Path, account: str, remote_repo: str, local_repo: str, sep_a: str
    ) -> None:
        _set(self, "metadata", metadata)
        _set(self, "account", account)
        _set(self, "remote_repo", remote_repo)
        _set(self, "local_repo", local_repo)
        _set(self, "sep_a", sep_a)


class Safety(Frozen):
    """When a folder stops before deleting, and what the user said to do about it."""

    __match_args__ = ("max_deletes", "max_share", "guard_empty", "restore", "allow_deletions")
    __slots__ = __match_args__
    max_deletes: int
    max_share: int  # percent
    # sides whose store can vanish or empty under us (a Maildir on an unmounted disk, a folder
    # removed to "re-download" it): emptied, they stop the folder whatever the numbers
    guard_empty: Mapping[Side, bool]
    restore: bool
    allow_deletions: bool

    def __init__(
        self,
        max_deletes: int = 50,
        max_share: int = 25,
        guard_empty: Mapping[Side, bool] | None = None,
        restore: bool = False,
        allow_deletions: bool = False,
    ) -> None:
        _set(self, "max_deletes", max_deletes)
        _set(self, "max_share", max_share)
        _set(self, "guard_empty", {} if guard_empty is None else guard_empty)
        _set(self, "restore", restore)
        _set(self, "allow_deletions", allow_deletions)


def too_many_deletions(p: Plan, snaps: Mapping[Side, Snapshot], safety: Safety) -> str | None:
    """Why this plan's deletions need the user's word first, or None."""
    for s in Side:
        n = p.count(Delete, s)
        if not n:
            continue
        held = len(snaps[s].messages)
        gone = s.other
        if safety.guard_empty.get(gone) and not snaps[gone].messages and n > EMPTIED_MIN:
            return (
                f"the {SIDE_NAME[gone]} folder is empty but held mail at the last sync: "
                f"{n} messages would be deleted on the {SIDE_NAME[s]} side"
            )
        if n > safety.max_deletes and n * 100 > safety.max_share * held:
            return (
                f"{n} of its {held} messages would be deleted on the {SIDE_NAME[s]} side "
                f"(more than max_deletes = {safety.max_deletes} and more than "
                f"max_delete_share = {safety.max_share} %)"
            )
    return None


def renumbered(fstate: FolderState, side: Side, snap: Snapshot) -> str | None:
    """Why the recorded UIDs of ``side`` no longer hold, or None when they do (asked only
    when the status pairs messages in this folder)."""
    known = fstate.uidvalidity(side)
    if known is None:
        # pairs are only ever recorded after the sync point: without one they cannot be trusted
        return "the status holds messages but no UIDVALIDITY"
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
    safety: Safety | None = None,
    carry: CarryOver | None = None,
    stamps: Mapping[Side, FolderStamp | None] | None = None,
) -> FolderResult:
    """Sync one folder pair. ``stamps``: each side's stamp taken before the snapshots, recorded
    when the sync finishes without a failure (sync/stamps.py)."""
    safety = safety or Safety()
    refused = {s: fstate.unkept(s) for s in Side}
    if refused[Side.A] or refused[Side.B]:
        opts = replace(opts, unkept=opts.unkept | refused[Side.A] | refused[Side.B])
    pairs = db.pairs(fstate)
    interrupted = db.pending(fstate)
    # the marks as stored now: a caller may have forgotten the pairs since it read ``fstate``
    marks = db.folder(fstate.name_a, fstate.name_b) or fstate
    since = {s: None if interrupted else trusted(marks, s, pairs) for s in Side}
    snaps = await _snapshots(folders, since)
    warnings: list[str] = []
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
        snaps = await _snapshots(folders, {s: None for s in Side}, snaps)
    if carry is not None and not pairs and fstate.uidvalidity_b is None:
        # never synced by mailtwin: take over what OfflineIMAP knew, if it synced this folder
        pairs = _adopt(carry, fstate, snaps, folders[Side.A], warnings)
        if pairs and not dry_run:
            with db.transaction():
                db.insert_pairs(fstate, pairs)
                fstate = db.set_sync_point(fstate, snaps)
            pairs = db.pairs(fstate)
    if interrupted:
        warnings.append(
            f"{interrupted} copies of an earlier run were interrupted; "
            "matching them by content so none is copied twice"
        )

    p = await _plan(folders, snaps[Side.A], snaps[Side.B], pairs, opts)
    restored: list[PairRow] = []
    why = too_many_deletions(p, snaps, safety)
    if why and any(sn.derived for sn in snaps.values()):
        # a stop counts messages: count them all
        snaps = await _snapshots(folders, {s: None for s in Side}, snaps)
        p = await _plan(folders, snaps[Side.A], snaps[Side.B], pairs, opts)
        why = too_many_deletions(p, snaps, safety)
    if why and safety.restore:
        # the safe way out: forget the pairs whose message is gone on one side, so the copy
        # that is left is copied back instead of deleted
        restored = [u.old for u in p.after_delete.values()]
        doomed = set(restored)
        pairs = [r for r in pairs if r not in doomed]
        warnings.append(f"{why}; copying them back instead (--restore-missing)")
        p = await _plan(folders, snaps[Side.A], snaps[Side.B], pairs, opts)
    elif why and not safety.allow_deletions:
        raise SafetyStop(
            f"folder {label}: {why}; stopped, nothing was changed",
            hint="if that mail was not deleted on purpose, run again with --restore-missing "
            "to copy it back; to delete it, run again with --allow-deletions",
        )
    if not pairs:
        # a first sync or a rebuild: say what only one side has and must stay there
        kept = _kept_alone(p, snaps, opts)
        for s, n in kept.items():
            warnings.append(
                f"{n} messages are only on the {SIDE_NAME[s]} side and stay there "
                f"(the {SIDE_NAME[s.other]} side is read-only)"
            )
    if dry_run:
        return FolderResult(p, Report(), snaps, warnings)

    def finish(report: Report) -> None:
        """The marks of a finished sync, recorded in apply's last transaction."""
        for s in Side:
            new = unkept(folders[s]) - refused[s]
            if new:
                # said once: from now on they are left alone, on both sides
                db.add_unkept(fstate, s, new)
                report.notes.append(
                    f"the {SIDE_NAME[s]} server refuses to store keyword(s) "
                    f"{', '.join(sorted(new))}; they stay on the {SIDE_NAME[s.other]} side only"
                )
        if report.failures:
            return
        # with the other side read-only, a row records that side's flags, not this one's
        covered = [
            s for s in Side if opts.writable[s.other] and _covers(db, fstate, s, snaps[s], p)
        ]
        db.set_covered(fstate, covered)
        if stamps is not None:
            # every action is recorded: the stamps from before the snapshots now vouch for it
            db.set_stamps(fstate, stamps)

    if p.is_empty() and not forget and not restored and not interrupted:
        # nothing to change: the sync point and the marks of a finished sync land together
        report = Report()
        with db.transaction():
            fstate = db.set_sync_point(fstate, snaps)
            finish(report)
        return FolderResult(p, report, snaps, warnings)

    def begin() -> FolderState:
        """Before anything changes, in apply's first transaction (the journal lands after)."""
        nonlocal fstate  # finish records against the state this returns
        if forget:
            db.forget_pairs(fstate)
        db.clear_pending(fstate)
        db.delete_pairs(restored)
        fstate = db.set_sync_point(fstate, snaps)
        return fstate

    report = await apply(p, folders, db, fstate, snaps, finish, begin)
    return FolderResult(p, report, snaps, warnings)


def trusted(fstate: FolderState, side: Side, pairs: list[PairRow]) -> Since | None:
    """The sync point a snapshot of ``side`` may be derived from (see the module's
    docstring), or None: list that side in full."""
    uidvalidity, uidnext = fstate.uidvalidity(side), fstate.uidnext(side)
    modseq = fstate.modseq(side)
    if not fstate.covered(side) or uidvalidity is None or not uidnext or not modseq:
        return None
    if side is Side.A:
        known = {r.a: r.flags for r in pairs if r.a is not None}
    else:
        known = {r.b: r.flags for r in pairs if r.b is not None}
    return Since(uidvalidity, uidnext, modseq, known)


async def _snapshots(
    folders: Mapping[Side, Folder],
    since: Mapping[Side, Since | None],
    have: Mapping[Side, Snapshot] | None = None,
) -> dict[Side, Snapshot]:
    """Both sides' snapshots; with ``have``, only those of it that were derived are taken
    again (with ``since`` None: in full)."""

    async def one(s: Side) -> Snapshot:
        if have is not None and not have[s].derived:
            return have[s]
        return await folders[s].snapshot(since[s])

    # B (the remote side) first: its command goes out before A's listing, which (a Maildir
    # scan) runs without yielding, so the scan overlaps the server's answer instead of
    # preceding it
    b, a = await asyncio.gather(one(Side.B), one(Side.A))
    return {Side.A: a, Side.B: b}


def _covers(db: StatusDB, fstate: FolderState, side: Side, snap: Snapshot, p: Plan) -> bool:
    """Whether the pair rows now name every message of ``snap`` that is still there and not
    marked \\Deleted (``p``'s deletions all landed: apply failed on none)."""
    if snap.modseq is None:
        return False  # a store without mod-sequences lists in full anyway: spare the query
    named = db.named(fstate, side) | {d.id for d in p.deletions if d.side is side}
    return all(m in named or DELETED in i.flags for m, i in snap.messages.items())


async def _plan(
    folders: Mapping[Side, Folder],
    snap_a: Snapshot,
    snap_b: Snapshot,
    pairs: list[PairRow],
    opts: SyncOptions,
) -> Plan:
    loose = unpaired(snap_a, snap_b, pairs)
    keys: dict[Side, Mapping[MessageId, ContentKey]] | None = None
    if loose[Side.A] and loose[Side.B]:
        # only then can a message on one side be a copy of one on the other
        kb, ka = await asyncio.gather(  # B first, as in _snapshots
            folders[Side.B].keys(sorted(loose[Side.B], key=str)),
            folders[Side.A].keys(sorted(loose[Side.A], key=str)),
        )
        keys = {Side.A: ka, Side.B: kb}
        await _tell_apart(folders, keys)
    return plan(snap_a, snap_b, pairs, opts, keys)


async def _tell_apart(
    folders: Mapping[Side, Folder], keys: dict[Side, Mapping[MessageId, ContentKey]]
) -> None:
    """Where one key stands for more than one message on a side, add a hash of each one's
    body: two different messages that share a Message-ID and a size (a resent or edited
    message) must not pass for copies of each other. True duplicates hash alike and stay so."""
    count: Counter[ContentKey] = Counter()
    for s in Side:
        count.update(keys[s].values())
    shared = set(keys[Side.A].values()) & set(keys[Side.B].values())
    unclear = {k for k in shared if count[k] > 2}
    if not unclear:
        return
    from mailtwin.sync.bodyhash import BodyHashes  # hashlib: only when two keys clash

    for s in Side:
        ids = sorted((m for m, k in keys[s].items() if k in unclear), key=str)
        sink = BodyHashes()
        try:
            await folders[s].fetch(ids, sink)
        except MessageError as e:
            # pairing without it could copy a message twice, or pair two different ones
            raise FolderError(
                f"cannot tell copies apart on the {SIDE_NAME[s]} side: {e}; nothing was changed"
            ) from e
        refined = dict(keys[s])
        for m in ids:
            if m in sink.hashes:
                refined[m] = f"{keys[s][m]} {sink.hashes[m]}"
        keys[s] = refined


def _adopt(
    carry: CarryOver,
    fstate: FolderState,
    snaps: Mapping[Side, Snapshot],
    local: Folder,
    warnings: list[str],
) -> list[PairRow]:
    from mailtwin.state.offlineimap import adopt

    fmd5 = getattr(local, "fmd5", None)
    if not isinstance(fmd5, str):
        return []
    adopted = adopt(
        carry.metadata,
        carry.account,
        carry.remote_repo,
        carry.local_repo,
        fstate.name_a,
        fstate.name_b,
        carry.sep_a,
        snaps[Side.A],
        snaps[Side.B],
        fmd5,
        warn=warnings.append,
    )
    return adopted.rows if adopted is not None else []


def _kept_alone(p: Plan, snaps: Mapping[Side, Snapshot], opts: SyncOptions) -> dict[Side, int]:
    """Per side that cannot send its new messages over: how many nothing pairs or copies."""
    out = {}
    for s in Side:
        if opts.writable[s.other]:
            continue
        matched = {r.id(s) for r in p.matches}
        n = len(snaps[s].messages) - len(matched)
        if n > 0:
            out[s] = n
    return out

"""Table tests: one per planner rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailtwin.model import Flags, MessageInfo, Side, Snapshot
from mailtwin.state.rows import PairRow
from mailtwin.sync.plan import Copy, Delete, PairUpdate, SetFlags, SyncOptions, merge_flags, plan

S, F, R, D, T = "\\Seen", "\\Flagged", "\\Answered", "\\Draft", "\\Deleted"
BOTH = SyncOptions(writable={Side.A: True, Side.B: True}, deletes_from={Side.A: True, Side.B: True})


def snap(**msgs: Flags) -> Snapshot:
    """snap(m1={S}) → a snapshot holding id 'm1' with flags {S}; ids are strings for short tests."""
    return Snapshot(1, 1, {k: MessageInfo(k, frozenset(v)) for k, v in msgs.items()})


def opts(ro: Side | None = None, keep: Side | None = None) -> SyncOptions:
    return SyncOptions(
        writable={s: s is not ro for s in Side},
        deletes_from={s: s is not keep for s in Side},
    )


def test_new_on_a_is_copied_to_b() -> None:
    p = plan(snap(x={S}), snap(), [], BOTH)
    assert p.copies == (Copy(Side.A, "x", frozenset({S})),)
    assert not p.flag_changes and not p.deletions


def test_new_on_b_is_copied_to_a() -> None:
    p = plan(snap(), snap(y=set()), [], BOTH)
    assert p.copies == (Copy(Side.B, "y", frozenset()),)


def test_new_on_both_each_copied_once() -> None:
    p = plan(snap(x=set()), snap(y=set()), [], BOTH)
    assert sorted((c.source.value, c.id) for c in p.copies) == [("a", "x"), ("b", "y")]


def test_synced_and_unchanged_plans_nothing() -> None:
    p = plan(snap(x={S}), snap(y={S}), [PairRow("x", "y", frozenset({S}))], BOTH)
    assert p.is_empty()


def test_flag_added_on_one_side_reaches_other() -> None:
    row = PairRow("x", "y", frozenset())
    p = plan(snap(x={S}), snap(y=set()), [row], BOTH)
    assert p.flag_changes == (SetFlags(Side.B, "y", frozenset({S}), frozenset()),)
    assert p.after_flags[row].flags == {S}


def test_flag_removed_on_one_side_reaches_other() -> None:
    p = plan(snap(x={S, F}), snap(y={S}), [PairRow("x", "y", frozenset({S, F}))], BOTH)
    assert p.flag_changes == (SetFlags(Side.A, "x", frozenset(), frozenset({F})),)


def test_concurrent_additions_are_united() -> None:
    p = plan(snap(x={S}), snap(y={F}), [PairRow("x", "y", frozenset())], BOTH)
    assert set(p.flag_changes) == {
        SetFlags(Side.A, "x", frozenset({F}), frozenset()),
        SetFlags(Side.B, "y", frozenset({S}), frozenset()),
    }


def test_same_change_on_both_sides_only_records() -> None:
    row = PairRow("x", "y", frozenset())
    p = plan(snap(x={S}), snap(y={S}), [row], BOTH)
    assert not p.flag_changes
    assert p.updates == (PairUpdate(row, row.with_flags(frozenset({S}))),)


def test_deleted_on_b_deletes_on_a() -> None:
    row = PairRow("x", "y", frozenset())
    p = plan(snap(x=set()), snap(), [row], BOTH)
    assert p.deletions == (Delete(Side.A, "x"),)
    assert p.after_delete[(Side.A, "x")] == PairUpdate(row, None)


def test_deleted_on_a_deletes_on_b() -> None:
    p = plan(snap(), snap(y=set()), [PairRow("x", "y")], BOTH)
    assert p.deletions == (Delete(Side.B, "y"),)


def test_deleted_on_both_forgets_row() -> None:
    row = PairRow("x", "y")
    p = plan(snap(), snap(), [row], BOTH)
    assert p.effects() == 0 and p.updates == (PairUpdate(row, None),)


def test_sync_deletes_no_keeps_copy_as_tombstone() -> None:
    row = PairRow("x", "y")
    p = plan(snap(x=set()), snap(), [row], opts(keep=Side.B))
    assert not p.deletions
    assert p.updates == (PairUpdate(row, PairRow("x", None)),)
    # and the tombstone is never re-uploaded nor deleted
    p2 = plan(snap(x={S}), snap(), [PairRow("x", None)], opts(keep=Side.B))
    assert p2.is_empty()


def test_readonly_side_is_never_written() -> None:
    o = opts(ro=Side.B)
    p = plan(snap(x=set(), n=set()), snap(y={S}), [PairRow("x", "y")], o)
    assert all(c.source is Side.B for c in p.copies)
    assert all(f.side is Side.A for f in p.flag_changes)
    # deleted locally: the read-only server keeps it, the row keeps the B copy alone
    p2 = plan(snap(), snap(y=set()), [PairRow("x", "y")], o)
    assert not p2.deletions and p2.updates[0].new == PairRow(None, "y")


def test_readonly_side_local_flag_changes_stay_local() -> None:
    o = opts(ro=Side.B)
    row = PairRow("x", "y", frozenset())
    p = plan(snap(x={F}), snap(y=set()), [row], o)
    assert not p.flag_changes  # nothing to do on A, nothing allowed on B
    assert p.updates == ()  # recorded flags stay B's
    # a server change still arrives, and the local change is kept
    p2 = plan(snap(x={F}), snap(y={S}), [row], o)
    assert p2.flag_changes == (SetFlags(Side.A, "x", frozenset({S}), frozenset()),)
    assert p2.after_flags[row].flags == {S}


def test_unpaired_deleted_message_is_not_copied() -> None:
    assert plan(snap(x={T}), snap(), [], BOTH).is_empty()


def test_unsyncable_flags_are_left_alone() -> None:
    o = SyncOptions(BOTH.writable, BOTH.deletes_from, flags=frozenset({S, F}))
    p = plan(snap(x={"$Junk"}), snap(y=set()), [PairRow("x", "y")], o)
    assert p.is_empty()


def test_copies_share_their_filtered_flag_sets() -> None:
    """An initial sync plans one copy per message: copies whose flags are alike hold one
    filtered set between them, not one each (memory per message, in a 100k folder)."""
    o = SyncOptions(BOTH.writable, BOTH.deletes_from, flags=frozenset({S, F}))
    b = Snapshot(1, 1, {n: MessageInfo(n, frozenset({S, "$Junk"})) for n in range(1, 50)})
    p = plan(snap(), b, [], o)
    assert len(p.copies) == 49 and {c.flags for c in p.copies} == {frozenset({S})}
    assert len({id(c.flags) for c in p.copies}) == 1


@pytest.mark.parametrize(
    ("synced", "a", "b", "want"),
    [
        (set(), set(), set(), set()),
        ({S}, {S}, set(), set()),
        (set(), {S}, set(), {S}),
        ({S}, {S, F}, {S, R}, {S, F, R}),
        ({S, F}, {S}, {F}, set()),
        ({D}, {D, S}, set(), {S}),
    ],
)
def test_merge_flags(synced: set[str], a: set[str], b: set[str], want: set[str]) -> None:
    assert merge_flags(frozenset(synced), frozenset(a), frozenset(b)) == want


def test_unkept_keyword_is_never_copied_compared_or_taken_away() -> None:
    kw = "$TooLongForTheOtherServer"
    unkept = SyncOptions(
        writable={Side.A: True, Side.B: True},
        deletes_from={Side.A: True, Side.B: True},
        unkept=frozenset({kw}),
    )
    # copied without it
    p = plan(snap(x={S, kw}), snap(), [], unkept)
    assert p.copies == (Copy(Side.A, "x", frozenset({S})),)
    # one side has it, the other never will: nothing to do, nothing removed
    p = plan(snap(x={S, kw}), snap(y={S}), [PairRow("x", "y", frozenset({S}))], unkept)
    assert p.is_empty()
    # a row recorded with it before it was known to be unkept: rewritten, no flag change
    row = PairRow("x", "y", frozenset({S, kw}))
    p = plan(snap(x={S, kw}), snap(y={S}), [row], unkept)
    assert not p.flag_changes
    # without the option the same state would take the keyword away from A
    p = plan(snap(x={S, kw}), snap(y={S}), [row], BOTH)
    assert p.flag_changes == (SetFlags(Side.A, "x", frozenset(), frozenset({kw})),)


# ---- one synced row, against the rules written out per side ---------------------------------

_FLAGSET = st.frozensets(st.sampled_from([S, F, R, D, T, "$Work"]))


def _merged_per_side(
    row: PairRow, fa: Flags, fb: Flags, o: SyncOptions
) -> tuple[list[SetFlags], Flags]:
    """The flag rules as the general case states them, side by side: the reference the
    planner's both-sides-writable shortcut must agree with."""
    synced = (row.flags if o.flags is None else row.flags & o.flags) - o.unkept
    merged = merge_flags(synced, fa, fb)
    cur = {Side.A: fa, Side.B: fb}
    target = {s: merged for s in Side}
    record = merged
    for s in Side:
        if not o.writable[s]:
            target[s] = cur[s]
            record = cur[s] if o.writable[s.other] else synced
    changes = []
    for s in Side:
        add, remove = target[s] - cur[s], cur[s] - target[s]
        if add or remove:
            mid = row.id(s)
            assert mid is not None
            changes.append(SetFlags(s, mid, add, remove))
    return changes, record


@given(
    synced=_FLAGSET,
    fa=_FLAGSET,
    fb=_FLAGSET,
    ro=st.sampled_from([None, Side.A, Side.B]),
    keep=st.one_of(st.none(), _FLAGSET),
    unkept=_FLAGSET,
)
def test_a_synced_row_plans_as_the_per_side_rules_say(
    synced: Flags, fa: Flags, fb: Flags, ro: Side | None, keep: Flags | None, unkept: Flags
) -> None:
    o = SyncOptions(
        writable={s: s is not ro for s in Side},
        deletes_from={s: True for s in Side},
        flags=keep,
        unkept=unkept,
    )
    row = PairRow("x", 7, synced, "key", 1)
    p = plan(snap(x=set(fa)), Snapshot(1, 8, {7: MessageInfo(7, fb)}), [row], o)
    ka = fa if keep is None else fa & keep
    kb = fb if keep is None else fb & keep
    changes, record = _merged_per_side(row, ka - unkept, kb - unkept, o)
    assert list(p.flag_changes) == changes
    new = row.with_flags(record)
    if changes:
        assert p.after_flags == {row: new} and not p.updates
    elif ka - unkept == kb - unkept == synced:
        assert p.is_empty()
    else:
        assert not p.after_flags
        assert p.updates == ((PairUpdate(row, new),) if new != row else ())


def test_pair_rows_are_values() -> None:
    row = PairRow("x", 7, frozenset({S}), "key", 3)
    assert row.with_flags(frozenset()) == PairRow("x", 7, frozenset(), "key", 3)
    assert row.without(Side.A) == PairRow(None, 7, frozenset({S}), "key", 3)
    assert row.without(Side.B).id(Side.B) is None and row.id(Side.A) == "x"
    assert {row: 1}[PairRow("x", 7, frozenset({S}), "key", 3)] == 1
    assert PairRow("x", 7) == PairRow("x", 7, frozenset(), None, None)

"""Incremental snapshots: a side's last sync point plus what changed since.

A store that keeps mod-sequences (IMAP CONDSTORE / QRESYNC, the memory store) can list the
messages changed or added after the sync point's HIGHESTMODSEQ and the ids expunged since.
Every other message is as it was at the sync point, and ``Since.known`` (the pair rows' ids on
that side, with the flags last synced) names it with its flags of then. So the snapshot is
``known``, less what vanished, with what changed laid over it. sync/folder.py says when the
status may vouch for ``known``; this module only says when the folder itself still matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mailtwin.model import MessageId, MessageInfo, Since, Snapshot


def usable(since: Since, uidvalidity: int, uidnext: int | None, modseq: int | None) -> bool:
    """Whether the folder as it is now (its SELECT data) can be listed from ``since``.

    Not when UIDVALIDITY changed (the ids mean other messages), the folder keeps no
    mod-sequences (NOMODSEQ), UIDNEXT is not known, or UIDNEXT or HIGHESTMODSEQ went back (a
    restore from a backup): then a full listing lets sync/folder.py see what happened.
    """
    return (
        uidvalidity == since.uidvalidity
        and modseq is not None
        and modseq >= since.modseq > 0
        and uidnext is not None
        and uidnext >= since.uidnext
    )


def derive(
    since: Since,
    uidvalidity: int,
    uidnext: int,
    modseq: int | None,
    vanished: Iterable[MessageId],
    changed: Mapping[MessageId, MessageInfo],
) -> Snapshot:
    """The snapshot ``since`` and the changes make (see the module's docstring)."""
    messages = {mid: MessageInfo(mid, flags) for mid, flags in since.known.items()}
    for mid in vanished:
        messages.pop(mid, None)
    messages.update(changed)
    top = max((m for m in changed if isinstance(m, int)), default=0) + 1
    return Snapshot(uidvalidity, max(uidnext, top), messages, modseq, derived=True)

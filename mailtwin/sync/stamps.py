"""When a folder pair may be skipped: neither side changed since its last complete sync.

Each side's stamp (see FolderStamp) is taken before its snapshot and recorded only once that
sync finished without a failure. A change made during or after a sync, ours included, therefore
always shows as a different stamp next time; a run that changed something is followed by one
more full sync, and from then on an unchanged folder costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mailtwin.model import FolderStamp, Side

if TYPE_CHECKING:
    from mailtwin.state.status import FolderState, StatusDB


def unchanged(
    recorded: Mapping[Side, FolderStamp | None], now: Mapping[Side, FolderStamp | None]
) -> bool:
    """True when both sides' stamps are complete and equal to the recorded ones."""
    for s in Side:
        was, cur = recorded.get(s), now.get(s)
        if was is None or cur is None or not cur.complete or was != cur:
            return False
    return True


def pair_unchanged(
    fstate: FolderState, now: Mapping[Side, FolderStamp | None], db: StatusDB
) -> bool:
    """A folder pair neither side changed since its last sync that finished, with nothing
    left half done: the engine skips it, and the pre-flight check settles it."""
    recorded = {s: fstate.stamp(s) for s in Side}
    return unchanged(recorded, now) and not db.pending(fstate)

"""Removing messages from a tree without losing the messages after them.

    remove_messages([row])   # its children move up to its parent; previews follow

Rows need only ``id``, ``parent_id`` and ``conversation_id``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..models import Message
from ._bump import refresh_preview

__all__ = ["remove_messages"]


def remove_messages(rows: Iterable[Message]) -> None:
    """Delete messages, re-attaching their surviving children to the nearest kept ancestor."""
    rows = list(rows)
    doomed = {row.id: row.parent_id for row in rows}
    adopters: dict[int | None, list[int]] = defaultdict(list)
    for mid, parent in doomed.items():
        while parent in doomed:
            parent = doomed[parent]
        adopters[parent].append(mid)
    for parent, orphaned in adopters.items():
        (
            Message.update(parent=parent)
            .where(Message.parent.in_(orphaned) & Message.id.not_in(list(doomed)))
            .execute()
        )
    Message.delete().where(Message.id.in_(list(doomed))).execute()
    for conv_id in {row.conversation_id for row in rows}:
        refresh_preview(conv_id)

"""Removing messages from a tree without losing the messages after them; branch ends.

    remove_messages([row])      # its children move up to its parent; previews follow
    newest_leaf_below(db, mid)  # the end of the newest branch under a message

Rows need only ``id``, ``parent_id`` and ``conversation_id``. A conversation
whose current leaf is removed gets the newest leaf under the leaf's nearest
kept ancestor (or, with no kept ancestor, its latest message).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import peewee

from ..fastsql import statement
from ..models import Conversation, Message
from ._bump import refresh_preview

__all__ = ["remove_messages", "newest_leaf_below"]

# The newest message without children in the subtree of a message (itself included).
# The start is cast: asyncpg would type an untyped parameter as text.
_NEWEST_LEAF_BELOW = (
    'WITH RECURSIVE "below"("id") AS (SELECT CAST({p} AS BIGINT) UNION ALL '
    'SELECT m."id" FROM "message" m JOIN "below" b ON m."parent_id" = b."id") '
    'SELECT m."id" FROM "message" m JOIN "below" b ON m."id" = b."id" '
    'WHERE NOT EXISTS (SELECT 1 FROM "message" c WHERE c."parent_id" = m."id") '
    'ORDER BY m."created_at" DESC, m."id" DESC LIMIT 1'
)


def newest_leaf_below(db: peewee.Database, message_id: int) -> int | None:
    """The id of the newest leaf in ``message_id``'s subtree (None if there is no such message)."""
    row = db.execute_sql(statement(db, _NEWEST_LEAF_BELOW), (message_id,)).fetchone()
    return None if row is None else int(row[0])


def remove_messages(rows: Iterable[Message], *, leaves: bool = True) -> None:
    """Delete messages, re-attaching their surviving children to the nearest kept ancestor.

    ``leaves``: the store records current leaves (0008, see ``_bump.tracks_leaf``).
    """
    rows = list(rows)
    doomed = {row.id: row.parent_id for row in rows}
    adopters: dict[int | None, list[int]] = defaultdict(list)
    adopter_of: dict[int, int | None] = {}
    for mid, parent in doomed.items():
        while parent in doomed:
            parent = doomed[parent]
        adopters[parent].append(mid)
        adopter_of[mid] = parent
    for parent, orphaned in adopters.items():
        (
            Message.update(parent=parent)
            .where(Message.parent.in_(orphaned) & Message.id.not_in(list(doomed)))
            .execute()
        )
    conv_ids = list({row.conversation_id for row in rows})
    lost_leaves = []
    if leaves:
        lost_leaves = list(
            Conversation.select(Conversation.id, Conversation.current_leaf_id).where(
                Conversation.id.in_(conv_ids) & Conversation.current_leaf_id.in_(list(doomed))
            )
        )
    Message.delete().where(Message.id.in_(list(doomed))).execute()
    db = Message._meta.database
    for conv in lost_leaves:
        lost: Any = conv.current_leaf_id
        kept = adopter_of[lost]
        leaf = None if kept is None else newest_leaf_below(db, kept)
        Conversation.update(current_leaf_id=leaf).where(Conversation.id == conv.id).execute()
    for conv_id in conv_ids:
        refresh_preview(conv_id)

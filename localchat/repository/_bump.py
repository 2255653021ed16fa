"""A new message moves its conversation: the one owner of that rule.

    preview("x" * 300)                 # 199 x's and an ellipsis
    bump(db, conv_id, when, content, leaf_id)   # False if there is no such conversation

Every new message sets its conversation's ``updated_at`` to the message's
``created_at`` and ``last_message`` to :func:`preview` of its content. On
SQLite from migration 0004 on, the trigger ``message_bumps_conversation`` does
it inside the INSERT (the migration is frozen, so it spells the same rule with
the literals 200 and 199; a test proves the two agree); elsewhere
(PostgreSQL, an older store) :func:`bump` does it. :func:`bump_many` moves
every conversation of a bulk import at once, and :func:`refresh_preview` points
the preview at the latest message again after messages are deleted or edited.
"""

from __future__ import annotations

from typing import Any

import peewee

from ..database import Session
from ..models import Conversation, Message

__all__ = [
    "PREVIEW_LENGTH",
    "TRIGGER",
    "preview",
    "bumps_by_trigger",
    "bump",
    "bump_many",
    "refresh_preview",
    "CURRENT_LEAF",
    "LATEST",
    "tracks_leaf",
]

#: Content longer than this is cut to one character less and an ellipsis.
PREVIEW_LENGTH = 200
#: The name of migration 0004's trigger.
TRIGGER = "message_bumps_conversation"

#: SQL for the current leaf of conversation ``c``: the recorded one while it
#: exists, else the latest message (NULL for an empty conversation).
CURRENT_LEAF = (
    'COALESCE((SELECT k."id" FROM "message" k WHERE k."id" = c."current_leaf_id" '
    'AND k."conversation_id" = c."id"), '
    '(SELECT x."id" FROM "message" x WHERE x."conversation_id" = c."id" '
    'ORDER BY x."created_at" DESC, x."id" DESC LIMIT 1))'
)
#: The latest message of conversation ``c`` (what a store before 0008 continues from).
LATEST = (
    '(SELECT x."id" FROM "message" x WHERE x."conversation_id" = c."id" '
    'ORDER BY x."created_at" DESC, x."id" DESC LIMIT 1)'
)
_BUMP = 'UPDATE "conversation" SET "updated_at" = {p}, "last_message" = {p} WHERE "id" = {p}'
_BUMP_TO = (
    'UPDATE "conversation" SET "updated_at" = {p}, "last_message" = {p}, '
    '"current_leaf_id" = {p} WHERE "id" = {p}'
)
_time_db = Conversation.updated_at.db_value


def preview(text: str) -> str:
    """``text`` cut to :data:`PREVIEW_LENGTH` characters (with an ellipsis when cut)."""
    if len(text) <= PREVIEW_LENGTH:
        return text
    return text[: PREVIEW_LENGTH - 1] + "\u2026"


def bumps_by_trigger(s: Session) -> bool:
    """Whether the store has migration 0004's trigger (SQLite): looked up once per schema."""
    facts = s.store.schema_facts
    known = facts.get(TRIGGER)
    if known is None:
        db = s.db
        known = isinstance(db, peewee.SqliteDatabase) and (
            db.execute_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (TRIGGER,)
            ).fetchone()
            is not None
        )
        facts[TRIGGER] = known
    return bool(known)


def tracks_leaf(s: Session) -> bool:
    """Whether the store records a current leaf (migration 0008): looked up once per schema."""
    facts = s.store.schema_facts
    known = facts.get("current_leaf_id")
    if known is None:
        known = any(c.name == "current_leaf_id" for c in s.db.get_columns("conversation"))
        facts["current_leaf_id"] = known
    return bool(known)


def bump(db: peewee.Database, conv_id: int, stamp: Any, content: str, leaf_id: int | None) -> bool:
    """Move the conversation to a new message (``stamp``: its stored ``created_at``),
    which becomes its current leaf.

    What the trigger does, for stores without it; False if there is no such conversation.
    """
    if leaf_id is None:  # a store before 0008
        params: tuple[Any, ...] = (stamp, preview(content), conv_id)
        return bool(db.execute_sql(_BUMP.format(p=db.param), params).rowcount)
    params = (stamp, preview(content), leaf_id, conv_id)
    return bool(db.execute_sql(_BUMP_TO.format(p=db.param), params).rowcount)


def bump_many(
    db: peewee.Database,
    newest: dict[int, tuple[Any, str]],
    before: dict[int, tuple[Any, Any, Any]],
) -> None:
    """After a bulk insert: move each conversation whose newest message is new.

    ``newest``: conversation id -> (time, content) of its newest inserted
    message; ``before``: conversation id -> (its latest message's time before
    the insert or None, its stored ``updated_at``, its stored ``last_message``).
    On SQLite the trigger has already moved every conversation to its last
    *inserted* message; one whose imported history is older than what it had
    gets its stored values back, exactly as they were.
    """
    restore = isinstance(db, peewee.SqliteDatabase)
    updates = []
    for cid, (at, content) in newest.items():
        latest_at, updated, last = before[cid]
        if latest_at is None or at >= latest_at:
            updates.append((_time_db(at), preview(content), cid))
        elif restore:
            updates.append((updated, last, cid))
    if updates:
        db.cursor().executemany(_BUMP.format(p=db.param), updates)


def refresh_preview(conv_id: int, *, touch: Any = None) -> None:
    """Point the conversation's ``last_message`` preview at its latest message again
    (and set ``updated_at`` to ``touch`` when given: after an edit in place)."""
    latest = (
        Message.select(Message.content)
        .where(Message.conversation == conv_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
        .scalar()
    )
    last = None if latest is None else preview(latest)
    fields: dict[str, Any] = {"last_message": last}
    if touch is not None:
        fields["updated_at"] = touch
    Conversation.update(**fields).where(Conversation.id == conv_id).execute()

"""Appending one message: the hot path of a chat client, kept to one statement on SQLite.

    msg = new_message(s, conv_key, conv_id, parent_id, role, content, metadata, model)

With migration 0004's trigger (SQLite), the INSERT alone also moves the
conversation's ``updated_at`` and ``last_message`` preview, and SQLite runs one
statement (its triggers included) atomically: a failing append leaves nothing
behind without a savepoint around it (which would also make FTS5 flush its
pending index twice per message). Without the trigger (PostgreSQL, or a store
not yet at 0004) the UPDATE and INSERT run in a savepoint as before.
"""

from __future__ import annotations

import uuid as _uuid
from typing import Any

import peewee

from ..database import Session
from ..errors import NotFound
from ..models import Conversation, Message, utcnow
from ._base import in_savepoint
from ._fast import insert_model, statement
from .bulk import _json_value
from .conversations import _preview

__all__ = ["TRIGGER", "new_message"]

_BUMP = 'UPDATE "conversation" SET "updated_at" = {p}, "last_message" = {p} WHERE "id" = {p}'
# The name of migration 0004's trigger, and the one-statement append it allows.
TRIGGER = "message_bumps_conversation"
_APPEND = (
    'INSERT INTO "message" ("uuid", "created_at", "updated_at", "conversation_id", "parent_id", '
    '"role", "content", "model", "metadata") SELECT {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {meta} '
    'WHERE EXISTS (SELECT 1 FROM "conversation" WHERE "id" = {p})'
)
_appends: dict[str, tuple[str, Any]] = {}
_time_db = Conversation.updated_at.db_value
_uuid_db = Message.uuid.db_value


def _bumps_by_trigger(s: Session) -> bool:
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


def new_message(
    s: Session,
    conv_key: Any,
    conv_id: int | None,
    parent_id: int | None,
    role: str,
    content: str,
    metadata: Any,
    model: str | None,
) -> Message:
    """Insert the message and move its conversation (NotFound if the conversation is missing).

    SQLite with migration 0004: ONE statement (the trigger moves the
    conversation), atomic by itself, so no savepoint. Otherwise (PostgreSQL):
    UPDATE and INSERT in a savepoint.
    """
    if conv_id is None:
        raise NotFound(f"no conversation {conv_key!r}; create it first.")
    if _bumps_by_trigger(s):
        return _append_one_statement(
            s.db, conv_key, conv_id, parent_id, role, content, metadata, model
        )
    return in_savepoint(
        s.db,
        _append_two_statements,
        s.db,
        conv_key,
        conv_id,
        parent_id,
        role,
        content,
        metadata,
        model,
    )


def _append_statement(db: peewee.Database) -> tuple[str, Any]:
    """The one-statement append's SQL and metadata converter, made once per placeholder style."""
    json_mark, json_db = _json_value()
    made = (_APPEND.format(p=db.param, meta=json_mark.format(p=db.param)), json_db)
    _appends[db.param] = made
    return made


def _append_one_statement(
    db: peewee.Database,
    conv_key: Any,
    conv_id: int,
    parent_id: int | None,
    role: str,
    content: str,
    metadata: Any,
    model: str | None,
) -> Message:
    now = utcnow()
    uid = _uuid.uuid4()
    stamp = _time_db(now)
    sql, json_db = _appends.get(db.param) or _append_statement(db)
    params = (
        _uuid_db(uid), stamp, stamp, conv_id, parent_id, role, content, model,
        None if metadata is None else json_db(metadata), conv_id,
    )  # fmt: skip
    cursor = db.execute_sql(sql, params)
    if not cursor.rowcount:
        raise NotFound(f"no conversation {conv_key!r}; create it first.")
    obj: Any = Message.__new__(Message)
    obj.__data__ = {
        "conversation": conv_id,
        "parent": parent_id,
        "role": role,
        "content": content,
        "model": model,
        "metadata": metadata,
        "created_at": now,
        "updated_at": now,
        "uuid": uid,
        "id": cursor.lastrowid,
    }
    obj._dirty = set()
    obj.__rel__ = {}
    return obj


def _append_two_statements(
    db: peewee.Database,
    conv_key: Any,
    conv_id: int,
    parent_id: int | None,
    role: str,
    content: str,
    metadata: Any,
    model: str | None,
) -> Message:
    """Bump the conversation (NotFound if missing) and insert the message."""
    now = utcnow()
    bumped = db.execute_sql(
        statement(db, _BUMP), (_time_db(now), _preview(content), conv_id)
    ).rowcount
    if not bumped:
        raise NotFound(f"no conversation {conv_key!r}; create it first.")
    values = {
        "conversation": conv_id,
        "parent": parent_id,
        "role": role,
        "content": content,
        "model": model,
        "metadata": metadata,
        "created_at": now,
        "updated_at": now,
    }
    return insert_model(db, Message, values)

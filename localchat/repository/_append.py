"""Appending one message: the hot path of a chat client, kept to one statement on SQLite.

    msg = new_message(s, conv_key, conv_id, None, role, content, metadata, model,
                      under_latest=True)

With migration 0004's trigger (SQLite), the INSERT alone also moves the
conversation's ``updated_at`` and ``last_message`` preview, and SQLite runs one
statement (its triggers included) atomically: a failing append leaves nothing
behind without a savepoint around it (which would also make FTS5 flush its
pending index twice per message). The only other statement is a read that
proves the conversation exists and finds the latest message (the parent).
Without the trigger (PostgreSQL, or a store not yet at 0004) the UPDATE and
INSERT run in a savepoint as before.
"""

from __future__ import annotations

import uuid as _uuid
from typing import Any

import peewee

from ..database import Session
from ..errors import NotFound
from ..fastsql import insert_model, json_param, saved_instance, statement
from ..models import Message, utcnow
from ..operations import in_savepoint
from ._bump import bump, bumps_by_trigger

__all__ = ["new_message"]

_INSERT = (
    'INSERT INTO "message" ("uuid", "created_at", "updated_at", "conversation_id", "parent_id", '
    '"role", "content", "model", "metadata") '
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {meta})"
)
# One row (its id, its latest message's id or NULL) if the conversation exists.
_CONVERSATION_AND_LATEST = (
    'SELECT c."id", (SELECT m."id" FROM "message" m WHERE m."conversation_id" = c."id" '
    'ORDER BY m."created_at" DESC, m."id" DESC LIMIT 1) FROM "conversation" c WHERE c."id" = {p}'
)
_inserts: dict[str, tuple[str, Any]] = {}
_time_db = Message.created_at.db_value


def new_message(
    s: Session,
    conv_key: Any,
    conv_id: int | None,
    parent_id: int | None,
    role: str,
    content: str,
    metadata: Any,
    model: str | None,
    *,
    under_latest: bool = False,
) -> Message:
    """Insert the message and move its conversation (NotFound if the conversation is missing).

    ``under_latest``: the parent is the conversation's latest message (``parent_id``
    is ignored). Otherwise ``parent_id`` must be a message of ``conv_id`` (the
    caller checked it, which also proves the conversation exists).
    """
    if conv_id is None:
        raise NotFound(f"no conversation {conv_key!r}; create it first.")
    db = s.db
    if under_latest:
        found = db.execute_sql(statement(db, _CONVERSATION_AND_LATEST), (conv_id,)).fetchone()
        if found is None:
            raise NotFound(f"no conversation {conv_key!r}; create it first.")
        parent_id = found[1]
    if bumps_by_trigger(s):
        return _append_one_statement(db, conv_id, parent_id, role, content, metadata, model)
    return in_savepoint(
        db, _append_two_statements, db, conv_key, conv_id, parent_id, role, content, metadata, model
    )


def _insert_statement(db: peewee.Database) -> tuple[str, Any]:
    """The INSERT and the metadata converter, made once per placeholder style."""
    json_mark, json_db = json_param(Message.metadata)
    made = (_INSERT.format(p=db.param, meta=json_mark.format(p=db.param)), json_db)
    _inserts[db.param] = made
    return made


def _append_one_statement(
    db: peewee.Database,
    conv_id: int,
    parent_id: int | None,
    role: str,
    content: str,
    metadata: Any,
    model: str | None,
) -> Message:
    """One INSERT; the trigger moves the conversation. The conversation is known to exist."""
    now = utcnow()
    uid = _uuid.uuid4()
    stamp = _time_db(now)  # what the trigger copies to the conversation's updated_at
    sql, json_db = _inserts.get(db.param) or _insert_statement(db)
    meta = None if metadata is None else json_db(metadata)
    params = (uid.hex, stamp, stamp, conv_id, parent_id, role, content, model, meta)
    new_id = db.execute_sql(sql, params).lastrowid
    data = {
        "conversation": conv_id,
        "parent": parent_id,
        "role": role,
        "content": content,
        "model": model,
        "metadata": metadata,
        "created_at": now,
        "updated_at": now,
        "uuid": uid,
        "id": new_id,
    }
    return saved_instance(Message, data)


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
    if not bump(db, conv_id, _time_db(now), content):
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

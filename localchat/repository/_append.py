"""Appending one message: the hot path of a chat client, kept to one statement on SQLite.

    msg = new_message(s, conv_key, conv_id, None, role, content, metadata, model,
                      under_latest=True)

With migration 0004's trigger (SQLite), the INSERT alone also moves the
conversation's ``updated_at`` and ``last_message`` preview, and SQLite runs one
statement (its triggers included) atomically: a failing append leaves nothing
behind without a savepoint around it (which would also make FTS5 flush its
pending index twice per message). The only other statement is a read that
proves the conversation exists and finds the latest message (the parent).
Without the trigger (PostgreSQL, or a store not yet at 0004) ``_bump.bump``
(the UPDATE) and the INSERT run in a savepoint. What moving a conversation
means is ``_bump.py``'s: this module only chooses the path.
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
from ._bump import CURRENT_LEAF, LATEST, bump, bumps_by_trigger, tracks_leaf

__all__ = ["new_message"]

_INSERT = (
    'INSERT INTO "message" ("uuid", "created_at", "updated_at", "conversation_id", "parent_id", '
    '"role", "content", "model", "metadata") '
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {meta})"
)
# One row (its id, its current leaf's id or NULL) if the conversation exists; the
# current leaf is the latest message when none was recorded (see _leaf.py).
_CONVERSATION_AND_LEAF = (
    'SELECT c."id", ' + CURRENT_LEAF + ' FROM "conversation" c WHERE c."id" = {p}'
)
_CONVERSATION_AND_LATEST = 'SELECT c."id", ' + LATEST + ' FROM "conversation" c WHERE c."id" = {p}'

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

    ``under_latest``: the parent is the conversation's current leaf (``parent_id``
    is ignored). Otherwise ``parent_id`` must be a message of ``conv_id`` (the
    caller checked it, which also proves the conversation exists). The new
    message becomes the conversation's current leaf.
    """
    if conv_id is None:
        raise NotFound(f"no conversation {conv_key!r}; create it first.")
    db = s.db
    if under_latest:
        sql = _CONVERSATION_AND_LEAF if tracks_leaf(s) else _CONVERSATION_AND_LATEST
        found = db.execute_sql(statement(db, sql), (conv_id,)).fetchone()
        if found is None:
            raise NotFound(f"no conversation {conv_key!r}; create it first.")
        parent_id = found[1]
    now = utcnow()
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
    if bumps_by_trigger(s):
        return _insert_with_trigger(db, values)
    return in_savepoint(db, _bump_then_insert, db, conv_key, values, tracks_leaf(s))


def _insert_statement(db: peewee.Database) -> tuple[str, Any]:
    """The INSERT and the metadata converter, made once per placeholder style."""
    json_mark, json_db = json_param(Message.metadata)
    made = (_INSERT.format(p=db.param, meta=json_mark.format(p=db.param)), json_db)
    _inserts[db.param] = made
    return made


def _insert_with_trigger(db: peewee.Database, values: dict[str, Any]) -> Message:
    """One INSERT; the trigger moves the conversation. The conversation is known to exist."""
    uid = _uuid.uuid4()
    stamp = _time_db(values["created_at"])  # what the trigger copies to updated_at
    sql, json_db = _inserts.get(db.param) or _insert_statement(db)
    metadata = values["metadata"]
    meta = None if metadata is None else json_db(metadata)
    v = values
    params = (uid.hex, stamp, stamp, v["conversation"], v["parent"], v["role"], v["content"],
              v["model"], meta)  # fmt: skip
    new_id = db.execute_sql(sql, params).lastrowid
    return saved_instance(Message, {**values, "uuid": uid, "id": new_id, **_DEFAULTS})


_DEFAULTS = {"status": "complete", "error": None}  # the columns' SQL defaults


def _bump_then_insert(
    db: peewee.Database, conv_key: Any, values: dict[str, Any], leaf: bool
) -> Message:
    """Insert the message and move the conversation to it (NotFound if it is missing)."""
    msg = insert_model(db, Message, values)
    msg.__data__.update(_DEFAULTS)
    stamp = _time_db(values["created_at"])
    if not bump(db, values["conversation"], stamp, values["content"], msg.id if leaf else None):
        raise NotFound(f"no conversation {conv_key!r}; create it first.")
    return msg

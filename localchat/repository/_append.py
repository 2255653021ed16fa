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

import sqlite3
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
_COLUMNS = (
    'INSERT INTO "message" ("uuid", "created_at", "updated_at", "conversation_id", "parent_id", '
    '"role", "content", "model", "metadata") '
)
_APPEND = (
    _COLUMNS + "SELECT {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {meta} "
    'WHERE EXISTS (SELECT 1 FROM "conversation" WHERE "id" = {p})'
)
# With RETURNING (SQLite 3.35+), the parent (the conversation's latest message)
# is found by the same statement and read back with the new id.
_APPEND_UNDER_LATEST = (
    _COLUMNS + 'SELECT {p}, {p}, {p}, c."id", (SELECT m."id" FROM "message" m '
    'WHERE m."conversation_id" = c."id" ORDER BY m."created_at" DESC, m."id" DESC LIMIT 1), '
    '{p}, {p}, {p}, {meta} FROM "conversation" c WHERE c."id" = {p} '
    'RETURNING "id", "parent_id"'
)
_LATEST_ID = (
    'SELECT "id" FROM "message" WHERE "conversation_id" = {p} '
    'ORDER BY "created_at" DESC, "id" DESC LIMIT 1'
)
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_appends: dict[str, tuple[str, str, Any]] = {}
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
    *,
    under_latest: bool = False,
) -> Message:
    """Insert the message and move its conversation (NotFound if the conversation is missing).

    ``under_latest``: the parent is the conversation's latest message (``parent_id``
    is ignored). SQLite with migration 0004: ONE statement (the trigger moves the
    conversation), atomic by itself, so no savepoint. Otherwise (PostgreSQL):
    UPDATE and INSERT in a savepoint.
    """
    if conv_id is None:
        raise NotFound(f"no conversation {conv_key!r}; create it first.")
    db = s.db
    by_trigger = _bumps_by_trigger(s)
    if under_latest and not (by_trigger and _RETURNING):
        found = db.execute_sql(statement(db, _LATEST_ID), (conv_id,)).fetchone()
        parent_id, under_latest = (found[0] if found else None), False
    if by_trigger:
        return _append_one_statement(
            db, conv_key, conv_id, parent_id, role, content, metadata, model, under_latest
        )
    return in_savepoint(
        db, _append_two_statements, db, conv_key, conv_id, parent_id, role, content, metadata, model
    )


def _append_statement(db: peewee.Database) -> tuple[str, str, Any]:
    """The one-statement appends' SQL and metadata converter, made once per placeholder style."""
    json_mark, json_db = _json_value()
    meta = json_mark.format(p=db.param)
    made = (
        _APPEND.format(p=db.param, meta=meta),
        _APPEND_UNDER_LATEST.format(p=db.param, meta=meta),
        json_db,
    )
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
    under_latest: bool,
) -> Message:
    now = utcnow()
    uid = _uuid.uuid4()
    stamp = _time_db(now)
    plain, latest, json_db = _appends.get(db.param) or _append_statement(db)
    meta = None if metadata is None else json_db(metadata)
    if under_latest:
        params: tuple[Any, ...] = (_uuid_db(uid), stamp, stamp, role, content, model, meta, conv_id)
        rows = db.execute_sql(latest, params).fetchall()  # all: the statement must finish
        if not rows:
            raise NotFound(f"no conversation {conv_key!r}; create it first.")
        new_id, parent_id = rows[0]
    else:
        params = (
            _uuid_db(uid),
            stamp,
            stamp,
            conv_id,
            parent_id,
            role,
            content,
            model,
            meta,
            conv_id,
        )
        cursor = db.execute_sql(plain, params)
        if not cursor.rowcount:
            raise NotFound(f"no conversation {conv_key!r}; create it first.")
        new_id = cursor.lastrowid
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
        "id": new_id,
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

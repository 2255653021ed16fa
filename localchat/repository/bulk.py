"""Bulk import: many messages in one call, at close to raw ``executemany`` speed.

    import datetime as dt
    from localchat import local_session
    from localchat.repository import create_conversation, import_messages

    with local_session() as s:
        conv = create_conversation(s, title="Imported chat")
        at = dt.datetime(2024, 5, 1, 12, 0)
        import_messages(s, [
            {"conversation_id": conv.id, "role": "user", "content": "Hi", "created_at": at},
            {"conversation_id": conv.id, "role": "assistant", "content": "Hello!"},
        ])                                                  # -> 2

``add_message`` builds and runs three statements per message; an import of a
chat history does not need that. :func:`import_messages` checks every row
first, converts values with each field's own ``db_value`` (the same text
forms ``add_message`` writes), then inserts them with one ``executemany``
inside the session's transaction, in a savepoint: a bad row or a missing
conversation leaves the database unchanged.

Rows follow the same tree rule as ``add_message``: each imported message
attaches under the previous message of its conversation (the conversation's
latest existing message for its first row), in the order given, so a linear
history imports as a chain. Afterwards each conversation's ``updated_at`` and
``last_message`` preview follow its newest message.
"""

from __future__ import annotations

import datetime as _dt
import uuid as _uuid
from collections.abc import Iterable, Mapping
from typing import Any

import peewee

from ..checks import check_choice, check_json, check_many, check_text, fits_int64
from ..database import Session
from ..errors import NotFound, ValidationError
from ..fastsql import json_param
from ..models import ROLES, Conversation, Message, utcnow
from ..operations import operation
from ._bump import bump_many, bumps_by_trigger, tracks_leaf

__all__ = ["IMPORT_FIELDS", "import_messages"]

#: The keys a row may have (``sender_type`` / ``role_metadata``: the names other chat stores use).
IMPORT_FIELDS = frozenset(
    {
        "conversation_id",
        "role",
        "sender_type",
        "content",
        "created_at",
        "model",
        "metadata",
        "role_metadata",
        "uuid",
    }
)
_COLUMNS = (
    "id",
    "uuid",
    "created_at",
    "updated_at",
    "conversation_id",
    "parent_id",
    "role",
    "content",
    "model",
    "metadata",
)
_BATCH = 10_000


def _row_error(index: int, message: str) -> ValidationError:
    return ValidationError(f"row {index}: {message}")


def _checked_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Validate every row and convert it to database values (no id, no parent yet)."""
    fields = Message._meta.fields
    uuid_db = fields["uuid"].db_value
    time_db = fields["created_at"].db_value
    json_db = json_param(Message.metadata)[1]
    now = utcnow()
    out = []
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, Mapping):
                raise ValidationError(f"a row must be a dict, got {type(row).__name__}.")
            unknown = row.keys() - IMPORT_FIELDS
            if unknown:
                raise ValidationError(
                    f"unknown key(s) {', '.join(sorted(unknown))}; "
                    f"accepted: {', '.join(sorted(IMPORT_FIELDS))}."
                )
            conv = row.get("conversation_id")
            if isinstance(conv, Conversation):
                conv = conv.id
            if isinstance(conv, bool) or not isinstance(conv, int):
                raise ValidationError(f"conversation_id must be an integer id, got {conv!r}.")
            role = row["role"] if "role" in row else row.get("sender_type")
            if type(role) is not str or role not in ROLES:  # check_choice explains, takes enums
                role = check_choice("role", role, ROLES)
            content = row.get("content")
            if type(content) is not str or "\0" in content:
                content = check_text("content", content, allow_empty=True)
            model = row.get("model")
            if model is not None:
                model = check_text("model", model, allow_empty=True, max_length=255)
            meta = row["metadata"] if "metadata" in row else row.get("role_metadata")
            if meta is not None:
                meta = json_db(check_json("metadata", meta))
            at = row.get("created_at", now)
            if not isinstance(at, _dt.datetime):
                raise ValidationError(f"created_at must be a datetime, got {at!r}.")
            uid = row.get("uuid")
            uid = _uuid.uuid4().hex if uid is None else uuid_db(_valid_uuid(uid))
        except ValidationError as exc:
            raise _row_error(index, str(exc)) from None
        stamp = time_db(at)
        out.append((uid, stamp, stamp, conv, role, content, model, meta, _as_utc(at)))
    return out


def _valid_uuid(value: Any) -> _uuid.UUID:
    if isinstance(value, _uuid.UUID):
        return value
    try:
        return _uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"uuid {value!r} is not a UUID.") from None


def _latest(db: peewee.Database, conv_ids: list[int]) -> dict[int, tuple[int, Any, Any, Any]]:
    """Each existing conversation's id -> (its latest message id or 0, that message's time,
    the conversation's stored ``updated_at`` and ``last_message`` as they are)."""
    p = db.param
    to_python = Message.created_at.python_value
    found: dict[int, tuple[int, Any, Any, Any]] = {}
    conv_ids = [c for c in conv_ids if fits_int64(c)]  # no row has a larger id
    for start in range(0, len(conv_ids), 500):
        chunk = conv_ids[start : start + 500]
        sql = (
            'SELECT c."id", m."id", m."created_at", c."updated_at", c."last_message" '
            'FROM "conversation" c '
            'LEFT JOIN "message" m ON m."id" = (SELECT x."id" FROM "message" x '
            'WHERE x."conversation_id" = c."id" ORDER BY x."created_at" DESC, x."id" DESC LIMIT 1) '
            f'WHERE c."id" IN ({", ".join([p] * len(chunk))})'
        )
        for cid, mid, at, updated, last in db.execute_sql(sql, chunk):
            found[cid] = (mid or 0, None if at is None else to_python(at), updated, last)
    return found


def _reserve_ids(db: peewee.Database, n: int) -> list[int]:
    """``n`` new message ids, taken under the session's write lock.

    SQLite: after the largest id ever used (``sqlite_sequence``, kept since
    migration 0006), not just the largest present, so a deleted newest
    message's id is not handed out again; inserting them moves the sequence.
    """
    if isinstance(db, peewee.SqliteDatabase):
        start = int(
            db.execute_sql(
                'SELECT MAX(COALESCE((SELECT MAX("id") FROM "message"), 0), '
                "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'message'), 0))"
            ).fetchone()[0]
        )
        return list(range(start + 1, start + n + 1))
    cursor = db.execute_sql(  # PostgreSQL: ids from the column's own sequence
        "SELECT nextval(pg_get_serial_sequence('message', 'id')) FROM generate_series(1, %s)",
        (n,),
    )
    return [int(r[0]) for r in cursor.fetchall()]


@operation
def import_messages(s: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert many messages in one statement batch; returns how many were imported.

    Each row: ``conversation_id`` (int), ``role`` (or ``sender_type``),
    ``content``; optional ``created_at`` (datetime, naive = UTC; default:
    now), ``model``, ``metadata`` (or ``role_metadata``, JSON), ``uuid``.
    ValidationError names the first bad row; NotFound lists missing
    conversations; Conflict if a ``uuid`` is already taken. Nothing is
    written unless every row is good.
    """
    checked = _checked_rows(check_many("rows", rows))
    if not checked:
        return 0
    conv_ids = list(dict.fromkeys(r[3] for r in checked))
    latest = _latest(s.db, conv_ids)
    missing = [c for c in conv_ids if c not in latest]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise NotFound(f"no conversation(s) {shown}; create them before importing.")
    ids = _reserve_ids(s.db, len(checked))
    parent = {cid: mid or None for cid, (mid, *_) in latest.items()}
    newest: dict[int, tuple[Any, str]] = {}
    values = []
    for mid, (uid, stamp, _, cid, role, content, model, meta, at) in zip(ids, checked, strict=True):
        values.append((mid, uid, stamp, stamp, cid, parent[cid], role, content, model, meta))
        parent[cid] = mid
        top = newest.get(cid)
        if top is None or at >= top[0]:
            newest[cid] = (at, content)
    db = s.db
    marks = [db.param] * len(_COLUMNS)
    marks[_COLUMNS.index("metadata")] = json_param(Message.metadata)[0].format(p=db.param)
    sql = 'INSERT INTO "message" ({}) VALUES ({})'.format(
        ", ".join(f'"{c}"' for c in _COLUMNS), ", ".join(marks)
    )
    # A raw cursor bypasses peewee's wrapper: make the driver's IntegrityError
    # (a uuid already taken) peewee's, which ``operation`` turns into Conflict.
    with peewee.__exception_wrapper__:  # type: ignore[attr-defined]
        cursor = db.cursor()
        for start in range(0, len(values), _BATCH):
            cursor.executemany(sql, values[start : start + _BATCH])
        bump_many(db, newest, {cid: found[1:] for cid, found in latest.items()})
        if tracks_leaf(s) and not bumps_by_trigger(s):  # the trigger did it on SQLite
            cursor.executemany(
                f'UPDATE "conversation" SET "current_leaf_id" = {db.param} WHERE "id" = {db.param}',
                [(leaf, cid) for cid, leaf in parent.items()],
            )
    return len(values)


def _as_utc(value: _dt.datetime) -> _dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)

"""Shared model plumbing: the session router, UTC timestamps, uuids, ``to_dict``.

Models are bound to :data:`router`, a database proxy whose target is the
database of the innermost open session *in the current thread or asyncio
task*. Two stores can therefore be used one after the other, nested, or from
different threads or tasks, and never see each other's rows.

    from localchat import local_session
    from localchat.models import User
    with local_session() as s:          # binds the router for this block
        User.create(email="ada@example.org")
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import uuid as _uuid
from typing import Any

from peewee import (
    SQL,
    AutoField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    Field,
    Model,
    NodeList,
    SqliteDatabase,
    UUIDField,
)
from playhouse.shortcuts import model_to_dict

from ..errors import NoSession

__all__ = [
    "router",
    "utcnow",
    "IdField",
    "SecretField",
    "SECRET_FIELDS",
    "UTCDateTimeField",
    "HexUUIDField",
    "BaseModel",
    "TimestampedModel",
]


class _SessionRouter(DatabaseProxy):
    """A ``DatabaseProxy`` whose target is a per-thread, per-task stack of databases.

    The stack is an immutable tuple in a ``ContextVar``: each thread has its
    own context, and each asyncio task a copy of its creator's, so a task that
    opens a session never moves another task's target (a list would be shared
    by the copies).
    """

    __slots__ = ("_stack", "_backend")

    def __init__(self) -> None:
        object.__setattr__(self, "_stack", contextvars.ContextVar("localchat_router", default=()))
        object.__setattr__(self, "_backend", None)
        object.__setattr__(self, "_callbacks", [])

    @property
    def obj(self) -> Any:
        stack = self._stack.get()
        return stack[-1] if stack else None

    def push(self, database: Any) -> None:
        self._stack.set((*self._stack.get(), database))
        # Field hooks (JSONField, BlobField) keep per-backend converters; fire
        # them when the backend changes (one backend per process). SQLite's
        # sync and asyncio databases share one kind of converter.
        backend = type(database)
        if backend is not self._backend:
            if isinstance(database, SqliteDatabase) and isinstance(self._backend, type):
                if issubclass(self._backend, SqliteDatabase):
                    object.__setattr__(self, "_backend", backend)
                    return
            object.__setattr__(self, "_backend", backend)
            for callback in self._callbacks:
                callback(database)

    def attach_callback(self, callback: Any) -> Any:
        """Register a field's hook; the next session fires it (and every other hook) again.

        peewee calls this whenever a ``JSONField``/``BlobField`` is bound to a
        model (``Model._meta.add_field`` included) and, with no session open,
        then clears the field's converters; forgetting the backend makes the
        next :meth:`push` restore them, instead of a JSON value reaching the
        driver raw.
        """
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        object.__setattr__(self, "_backend", None)
        return callback

    def pop(self) -> None:
        self._stack.set(self._stack.get()[:-1])

    def initialize(self, obj: Any) -> None:  # pragma: no cover - not used
        raise TypeError("the session router is bound by sessions, not initialize().")

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        target = self.obj
        if target is None:
            raise NoSession(
                "no open localchat session in this thread or task; wrap the call in "
                "`with get_session() as s:` or `with local_session() as s:`."
            )
        return getattr(target, attr)


router = _SessionRouter()


def utcnow() -> _dt.datetime:
    """The current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


class UTCDateTimeField(DateTimeField):
    """Stores naive UTC, returns aware UTC; naive input is taken as UTC.

    One storage form everywhere keeps SQLite's text comparison correct and
    PostgreSQL's ``timestamp`` unambiguous.
    """

    def db_value(self, value: Any) -> Any:
        if isinstance(value, _dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        if type(value) is str:  # the stored naive-UTC text: one C call, not peewee's loop
            try:
                return _dt.datetime.fromisoformat(value + "+00:00")
            except ValueError:
                pass  # another form (with an offset, a date only, ...): peewee parses it
        value = super().python_value(value)
        if isinstance(value, _dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value


class HexUUIDField(UUIDField):
    """peewee's ``UUIDField`` (stored as 32 hex digits), read back in one step.

    ``uuid.UUID(hex)`` re-checks and re-parses the text; here a stored value
    becomes a ``UUID`` directly (half the time; every listed row has one).
    """

    def python_value(self, value: Any) -> Any:
        if type(value) is str and len(value) == 32:
            try:
                number = int(value, 16)
            except ValueError:
                number = -1
            if number >= 0:  # what uuid.UUID(value) would accept, without its checks
                parsed = object.__new__(_uuid.UUID)
                object.__setattr__(parsed, "int", number)
                object.__setattr__(parsed, "is_safe", _uuid.SafeUUID.unknown)
                return parsed
        return super().python_value(value)


class IdField(AutoField):
    """The integer primary key; its values are never handed out twice.

    SQLite DDL gets ``AUTOINCREMENT`` (what migration 0006 gives every table):
    a plain ``INTEGER PRIMARY KEY`` would give the next row the id of a deleted
    newest row. PostgreSQL's ``SERIAL`` sequence never goes back on its own.
    """

    def ddl(self, ctx: Any) -> Any:
        node = super().ddl(ctx)
        if ctx.state.field_types.get("AUTO") == "INTEGER":  # SQLite
            return NodeList((node, SQL("AUTOINCREMENT")))
        return node


#: Every :class:`SecretField` of every model: what ``to_dict()`` leaves out.
SECRET_FIELDS: set[Field] = set()


class SecretField(CharField):
    """A column holding a secret's hash (a password, a session token).

    Stored like any ``CharField``; ``to_dict()`` leaves it out, at every depth
    of a recursive dict, unless called with ``include_secrets=True``.
    """

    def bind(self, model: Any, name: str, set_attribute: bool = True) -> None:
        super().bind(model, name, set_attribute)
        SECRET_FIELDS.add(self)


class BaseModel(Model):
    """Base of every localchat table: integer ``id`` and ``to_dict()``."""

    id = IdField()

    class Meta:
        database = router
        legacy_table_names = False

    def to_dict(self, *, include_secrets: bool = False, **kwargs: Any) -> dict[str, Any]:
        """A JSON-ready dict of this row's columns (foreign keys as ids).

        Keywords go to ``playhouse.shortcuts.model_to_dict`` (``recurse``,
        ``backrefs``, ``only``, ``exclude``...). Password and token hashes
        (:data:`SECRET_FIELDS`) are left out, also from related rows, unless
        ``include_secrets=True``.
        """
        kwargs.setdefault("recurse", False)
        if not include_secrets:
            kwargs["exclude"] = {*(kwargs.get("exclude") or ()), *SECRET_FIELDS}
        data = model_to_dict(self, **kwargs)
        for key, value in data.items():
            if isinstance(value, _uuid.UUID):
                data[key] = str(value)
            elif isinstance(value, (_dt.datetime, _dt.date)):
                data[key] = value.isoformat()
        return data

    # A row reads as the mapping to_dict() gives: dict(row) == row.to_dict(). FastAPI
    # encodes a returned row this way (jsonable_encoder tries dict() first), so an
    # endpoint without response_model sends to_dict(), never a password hash.
    def keys(self) -> list[str]:
        """The keys of :meth:`to_dict`."""
        return list(self.to_dict())

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]


class TimestampedModel(BaseModel):
    """Adds a public ``uuid`` and ``created_at`` / ``updated_at``."""

    uuid = HexUUIDField(unique=True, default=_uuid.uuid4)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    def save(self, *args: Any, **kwargs: Any) -> int:
        if self.get_id() is not None:  # an update: move updated_at
            self.updated_at = utcnow()
        return super().save(*args, **kwargs)

"""The record types of the localchat export format and how a row becomes one.

    from localchat.portable.records import TABLES, table_for
    spec = table_for("message")
    spec.model, spec.foreign          # (Message, {"conversation": Conversation, "parent": Message})

One :class:`TableSpec` per exported table, in import order (a record's
references always point at a type listed before it). Every column except the
integer ``id`` is a key of its record; a foreign key is the referenced row's
``uuid`` (``response.message`` is its message's uuid, ``message.parent`` the
parent message's). Times are ISO 8601 with ``+00:00``, uuids are the usual
hyphenated form, JSON columns are JSON values.

Two tables are not exported: ``web_session`` (login tokens of one machine's web
UI: secrets, and meaningless elsewhere) and the search indexes (rebuilt from
the rows on import).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid as _uuid
from typing import Any

import peewee

from ..models import (
    AuditLog,
    Conversation,
    Document,
    KnowledgeChunk,
    LLMModel,
    LLMService,
    Message,
    PromptTemplate,
    Response,
    User,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TableSpec",
    "TABLES",
    "table_for",
    "to_json_value",
    "SQL_DEFAULTS",
]

#: The value of the header's ``format`` key.
FORMAT = "localchat-export"
#: The version of the record layout this localchat writes (and the newest it reads).
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One exported table: its record ``type``, model, columns and references."""

    kind: str
    model: type[peewee.Model]
    #: column name -> referenced model, for each foreign key
    foreign: dict[str, type[peewee.Model]]
    #: the record key that identifies a row ("uuid"; "message" for a response)
    key: str = "uuid"
    #: further unique columns: a record matching an existing row on one is that row
    natural: tuple[tuple[str, ...], ...] = ()
    #: columns left out unless asked for (password hashes)
    secret: tuple[str, ...] = ()

    @property
    def fields(self) -> list[peewee.Field]:
        """Every column but ``id`` (and the row ids a record cannot carry), in declaration order."""
        return [f for f in self.model._meta.sorted_fields if f.name not in _NOT_CARRIED]

    @property
    def table(self) -> str:
        return str(self.model._meta.table_name)


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "user",
        User,
        {},
        natural=(("email",), ("username",), ("external_id",)),
        secret=("password_hash",),
    ),
    TableSpec("llm_service", LLMService, {}, natural=(("name",),)),
    TableSpec("llm_model", LLMModel, {"service": LLMService}, natural=(("service", "name"),)),
    TableSpec("prompt_template", PromptTemplate, {}, natural=(("key",),)),
    TableSpec("knowledge_chunk", KnowledgeChunk, {}, natural=(("source", "external_id"),)),
    TableSpec("audit_log", AuditLog, {}),
    TableSpec("conversation", Conversation, {"user": User}, natural=(("external_id",),)),
    TableSpec("message", Message, {"conversation": Conversation, "parent": Message}),
    TableSpec("response", Response, {"message": Message}, key="message"),
    TableSpec(
        "document",
        Document,
        {"user": User, "conversation": Conversation, "message": Message},
    ),
)
_BY_TYPE = {spec.kind: spec for spec in TABLES}


#: Columns no record carries: ``id``, and ``current_leaf_id`` (a message's row id,
#: meaningless in another store; a conversation record may name its leaf by uuid instead,
#: ``current_leaf``: see :mod:`localchat.portable.loader`).
_NOT_CARRIED = ("id", "current_leaf_id")
#: What a record that leaves out a NOT NULL column with only an SQL default gets
#: (columns added after a record format was written).
SQL_DEFAULTS: dict[tuple[str, str], Any] = {
    ("conversation", "pinned"): False,
    ("message", "status"): "complete",
}


def table_for(kind: str) -> TableSpec:
    """The spec of record type ``kind`` (KeyError if there is none)."""
    return _BY_TYPE[kind]


def to_json_value(value: Any) -> Any:
    """A column's Python value as JSON: uuids as text, times as ISO 8601 UTC."""
    if isinstance(value, _uuid.UUID):
        return str(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc).isoformat()
    return value

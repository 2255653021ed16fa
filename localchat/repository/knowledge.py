"""Knowledge chunks for retrieval: idempotent upserts, single or in bulk.

    from localchat import local_session
    from localchat.repository import (
        bulk_upsert_knowledge_chunks, list_knowledge_chunks_by_source, upsert_knowledge_chunk)

    with local_session() as s:
        upsert_knowledge_chunk(s, "docs", "Run pip install.", external_id="install",
                               title="Installation")
        bulk_upsert_knowledge_chunks(s, [
            {"source": "docs", "content": "Content 1", "external_id": "doc1"},
            {"source": "docs", "content": "Content 2", "external_id": "doc2"},
        ])
        len(list_knowledge_chunks_by_source(s, "docs"))   # 3

A chunk is the same chunk when it has the same ``(source, external_id)``; an
upsert then updates it in place. Without an ``external_id``, a chunk whose
content (its sha256, kept in ``content_hash``) is already stored in the same
source is that chunk. On update, values given replace stored ones and None
leaves them as they are. Listings are in insertion order.
"""

from __future__ import annotations

import hashlib
import uuid as _uuid
from collections.abc import Iterable, Mapping
from typing import Any

from ..checks import check_json, check_many, check_text, get_row, text_or_none
from ..database import Session
from ..errors import ValidationError
from ..models import KnowledgeChunk, utcnow
from ..operations import operation
from ._base import delete_row, paginate

__all__ = [
    "upsert_knowledge_chunk",
    "bulk_upsert_knowledge_chunks",
    "get_knowledge_chunk_by_id",
    "get_knowledge_chunk_by_external_id",
    "list_knowledge_chunks_by_source",
    "list_all_knowledge_chunks",
    "delete_knowledge_chunk",
]

_FIELDS = ("source", "content", "external_id", "title", "chunk_metadata")
_LOOKUP_BATCH = 500  # values per IN (...): under SQLite's oldest 999-parameter limit
_INSERT_BATCH = 100  # rows per INSERT: 9 columns each

Key = tuple[str, str, str]


def _fields(
    source: Any,
    content: Any,
    external_id: Any = None,
    title: Any = None,
    chunk_metadata: Any = None,
) -> dict[str, Any]:
    """A chunk's columns, checked, with its content hash."""
    content = check_text("content", content)
    return {
        "source": check_text("source", source, max_length=255),
        "content": content,
        "external_id": text_or_none("external_id", external_id, 255),
        "title": text_or_none("title", title, 500),
        "chunk_metadata": check_json("chunk_metadata", chunk_metadata),
        "content_hash": hashlib.sha256(content.encode("utf-8")).hexdigest(),
    }


def _key(fields: Mapping[str, Any]) -> Key:
    """What makes two chunks the same chunk."""
    if fields["external_id"] is not None:
        return (fields["source"], "external_id", fields["external_id"])
    return (fields["source"], "content_hash", fields["content_hash"])


def _changes(row: KnowledgeChunk, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and getattr(row, k) != v}


def _save_changes(row: KnowledgeChunk, changes: dict[str, Any]) -> KnowledgeChunk:
    if changes:
        changes["updated_at"] = utcnow()
        KnowledgeChunk.update(**changes).where(KnowledgeChunk.id == row.id).execute()
        for name, value in changes.items():
            setattr(row, name, value)
    return row


@operation
def upsert_knowledge_chunk(
    s: Session,
    source: str,
    content: str,
    external_id: str | None = None,
    title: str | None = None,
    chunk_metadata: Any = None,
) -> KnowledgeChunk:
    """Insert a chunk, or update the one it already is (see the module docstring)."""
    fields = _fields(source, content, external_id, title, chunk_metadata)
    _, column, value = _key(fields)
    existing = (
        KnowledgeChunk.select()
        .where(
            (KnowledgeChunk.source == fields["source"]) & (getattr(KnowledgeChunk, column) == value)
        )
        .order_by(KnowledgeChunk.id)
        .first()
    )
    if existing is None:
        now = utcnow()
        return KnowledgeChunk.create(created_at=now, updated_at=now, **fields)
    return _save_changes(existing, _changes(existing, fields))


def _checked_chunks(chunks: Iterable[Any]) -> list[dict[str, Any]]:
    checked = []
    for index, chunk in enumerate(check_many("chunks", chunks)):
        if not isinstance(chunk, Mapping):
            raise ValidationError(f"chunk {index} must be a dict, got {type(chunk).__name__}.")
        unknown = sorted(set(chunk) - set(_FIELDS))
        missing = [name for name in ("source", "content") if name not in chunk]
        if unknown or missing:
            raise ValidationError(
                f"chunk {index}: unknown {unknown} / missing {missing}; "
                f"keys are {', '.join(_FIELDS)} (source and content required)."
            )
        try:
            checked.append(_fields(**chunk))
        except ValidationError as exc:
            raise ValidationError(f"chunk {index}: {exc}") from None
    return checked


def _stored(keys: set[Key]) -> dict[Key, KnowledgeChunk]:
    """The stored chunk for each key, looked up in batches (oldest wins on a hash)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for source, column, value in keys:
        groups.setdefault((source, column), []).append(value)
    found: dict[Key, KnowledgeChunk] = {}
    for (source, column), values in groups.items():
        field = getattr(KnowledgeChunk, column)
        values.sort()
        for start in range(0, len(values), _LOOKUP_BATCH):
            batch = values[start : start + _LOOKUP_BATCH]
            query = (
                KnowledgeChunk.select()
                .where((KnowledgeChunk.source == source) & field.in_(batch))
                .order_by(KnowledgeChunk.id)
            )
            for row in query:
                found.setdefault((source, column, getattr(row, column)), row)
    return found


def _insert(new: list[dict[str, Any]]) -> dict[str, KnowledgeChunk]:
    """Insert rows in batches; the stored rows by uuid (fetched back in batches)."""
    now = utcnow()
    for fields in new:
        fields.update(uuid=_uuid.uuid4(), created_at=now, updated_at=now)
    for start in range(0, len(new), _INSERT_BATCH):
        KnowledgeChunk.insert_many(new[start : start + _INSERT_BATCH]).execute()
    uuids = [fields["uuid"] for fields in new]
    rows: dict[str, KnowledgeChunk] = {}
    for start in range(0, len(uuids), _LOOKUP_BATCH):
        query = KnowledgeChunk.select().where(
            KnowledgeChunk.uuid.in_(uuids[start : start + _LOOKUP_BATCH])
        )
        rows.update((str(row.uuid), row) for row in query)
    return rows


@operation
def bulk_upsert_knowledge_chunks(
    s: Session, chunks: Iterable[Mapping[str, Any]]
) -> list[KnowledgeChunk]:
    """Upsert many chunks in one transaction; the stored chunk for each input, in order.

    Every chunk is checked before anything is written (a bad one names its
    index). Existing chunks are found in batched queries; a chunk repeated in
    the input is stored once, later values winning.
    """
    items = _checked_chunks(chunks)
    stored = _stored({_key(fields) for fields in items})
    pending: dict[Key, dict[str, Any]] = {}  # new chunks by key, merged in input order
    by_hash: dict[tuple[str, str], Key] = {}  # (source, hash) -> first pending key
    changed: dict[int, dict[str, Any]] = {}
    keys: list[Key] = []
    for fields in items:
        key = _key(fields)
        if key not in stored and key not in pending and key[1] == "content_hash":
            key = by_hash.get((fields["source"], fields["content_hash"]), key)
        keys.append(key)
        if key in stored:
            row = stored[key]
            changed.setdefault(row.id, {}).update(_changes(row, fields))
        elif key in pending:
            pending[key].update({k: v for k, v in fields.items() if v is not None})
        else:
            pending[key] = dict(fields)
            by_hash.setdefault((fields["source"], fields["content_hash"]), key)
    for row in stored.values():
        _save_changes(row, changed.get(row.id, {}))
    inserted = _insert(list(pending.values()))
    result = {key: inserted[str(fields["uuid"])] for key, fields in pending.items()}
    return [stored[key] if key in stored else result[key] for key in keys]


@operation
def get_knowledge_chunk_by_id(s: Session, chunk_id: int | str) -> KnowledgeChunk | None:
    """The chunk with this id (a uuid also works), or None."""
    return get_row(KnowledgeChunk, chunk_id)


@operation
def get_knowledge_chunk_by_external_id(
    s: Session, external_id: str, source: str | None = None
) -> KnowledgeChunk | None:
    """The chunk with this external id (in ``source``, else the oldest of any source), or None."""
    external_id = check_text("external_id", external_id, allow_empty=True)
    query = KnowledgeChunk.select().where(KnowledgeChunk.external_id == external_id)
    if source is not None:
        query = query.where(KnowledgeChunk.source == check_text("source", source, allow_empty=True))
    return query.order_by(KnowledgeChunk.id).first()


@operation
def list_knowledge_chunks_by_source(
    s: Session, source: str, limit: int | None = 100, offset: int = 0
) -> list[KnowledgeChunk]:
    """The chunks of one source, in insertion order."""
    source = check_text("source", source, allow_empty=True)
    query = KnowledgeChunk.select().where(KnowledgeChunk.source == source)
    return paginate(query.order_by(KnowledgeChunk.id), limit, offset)


#: The source documents' name (a listing, not a search): an alias (see localchat.compat).
search_knowledge_chunks_by_source = list_knowledge_chunks_by_source


@operation
def list_all_knowledge_chunks(
    s: Session, limit: int | None = 100, offset: int = 0
) -> list[KnowledgeChunk]:
    """Every chunk, in insertion order."""
    return paginate(KnowledgeChunk.select().order_by(KnowledgeChunk.id), limit, offset)


@operation
def delete_knowledge_chunk(s: Session, chunk_id: int | str) -> bool:
    """Delete a chunk; False if it did not exist."""
    return delete_row(KnowledgeChunk, chunk_id)

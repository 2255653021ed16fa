"""Write a whole store (or part of it) as localchat's versioned JSON Lines export.

    from localchat import open_store
    from localchat.portable import ExportFilter, export_store

    store = open_store("/tmp/example-export.db")
    store.upgrade()
    with store.read_session() as s, open("/tmp/example-export.jsonl", "w") as fp:
        written = export_store(s, fp)        # records written per type: {} for an empty store
        # export_store(s, fp, ExportFilter(user="ada@example.org", archived=False))

The first line is the header::

    {"type": "header", "format": "localchat-export", "format_version": 1,
     "schema_version": "0006_ids_never_reused", "app": "localchat", "app_version": "0.1.0",
     "created_at": "...", "filter": {...}, "counts": {"user": 2, "message": 10, ...}}

then one record per row, parents before children (``TABLES`` order), each
table in id order, read in keyset pages so memory stays flat whatever the size.
A stored document's bytes follow as ``file`` records (base64 parts of at most
768 KiB, keyed by sha256) just before the ``document`` records that use them.

A filter (user, conversation, since/until on the conversation's
``updated_at``, archived or not) exports the chosen conversations, their
messages, responses and documents, and the users who own them; the tables that
belong to no conversation (prompts, LLM services and models, knowledge chunks,
audit entries) are only in an unfiltered export.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import json
from collections.abc import Callable, Iterator
from typing import IO, Any

import peewee

from .. import __version__
from ..database import Session
from ..errors import ValidationError
from ..models import Conversation, Document
from ..repository import get_conversation_by_id, get_user, get_user_by_email
from ..schema import HISTORY_TABLE
from .records import FORMAT, FORMAT_VERSION, TABLES, TableSpec, to_json_value

__all__ = ["ExportFilter", "export_store", "iter_export_records", "FILE_PART_BYTES"]

#: Raw bytes per ``file`` record (1 MiB once base64-encoded).
FILE_PART_BYTES = 768 * 1024
_PAGE = 2000


@dataclasses.dataclass(frozen=True)
class ExportFilter:
    """Which conversations to export (all by default).

    ``user``: an id, uuid or email; ``conversation``: an id or uuid (one
    that names no row chooses nothing: the export holds no conversation);
    ``since`` / ``until``: the conversation's ``updated_at`` is >= since and
    < until; ``archived``: True for archived ones only, False for active ones only.
    """

    user: Any = None
    conversation: Any = None
    since: _dt.datetime | None = None
    until: _dt.datetime | None = None
    archived: bool | None = None
    #: Also trashed conversations and documents (left out by default).
    include_trashed: bool = False

    @property
    def active(self) -> bool:
        """Whether the filter chooses conversations (the trash aside)."""
        chosen = dataclasses.asdict(self)
        chosen.pop("include_trashed")
        return any(v is not None for v in chosen.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            k: to_json_value(v)
            for k, v in dataclasses.asdict(self).items()
            if v is not None and v is not False
        }


def conversation_where(s: Session, flt: ExportFilter) -> tuple[str, list[Any]]:
    """SQL (on alias ``c``) choosing the filtered conversations, and its parameters."""
    p, parts, params = s.db.param, [], []
    if flt.user is not None:
        by_mail = isinstance(flt.user, str) and "@" in flt.user
        user = get_user_by_email(s, flt.user) if by_mail else get_user(s, flt.user)
        parts.append(f'c."user_id" = {p}')
        params.append(-1 if user is None else user.id)  # no such user: nothing is chosen
    if flt.conversation is not None:
        conv = get_conversation_by_id(s, flt.conversation)
        parts.append(f'c."id" = {p}')
        params.append(-1 if conv is None else conv.id)
    for bound, op in ((flt.since, ">="), (flt.until, "<")):
        if bound is not None:
            if not isinstance(bound, _dt.datetime):
                raise ValidationError(f"since/until must be datetimes, got {bound!r}.")
            parts.append(f'c."updated_at" {op} {p}')
            params.append(Conversation.updated_at.db_value(bound))
    if flt.archived is not None:
        parts.append(f'c."status" {"=" if flt.archived else "<>"} {p}')
        params.append("archived")
    if not flt.include_trashed:
        parts.append('c."trashed_at" IS NULL')
    return " AND ".join(parts) or "1=1", params


_TRASHED = 'SELECT c."id" FROM "conversation" c WHERE c."trashed_at" IS NOT NULL'
#: Unfiltered export: the rows left out while conversations are in the trash.
_NOT_TRASHED = {
    "conversation": 't."trashed_at" IS NULL',
    "message": f't."conversation_id" NOT IN ({_TRASHED})',
    "response": (
        f't."message_id" NOT IN (SELECT m."id" FROM "message" m '
        f'WHERE m."conversation_id" IN ({_TRASHED}))'
    ),
    "document": (
        f't."trashed_at" IS NULL AND (t."conversation_id" IS NULL '
        f'OR t."conversation_id" NOT IN ({_TRASHED}))'
    ),
}


def _unfiltered(spec: TableSpec, include_trashed: bool) -> str:
    return "1=1" if include_trashed else _NOT_TRASHED.get(spec.kind, "1=1")


def _scope(spec: TableSpec, chosen: str) -> str | None:
    """The WHERE (on alias ``t``) of ``spec``'s rows under a filter, or None: not exported."""
    inside = f'SELECT c."id" FROM "conversation" c WHERE {chosen}'
    if spec.kind == "user":  # the owners of the conversations, and of their documents
        return (
            f't."id" IN (SELECT c."user_id" FROM "conversation" c WHERE {chosen}) '
            f'OR t."id" IN (SELECT d."user_id" FROM "document" d '
            f'WHERE d."conversation_id" IN ({inside}))'
        )
    if spec.kind in ("conversation",):
        return f't."id" IN ({inside})'
    if spec.kind == "message":
        return f't."conversation_id" IN ({inside})'
    if spec.kind == "response":
        return (
            f't."message_id" IN (SELECT m."id" FROM "message" m '
            f'WHERE m."conversation_id" IN ({inside}))'
        )
    if spec.kind == "document":
        return f't."conversation_id" IN ({inside})'
    return None


class _Reader:
    """Keyset-paged SELECTs of one table, foreign keys as the referenced uuids."""

    def __init__(self, db: peewee.Database, spec: TableSpec, where: str, secrets: bool):
        self.db, self.spec = db, spec
        self.fields = [f for f in spec.fields if secrets or f.name not in spec.secret]
        cols, joins = ['t."id"'], []
        for n, f in enumerate(self.fields):
            if f.name in spec.foreign:
                target = spec.foreign[f.name]._meta.table_name
                cols.append(f'j{n}."uuid"')
                joins.append(f'LEFT JOIN "{target}" j{n} ON j{n}."id" = t."{f.column_name}"')
            else:
                cols.append(f't."{f.column_name}"')
        self.sql = (
            f'SELECT {", ".join(cols)} FROM "{spec.table}" t {" ".join(joins)} '
            f'WHERE t."id" > {db.param} AND ({where}) ORDER BY t."id" LIMIT {_PAGE}'
        )
        self.count_sql = f'SELECT COUNT(*) FROM "{spec.table}" t WHERE {where}'

    def converters(self) -> list[Callable[[Any], Any]]:
        out = []
        for f in self.fields:
            target = self.spec.foreign.get(f.name)
            field = target._meta.fields["uuid"] if target is not None else f
            out.append(field.python_value)
        return out

    def rows(self, params: list[Any]) -> Iterator[tuple[int, dict[str, Any]]]:
        convert = self.converters()
        names = [f.name for f in self.fields]
        last = 0
        while True:
            page = self.db.execute_sql(self.sql, [last, *params]).fetchall()
            for row in page:
                record = {"type": self.spec.kind}
                for name, conv, value in zip(names, convert, row[1:], strict=True):
                    record[name] = to_json_value(None if value is None else conv(value))
                yield row[0], record
                last = row[0]
            if len(page) < _PAGE:
                return


def iter_export_records(
    s: Session, flt: ExportFilter | None = None, *, include_secrets: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield the header, then every record, as JSON-ready dicts (see the module docstring)."""
    flt = flt or ExportFilter()
    db = s.db
    chosen, params = conversation_where(s, flt)
    readers = []
    for spec in TABLES:
        where = _scope(spec, chosen) if flt.active else _unfiltered(spec, flt.include_trashed)
        if where is None:
            continue
        if flt.active and spec.kind == "document" and not flt.include_trashed:
            where = f'({where}) AND t."trashed_at" IS NULL'
        uses = params * where.count(chosen) if flt.active else []
        readers.append((_Reader(db, spec, where, include_secrets), uses))
    counts = {r.spec.kind: int(db.execute_sql(r.count_sql, p).fetchone()[0]) for r, p in readers}
    yield {
        "type": "header",
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "schema_version": _schema_version(db),
        "app": "localchat",
        "app_version": __version__,
        "created_at": to_json_value(_dt.datetime.now(_dt.timezone.utc)),
        "filter": flt.to_dict(),
        "secrets": include_secrets,
        "counts": counts,
    }
    sent: set[str] = set()
    for reader, uses in readers:
        for row_id, record in reader.rows(uses):
            if reader.spec.kind == "document":
                yield from _file_records(s, row_id, record, sent)
            yield record


def _schema_version(db: peewee.Database) -> str | None:
    try:
        row = db.execute_sql(f'SELECT "name" FROM "{HISTORY_TABLE}" ORDER BY "id" DESC LIMIT 1')
        found = row.fetchone()
    except peewee.DatabaseError:  # pragma: no cover - every migrated store has the table
        return None
    return None if found is None else str(found[0])


def _file_records(
    s: Session, row_id: int, record: dict[str, Any], sent: set[str]
) -> Iterator[dict[str, Any]]:
    """The ``file`` records of a document's bytes (once per sha256); sets ``record["file"]``."""
    record["file"] = False
    digest = record.get("sha256")
    if not digest or not record.get("stored_name"):
        return
    if digest in sent:
        record["file"] = True
        return
    doc = Document.get_by_id(row_id)
    where = doc.path
    if where is None:
        return
    try:
        fp = open(where, "rb")  # noqa: SIM115 - closed below, after the last part
    except OSError:
        return  # the file is missing: the row is exported without its bytes
    with fp:
        part = 0
        while True:
            chunk = fp.read(FILE_PART_BYTES)
            if not chunk and part:
                break
            yield {
                "type": "file",
                "sha256": digest,
                "size": record.get("size"),
                "part": part,
                "data": base64.b64encode(chunk).decode("ascii"),
            }
            part += 1
            if len(chunk) < FILE_PART_BYTES:
                break
    sent.add(digest)
    record["file"] = True


def export_store(
    s: Session,
    fp: IO[str],
    flt: ExportFilter | None = None,
    *,
    include_secrets: bool = False,
    as_json: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write the export to the text file ``fp``; returns the records written per type.

    Use a read session (``store.read_session()``): the export is one snapshot.
    ``include_secrets=True`` also writes password hashes. ``as_json=True``
    writes the same records as one JSON document, ``{"header": {...},
    "records": [...]}`` (for other programs; ``import`` reads the lines).
    ``progress`` is called with the number of records written so far.
    """
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    written: dict[str, int] = {}
    n = 0
    for record in iter_export_records(s, flt, include_secrets=include_secrets):
        kind = record["type"]
        if as_json:
            if kind == "header":
                fp.write('{"header": ' + dumps(record) + ', "records": [')
            else:
                fp.write(("\n" if n == 1 else ",\n") + dumps(record))
        else:
            fp.write(dumps(record))
            fp.write("\n")
        if kind != "header":
            written[kind] = written.get(kind, 0) + 1
        n += 1
        if progress is not None and n % 1000 == 0:
            progress(n)
    if as_json:
        fp.write("]}\n")
    return written

"""Put export records into a store: checked, idempotent, in bulk, all or nothing.

    from localchat import local_session
    from localchat.portable.loader import Loader

    with local_session() as s:
        loader = Loader(s)
        loader.add("line 2", {"type": "conversation", "uuid": "0b0e...", "title": "Hi", ...})
        report = loader.finish()          # {"added": {...}, "skipped": {...}}

Every importer (localchat files, ChatGPT, llm) turns its source into the
records of :mod:`localchat.portable.records` and hands them to a
:class:`Loader`; callers run it inside one savepoint (see
:func:`localchat.portable.import_path`), so a bad record anywhere leaves the
store as it was.

* A record whose key (``uuid``; a response's ``message``) is already in the
  store, or whose unique natural key is (a user's email, a conversation's
  ``external_id``, a prompt's ``key``...), is that row: it is skipped and its
  children attach to the existing row. Importing a file twice changes nothing.
* Records are checked (types, required columns, roles and statuses, text that
  can be stored) and inserted in batches with ``executemany`` under ids taken
  in advance. On SQLite the per-row message triggers (search index, the
  conversation bump) are set aside for the import and the new messages are
  indexed in one statement before the transaction ends, so search is complete
  when the import commits.
* A document's bytes come as ``file`` records before it; they are spooled to a
  temporary folder, checked against their sha256 and stored through
  ``create_document_with_file`` (the store's own folder, deduplicated).
* A conversation record may name its current leaf, ``"current_leaf": <message
  uuid>`` (ChatGPT's ``current_node``): when the import adds that message, it
  becomes the conversation's current leaf (a new conversation opens on that
  branch; one the source went on with moves to it). A message the store
  already had moves nothing, so importing twice keeps the branch the user chose.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import hashlib
import os
import tempfile
import uuid as _uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee

from ..database import Session
from ..errors import ValidationError
from ..models import (
    AUDIT_STATUSES,
    CONVERSATION_STATUSES,
    MESSAGE_STATUSES,
    ROLES,
    Conversation,
    Document,
    Message,
)
from ..repository import create_document_with_file
from .records import SQL_DEFAULTS, TableSpec, table_for

__all__ = ["Loader", "LoadReport", "preview"]

_BATCH = 5000
_IN = 500  # values per IN (...) list
_CHOICES = {
    ("message", "role"): ROLES,
    ("conversation", "status"): CONVERSATION_STATUSES,
    ("message", "status"): MESSAGE_STATUSES,
    ("audit_log", "status"): AUDIT_STATUSES,
}
_EXTRA_KEYS = {"type", "file"}
#: Keys a record of one type may carry beside its columns.
_RECORD_KEYS = {"conversation": {"current_leaf"}}
#: SQLite triggers on ``message`` that an import sets aside and replays in bulk.
_MESSAGE_TRIGGERS = ("message_fts_ai", "message_bumps_conversation")
_INT64 = 2**63
_FIELDS: dict[str, dict[str, tuple[peewee.Field, int, int]]] = {}


def preview(text: str) -> str:
    """A conversation's ``last_message`` for ``text`` (200 characters at most)."""
    return text if len(text) <= 200 else text[:199] + "\u2026"


@dataclasses.dataclass
class LoadReport:
    """Rows added and rows already present, per record type."""

    added: dict[str, int]
    skipped: dict[str, int]


class _Spooled:
    """The bytes of one ``file`` record series, written to a temporary file."""

    def __init__(self, folder: Path, sha256: str, size: int):
        self.path = folder / sha256
        self.sha256, self.size = sha256, size
        self.fp = open(self.path, "wb")  # noqa: SIM115 - closed by finish()
        self.hash = hashlib.sha256()
        self.written, self.parts = 0, 0

    @property
    def complete(self) -> bool:
        return self.fp.closed

    def write(self, where: str, part: int, data: bytes) -> None:
        if self.complete or part != self.parts:
            raise ValidationError(f"{where}: file {self.sha256}: part {part} is out of order.")
        if self.written + len(data) > self.size:
            raise ValidationError(
                f"{where}: file {self.sha256}: more bytes than its size {self.size}."
            )
        self.fp.write(data)
        self.hash.update(data)
        self.written += len(data)
        self.parts += 1
        if self.written == self.size:
            self.fp.close()
            if self.hash.hexdigest() != self.sha256:
                raise ValidationError(
                    f"{where}: file {self.sha256}: the bytes do not match their sha256."
                )


class Loader:
    """Checks records and inserts them in batches; see the module docstring.

    ``owner_id``: every imported conversation (and document) belongs to this
    user. ``progress`` is called with the number of records taken so far.
    """

    def __init__(
        self,
        s: Session,
        *,
        owner_id: int | None = None,
        progress: Callable[[int], None] | None = None,
        storage_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.s, self.db = s, s.db
        self.storage_dir = storage_dir
        self.owner_id = owner_id
        self.progress = progress
        self.sqlite = isinstance(self.db, peewee.SqliteDatabase)
        self.kind: str | None = None
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.cache: dict[str, dict[str, int]] = {}  # table -> uuid (hex) -> id
        self.added: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.deferred: list[tuple[int, str, str]] = []
        self.new_conversations: set[int] = set()
        self.touched: set[int] = set()
        self.first_message: int | None = None
        self.empty: dict[str, bool] = {}
        self.seen = 0
        self.tmp = tempfile.TemporaryDirectory(prefix="localchat-import-")
        self.files: dict[str, _Spooled] = {}
        self.leaves: dict[str, str] = {}  # current_leaf uuids (hex) not seen yet -> where named
        self.wanted: set[str] = set()  # every current_leaf uuid (hex)
        self.new_leaves: dict[int, int] = {}  # conversation id -> its new current leaf
        self.triggers = self._set_triggers_aside()

    # -- intake ------------------------------------------------------------
    def add(self, where: str, record: Any) -> None:
        """Take one record; ``where`` names it in errors ("line 12", "conversation …")."""
        if not isinstance(record, dict):
            raise ValidationError(
                f"{where}: a record must be a JSON object, got {type(record).__name__}."
            )
        kind = record.get("type")
        self.seen += 1
        if self.progress is not None and self.seen % 1000 == 0:
            self.progress(self.seen)
        if kind == "file":
            self._file(where, record)
            return
        if not isinstance(kind, str) or kind == "header":
            raise ValidationError(f"{where}: unknown record type {kind!r}.")
        try:
            table_for(kind)
        except KeyError:
            raise ValidationError(f"{where}: unknown record type {kind!r}.") from None
        if kind != self.kind or len(self.pending) >= _BATCH:
            self.flush()
        self.kind = kind
        self.pending.append((where, record))

    def flush(self) -> None:
        if self.pending and self.kind is not None:
            batch, self.pending = self.pending, []
            self._load(table_for(self.kind), batch)

    def finish(self) -> LoadReport:
        """Insert what is pending, attach late parents, index; the report."""
        try:
            self.flush()
            self._late_parents()
            for spooled in self.files.values():
                if not spooled.complete:
                    raise ValidationError(
                        f"file {spooled.sha256}: the data ends after {spooled.written} of "
                        f"{spooled.size} bytes."
                    )
            self._restore_triggers()
            self._bump_conversations()
            self._move_leaves()
        finally:
            self.close()
        return LoadReport(dict(self.added), dict(self.skipped))

    def close(self) -> None:
        for spooled in self.files.values():
            spooled.fp.close()
        self.tmp.cleanup()

    # -- files -------------------------------------------------------------
    def _file(self, where: str, record: dict[str, Any]) -> None:
        sha, size, part, data = (record.get(k) for k in ("sha256", "size", "part", "data"))
        if not (
            isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
        ):
            raise ValidationError(
                f"{where}: file sha256 must be 64 lower-case hex digits, got {sha!r}."
            )
        for name, value in (("size", size), ("part", part)):
            if type(value) is not int or value < 0:
                raise ValidationError(
                    f"{where}: file {name} must be an integer >= 0, got {value!r}."
                )
        if not isinstance(data, str):
            raise ValidationError(f"{where}: file data must be base64 text.")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError(f"{where}: file data is not valid base64.") from None
        assert isinstance(size, int) and isinstance(part, int)  # checked above
        spooled = self.files.get(sha)
        if spooled is None:
            if part != 0:
                raise ValidationError(f"{where}: file {sha}: part {part} comes before part 0.")
            spooled = self.files[sha] = _Spooled(Path(self.tmp.name), sha, size)
        elif spooled.complete and part == 0:
            return  # the same bytes again
        spooled.write(where, part, raw)

    def add_file(self, where: str, source: str | os.PathLike[str]) -> str:
        """Take a file from disk for a later document record; its sha256."""
        digest = hashlib.sha256()
        with open(source, "rb") as fp:
            size = os.fstat(fp.fileno()).st_size
            for chunk in iter(lambda: fp.read(1 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        if sha not in self.files:
            spooled = self.files[sha] = _Spooled(Path(self.tmp.name), sha, size)
            with open(source, "rb") as fp:
                for part, chunk in enumerate(iter(lambda: fp.read(1 << 20), b"")):
                    spooled.write(where, part, chunk)
            if size == 0:
                spooled.fp.close()
        return sha

    # -- checking ----------------------------------------------------------
    def _check(self, spec: TableSpec, where: str, record: dict[str, Any]) -> dict[str, Any]:
        """The record's columns as Python values (foreign keys as uuids)."""
        fields = _FIELDS.get(spec.kind)
        if fields is None:
            fields = _FIELDS[spec.kind] = {f.name: (f, *_kind_of(spec, f)) for f in spec.fields}
        unknown = record.keys() - fields.keys() - _EXTRA_KEYS - _RECORD_KEYS.get(spec.kind, set())
        if unknown:
            raise ValidationError(
                f"{where}: {spec.kind} has no column(s) {', '.join(sorted(unknown))}."
            )
        out: dict[str, Any] = {}
        for name, (field, code, limit) in fields.items():
            if name in record:  # the common cases first, the rest (and errors) in _value
                value = record[name]
                if type(value) is str:
                    if code == _TEXT:
                        if value.isascii() and "\0" not in value and len(value) <= limit:
                            out[name] = value
                            continue
                    elif code == _UUID:
                        digits = _uuid_hex(value)
                        if digits is not None:
                            out[name] = digits
                            continue
                    elif code == _TIME:
                        stamp = _utc_text(value)
                        if stamp is not None:
                            out[name] = stamp
                            continue
                    elif code == _CHOICE and value in _CHOICES[spec.kind, name]:
                        out[name] = value
                        continue
                elif value is None and field.null:
                    out[name] = None
                    continue
                elif code == _JSON:
                    out[name] = value
                    continue
                out[name] = _value(spec, where, field, value)
                continue
            if name == spec.key:
                raise ValidationError(f"{where}: {spec.kind} has no {name!r}.")
            if field.default is not None:
                value = field.default() if callable(field.default) else field.default
                if isinstance(value, _dt.datetime):  # utcnow(): stored as naive UTC text
                    value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
                    value = value.isoformat(" ")
                out[name] = value
                continue
            if (spec.kind, name) in SQL_DEFAULTS:
                out[name] = SQL_DEFAULTS[spec.kind, name]
                continue
            if not field.null:
                raise ValidationError(f"{where}: {spec.kind} needs {name!r}.")
            out[name] = None
        return out

    # -- loading -----------------------------------------------------------
    def _load(self, spec: TableSpec, batch: list[tuple[str, dict[str, Any]]]) -> None:
        rows = [(where, self._check(spec, where, rec), rec) for where, rec in batch]
        if self.owner_id is not None and spec.kind in ("conversation", "document"):
            for _, row, _ in rows:
                row["user"] = self.owner_id
        self._resolve_foreign(spec, rows)
        if spec.kind == "conversation":
            self._want_leaves(rows)
        fresh = self._without_existing(spec, rows)
        if spec.kind == "message" and self.leaves:
            for _, row, _ in rows:
                self.leaves.pop(row["uuid"], None)  # in the import (added or already stored)
        if not fresh:
            return
        if spec.kind == "document":
            self._insert_documents(fresh)
            return
        ids = self._reserve(spec, len(fresh))
        if spec.kind == "message":
            self._parents(fresh, ids)
            if self.first_message is None:
                self.first_message = ids[0]
            for _, row, _ in fresh:
                if row["conversation"] not in self.new_conversations:
                    self.touched.add(row["conversation"])
        self._insert(spec, fresh, ids)
        if spec.kind == "message" and self.wanted:
            for (_, row, _), mid in zip(fresh, ids, strict=True):
                if row["uuid"] in self.wanted:
                    self.new_leaves[row["conversation"]] = mid
        if spec.kind == "conversation":
            self.new_conversations.update(ids)
        self.added[spec.kind] += len(fresh)

    def _want_leaves(self, rows: list[tuple[str, dict[str, Any], Any]]) -> None:
        """Note the ``current_leaf`` each conversation record names (see the module doc)."""
        for where, _, rec in rows:
            leaf = rec.get("current_leaf")
            if leaf is None:
                continue
            digits = _uuid_hex(leaf) if isinstance(leaf, str) else None
            if digits is None:
                raise ValidationError(
                    f"{where}: conversation current_leaf must be a message uuid, got {leaf!r}."
                )
            self.leaves[digits] = where
            self.wanted.add(digits)

    def _move_leaves(self) -> None:
        """Every ``current_leaf`` named a message of the import; those it added become their
        conversation's current leaf."""
        if self.leaves:
            digits, where = next(iter(self.leaves.items()))
            raise ValidationError(
                f"{where}: conversation current_leaf {_uuid.UUID(digits)} is not a message "
                "of the import."
            )
        columns = {c.name for c in self.db.get_columns("conversation")} if self.new_leaves else ()
        if "current_leaf_id" in columns:  # a store from migration 0008 on
            self.db.cursor().executemany(
                f'UPDATE "conversation" SET "current_leaf_id" = {self.db.param} '
                f'WHERE "id" = {self.db.param}',
                [(leaf, cid) for cid, leaf in self.new_leaves.items()],
            )

    def _resolve_foreign(
        self, spec: TableSpec, rows: list[tuple[str, dict[str, Any], Any]]
    ) -> None:
        for name, target in spec.foreign.items():
            if spec.kind == "message" and name == "parent":
                continue  # may point into this batch: see _parents
            wanted = {row[name] for _, row, _ in rows if isinstance(row[name], str)}
            found = self._ids(target, wanted)
            for where, row, _ in rows:
                value = row[name]
                if isinstance(value, str):
                    if value not in found:
                        raise ValidationError(
                            f"{where}: {spec.kind} {name} {value} is in neither the import "
                            "nor the store."
                        )
                    row[name] = found[value]

    def _ids(self, model: type[peewee.Model], uuids: set[str]) -> dict[str, int]:
        """uuid -> id of the rows of ``model`` among ``uuids``."""
        table = model._meta.table_name
        cache = self.cache.get(table) if table != "message" else None
        found = {u: cache[u] for u in uuids if cache and u in cache}
        todo = [u for u in uuids if u not in found]
        uid_field = model._meta.fields["uuid"]
        to_db, to_py = uid_field.db_value, uid_field.python_value
        for start in range(0, len(todo), _IN):
            chunk = todo[start : start + _IN]
            marks = ", ".join([self.db.param] * len(chunk))
            sql = f'SELECT "uuid", "id" FROM "{table}" WHERE "uuid" IN ({marks})'
            for uid, rid in self.db.execute_sql(sql, [to_db(u) for u in chunk]).fetchall():
                found[uid if type(uid) is str and len(uid) == 32 else to_py(uid).hex] = rid
        if table != "message":
            self.cache.setdefault(table, {}).update(found)
        return found

    def _without_existing(
        self, spec: TableSpec, rows: list[tuple[str, dict[str, Any], Any]]
    ) -> list[tuple[str, dict[str, Any], Any]]:
        """The rows not in the store yet (known ones map their uuid to the stored id)."""
        if self._empty_at_start(spec.table):
            present: dict[Any, int] = {}  # only this import's rows: no lookups needed
        elif spec.key == "uuid":
            present = self._ids(spec.model, {row["uuid"] for _, row, _ in rows})
        else:  # a response: keyed by its message's id
            ids = [row[spec.key] for _, row, _ in rows]
            present = {}
            for start in range(0, len(ids), _IN):
                chunk = ids[start : start + _IN]
                marks = ", ".join([self.db.param] * len(chunk))
                sql = (
                    f'SELECT "{spec.key}_id" FROM "{spec.table}" WHERE "{spec.key}_id" IN ({marks})'
                )
                present.update((r[0], r[0]) for r in self.db.execute_sql(sql, chunk).fetchall())
        fresh, keys = [], set()
        naturals: set[tuple[Any, ...]] = set()
        cache = self.cache.setdefault(spec.table, {}) if spec.kind != "message" else None
        for where, row, rec in rows:
            key = row[spec.key]
            known = present.get(key)
            if known is None:
                known = self._natural(spec, row)
            natural = [(n, *(row[c] for c in n)) for n in spec.natural]
            natural = [k for k in natural if None not in k]
            if known is None and (key in keys or naturals.intersection(natural)):
                known = -1  # the same row twice in one batch
            if known is not None:
                self.skipped[spec.kind] += 1
                if cache is not None and known > 0 and spec.key == "uuid":
                    cache[row["uuid"]] = known
                continue
            keys.add(key)
            naturals.update(natural)
            fresh.append((where, row, rec))
        return fresh

    def _natural(self, spec: TableSpec, row: dict[str, Any]) -> int | None:
        for names in spec.natural:
            values = [row[n] for n in names]
            if any(v is None for v in values):
                continue
            fields = [spec.model._meta.fields[n] for n in names]
            where = " AND ".join(f'"{f.column_name}" = {self.db.param}' for f in fields)
            params = [f.db_value(v) if not isinstance(f, peewee.ForeignKeyField) else v
                      for f, v in zip(fields, values, strict=True)]  # fmt: skip
            sql = f'SELECT "id" FROM "{spec.table}" WHERE {where}'
            found = self.db.execute_sql(sql, params).fetchone()
            if found is not None:
                return int(found[0])
        return None

    def _reserve(self, spec: TableSpec, n: int) -> list[int]:
        table = spec.table
        if self.sqlite:
            start = int(
                self.db.execute_sql(
                    f'SELECT MAX(COALESCE((SELECT MAX("id") FROM "{table}"), 0), '
                    f"COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0))"
                ).fetchone()[0]
            )
            return list(range(start + 1, start + n + 1))
        cursor = self.db.execute_sql(
            f"SELECT nextval(pg_get_serial_sequence('\"{table}\"', 'id')) "
            "FROM generate_series(1, %s)",
            (n,),
        )
        return [int(r[0]) for r in cursor.fetchall()]

    def _empty_at_start(self, table: str) -> bool:
        """Whether ``table`` held no row when this import first came to it.

        Then every row it holds is one this import added: a uuid seen again is
        a clash the database refuses, and no lookup is needed to find it.
        """
        if table not in self.empty:
            found = self.db.execute_sql(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone()
            self.empty[table] = found is None
        return self.empty[table]

    def _parents(self, rows: list[tuple[str, dict[str, Any], Any]], ids: list[int]) -> None:
        """Each message's parent id: earlier in this batch, in the store, or later (deferred)."""
        here: dict[str, int] = {}
        batch = {row["uuid"] for _, row, _ in rows}
        wanted = {row["parent"] for _, row, _ in rows if row["parent"] not in batch}
        wanted.discard(None)
        stored = self._ids(Message, wanted)
        for (where, row, _), mid in zip(rows, ids, strict=True):
            parent = row["parent"]
            if parent is not None:
                pid = here.get(parent) or stored.get(parent)
                if pid is None:
                    self.deferred.append((mid, parent, where))
                row["parent"] = pid
            here[row["uuid"]] = mid

    def _late_parents(self) -> None:
        if not self.deferred:
            return
        found = self._ids(Message, {p for _, p, _ in self.deferred})
        updates = []
        for mid, parent, where in self.deferred:
            if parent not in found:
                raise ValidationError(
                    f"{where}: message parent {parent} is in neither the import nor the store."
                )
            updates.append((found[parent], mid))
        p = self.db.param
        self.db.cursor().executemany(
            f'UPDATE "message" SET "parent_id" = {p} WHERE "id" = {p}', updates
        )

    def _insert(
        self, spec: TableSpec, rows: list[tuple[str, dict[str, Any], Any]], ids: list[int]
    ) -> None:
        fields = spec.fields
        columns = ['"id"'] + [f'"{f.column_name}"' for f in fields]
        marks, converters = [self.db.param], []
        for f in fields:
            if isinstance(f, peewee.JSONField) and isinstance(f.db_value([]), peewee.Node):
                marks.append(f"json({self.db.param})")  # SQLite: peewee writes json(<text>)
                converters.append(_json_text(f))
            elif isinstance(f, (peewee.ForeignKeyField, peewee.UUIDField, peewee.DateTimeField)):
                converters.append(_same)  # _value made them what the database stores
                marks.append(self.db.param)
            else:
                converters.append(f.db_value)
                marks.append(self.db.param)
        names = [f.name for f in fields]
        values = [
            (rid, *[conv(row[n]) for conv, n in zip(converters, names, strict=True)])
            for (_, row, _), rid in zip(rows, ids, strict=True)
        ]
        sql = f'INSERT INTO "{spec.table}" ({", ".join(columns)}) VALUES ({", ".join(marks)})'
        try:
            with peewee.__exception_wrapper__:  # type: ignore[attr-defined]
                self.db.cursor().executemany(sql, values)
        except peewee.IntegrityError as exc:
            raise ValidationError(
                f"{rows[0][0]} .. {rows[-1][0]}: {spec.kind} records clash with rows of the "
                f"store ({' '.join(str(exc).split())})."
            ) from None
        if spec.key == "uuid" and spec.kind != "message":
            cache = self.cache.setdefault(spec.table, {})
            cache.update((row["uuid"], rid) for (_, row, _), rid in zip(rows, ids, strict=True))

    def _insert_documents(self, rows: list[tuple[str, dict[str, Any], Any]]) -> None:
        for where, row, rec in rows:
            spooled = self.files.get(row["sha256"] or "") if rec.get("file") else None
            if rec.get("file") and (spooled is None or not spooled.complete):
                raise ValidationError(
                    f"{where}: document {row['uuid']}: its file is not in the import."
                )
            links = {
                "user_id": row["user"],
                "conversation_id": row["conversation"],
                "message_id": row["message"],
            }
            if spooled is not None:
                doc = create_document_with_file(
                    self.s, spooled.path, row["filename"], self.storage_dir, **links
                )
                keep = ("uuid", "filename", "mime_type", "tags", "created_at", "updated_at")
                Document.update({k: row[k] for k in keep}).where(Document.id == doc.id).execute()
            else:
                row["stored_name"] = None  # no bytes came: a metadata-only document
                self._insert(
                    table_for("document"),
                    [(where, row, rec)],
                    self._reserve(table_for("document"), 1),
                )
            self.added["document"] += 1

    # -- triggers and the search index (SQLite) ----------------------------
    def _set_triggers_aside(self) -> list[tuple[str, str]]:
        if not self.sqlite:
            return []
        marks = ", ".join("?" * len(_MESSAGE_TRIGGERS))
        saved = self.db.execute_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",
            _MESSAGE_TRIGGERS,
        ).fetchall()
        for name, _ in saved:
            self.db.execute_sql(f'DROP TRIGGER "{name}"')
        return saved

    def _restore_triggers(self) -> None:
        for _, sql in self.triggers:
            self.db.execute_sql(sql)
        names = {name for name, _ in self.triggers}
        if "message_fts_ai" in names and self.first_message is not None:
            self.db.execute_sql(
                'INSERT INTO "message_fts"(rowid, "content") '
                'SELECT "id", "content" FROM "message" WHERE "id" >= ?',
                (self.first_message,),
            )
        self.triggers = []

    def _bump_conversations(self) -> None:
        """Conversations that were in the store and got new messages follow their newest one."""
        p = self.db.param
        for cid in self.touched:
            newest = (
                Message.select(Message.created_at, Message.content)
                .where(Message.conversation == cid)
                .order_by(Message.created_at.desc(), Message.id.desc())
                .first()
            )
            conv = Conversation.get_or_none(Conversation.id == cid)
            if newest is None or conv is None or newest.created_at <= conv.updated_at:
                continue
            self.db.execute_sql(
                f'UPDATE "conversation" SET "updated_at" = {p}, "last_message" = {p} '
                f'WHERE "id" = {p}',
                (Conversation.updated_at.db_value(newest.created_at), preview(newest.content), cid),
            )


def _same(value: Any) -> Any:
    return value


def _json_text(field: peewee.Field) -> Callable[[Any], Any]:
    dumps = field._dumps  # type: ignore[attr-defined]
    return lambda v: None if v is None else dumps(v)


_HEX = frozenset("0123456789abcdef")
_TEXT, _UUID, _TIME, _JSON, _CHOICE, _OTHER = range(6)


def _kind_of(spec: TableSpec, field: peewee.Field) -> tuple[int, int]:
    """How :meth:`Loader._check` takes a column's common values: (kind, text length limit)."""
    if isinstance(field, (peewee.ForeignKeyField, peewee.UUIDField)):
        return _UUID, 0
    if isinstance(field, peewee.DateTimeField):
        return _TIME, 0
    if isinstance(field, peewee.JSONField):
        return _JSON, 0
    if isinstance(field, (peewee.CharField, peewee.TextField)):
        if (spec.kind, field.name) in _CHOICES:
            return _CHOICE, 0
        limit = getattr(field, "max_length", None) if isinstance(field, peewee.CharField) else None
        return _TEXT, limit or 2**62
    return _OTHER, 0


def _uuid_hex(text: str) -> str | None:
    """The 32 lower-case hex digits of a uuid written as text, or None."""
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        digits = text.replace("-", "").lower()
        if len(digits) == 32 and _HEX.issuperset(digits):
            return digits
    try:
        return _uuid.UUID(text).hex
    except ValueError:
        return None


def _utc_text(text: str) -> str | None:
    """An ISO 8601 time as the naive-UTC text localchat stores, or None if it is not one."""
    if text.endswith("+00:00") and len(text) in (32, 25) and text[10] == "T":
        body = text[:-6]  # what export_store writes: straight through, after a strict parse
        try:
            _dt.datetime.fromisoformat(body)
        except ValueError:
            return None
        return body[:10] + " " + body[11:]
    try:
        at = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if at.tzinfo is not None:
        at = at.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return at.isoformat(" ")


def _value(spec: TableSpec, where: str, field: peewee.Field, value: Any) -> Any:
    """One column's value from JSON, checked, as the database stores it.

    Uuids (and foreign keys, before they are resolved) become 32 hex digits,
    times the naive-UTC text every localchat write uses; ValidationError
    names the record.
    """
    name = field.name

    def bad(expected: str) -> ValidationError:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return ValidationError(f"{where}: {spec.kind} {name} must be {expected}, got {shown}.")

    if value is None:
        if not field.null:
            raise bad("set (not null)")
        return None
    if isinstance(field, (peewee.ForeignKeyField, peewee.UUIDField)):
        digits = _uuid_hex(value) if isinstance(value, str) else None
        if digits is None:
            raise bad("a uuid")
        return digits
    if isinstance(field, peewee.DateTimeField):
        stamp = _utc_text(value) if isinstance(value, str) else None
        if stamp is None:
            raise bad("an ISO 8601 time")
        return stamp
    if isinstance(field, peewee.JSONField):
        return value
    if isinstance(field, peewee.BooleanField):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(field, peewee.IntegerField):
        if isinstance(value, bool) or not isinstance(value, int) or not -_INT64 <= value < _INT64:
            raise bad("an integer")
        return value
    if isinstance(field, (peewee.CharField, peewee.TextField)):
        if not isinstance(value, str):
            raise bad("text")
        if "\0" in value:
            raise bad("text without NUL characters")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad("valid Unicode text") from None
        limit = getattr(field, "max_length", None)
        if isinstance(field, peewee.CharField) and limit and len(value) > limit:
            raise bad(f"at most {limit} characters")
        choices = _CHOICES.get((spec.kind, name))
        if choices is not None and value not in choices:
            raise bad("one of " + ", ".join(choices))
        return value
    return value  # pragma: no cover - every column type is handled above

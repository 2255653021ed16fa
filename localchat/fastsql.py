"""Hot paths without per-call query building: fixed SQL text, direct row -> model.

Peewee compiles a query tree to SQL on every call (about 100 us for a small
SELECT) and passes every column through ``python_value`` before
``Model.__init__`` sets it attribute by attribute (about 10 us a message row).
The few statements a chat client runs on every user action (append a message,
open a conversation, list conversations) go through this module instead:

    sql = statement(db, 'SELECT {message} FROM "message" WHERE "conversation_id" = {p}')
    rows = fetch_models(Message, db.execute_sql(sql, (conv_id,)))
    msg = insert_model(db, Message, {"conversation": conv_id, "role": "user", ...})

Identifiers are double-quoted and ``{p}`` becomes the database's own
placeholder, so one text serves SQLite and PostgreSQL. Values go in through
each field's ``db_value`` and come out through ``python_value`` (skipped only
where that is the identity on what the driver returns: integers, text and
integer foreign keys), so callers get exactly what peewee itself would return.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import peewee

__all__ = [
    "statement",
    "columns",
    "fetch_models",
    "insert_model",
    "saved_instance",
    "json_param",
    "clear_caches",
]

M = TypeVar("M", bound=peewee.Model)

# Fields whose python_value returns what SQLite and PostgreSQL drivers already give.
_NATIVE = (peewee.IntegerField, peewee.AutoField, peewee.CharField, peewee.TextField)

_statements: dict[tuple[str, str], str] = {}
_columns: dict[tuple[type[peewee.Model], str], str] = {}
_builders: dict[type[peewee.Model], Any] = {}
_inserts: dict[tuple[type[peewee.Model], tuple[str, ...], str, bool], str] = {}


def columns(model: type[peewee.Model], alias: str = "") -> str:
    """Every column of ``model`` in field order, quoted (and prefixed by ``alias.``)."""
    key = (model, alias)
    text = _columns.get(key)
    if text is None:
        prefix = f'"{alias}".' if alias else ""
        text = ", ".join(f'{prefix}"{f.column_name}"' for f in model._meta.sorted_fields)
        _columns[key] = text
    return text


def statement(db: peewee.Database, template: str, **models: type[peewee.Model]) -> str:
    """``template`` with ``{p}`` as the placeholder and ``{name}`` as a model's columns.

    Formatted once per (template, placeholder style) and then looked up.
    """
    key = (template, db.param)
    text = _statements.get(key)
    if text is None:
        text = template.format(p=db.param, **{k: columns(m) for k, m in models.items()})
        _statements[key] = text
    return text


def _native(field: peewee.Field) -> bool:
    if isinstance(field, peewee.ForeignKeyField):
        return isinstance(field.rel_field, _NATIVE)
    return type(field) in _NATIVE


def _builder(model: type[M]) -> Callable[[Iterable[tuple[Any, ...]]], list[M]]:
    """A function turning rows into instances, generated once per model.

    Straight-line code (unpack the row, convert, one dict literal) instead of a
    loop over columns: about half the time per row.
    """
    build = _builders.get(model)
    if build is None:
        fields = model._meta.sorted_fields
        env: dict[str, Any] = {"new": model.__new__, "cls": model}
        items = []
        for i, field in enumerate(fields):
            if _native(field):
                items.append(f"{field.name!r}: v{i}")
            else:
                env[f"c{i}"] = field.python_value
                items.append(f"{field.name!r}: (None if v{i} is None else c{i}(v{i}))")
        names = ", ".join(f"v{i}" for i in range(len(fields)))
        source = (
            "def build(rows):\n"
            "    out = []\n"
            "    append = out.append\n"
            f"    for ({names},) in rows:\n"
            "        obj = new(cls)\n"
            f"        obj.__data__ = {{{', '.join(items)}}}\n"
            "        obj._dirty = set()\n"
            "        obj.__rel__ = {}\n"
            "        append(obj)\n"
            "    return out\n"
        )
        exec(compile(source, f"<localchat rows of {model.__name__}>", "exec"), env)
        build = _builders[model] = env["build"]
    return build


def fetch_models(model: type[M], rows: Iterable[tuple[Any, ...]]) -> list[M]:
    """Instances of ``model`` from rows of all its columns in field order (see :func:`columns`).

    The same instances ``Model.select()`` yields: converted values, nothing dirty.
    """
    return _builder(model)(rows)


def insert_model(db: peewee.Database, model: type[M], values: Mapping[str, Any]) -> M:
    """Insert one row (defaults filled as ``Model.create`` does); returns the saved instance.

    ``db`` must be the database ``model`` is bound to in this thread (the session's).
    """
    fields = model._meta.fields
    data = dict(values)
    for field, default in model._meta.defaults.items():  # only the missing ones
        if field.name not in data:
            data[field.name] = default() if callable(default) else default
    names = tuple(data)
    returning = bool(getattr(db, "returning_clause", False))
    pk_field: Any = model._meta.primary_key
    key = (model, names, db.param, returning)
    sql = _inserts.get(key)
    if sql is None:
        cols = ", ".join(f'"{fields[n].column_name}"' for n in names)
        marks = ", ".join([db.param] * len(names))
        sql = f'INSERT INTO "{model._meta.table_name}" ({cols}) VALUES ({marks})'
        if returning:
            sql += f' RETURNING "{pk_field.column_name}"'
        _inserts[key] = sql
    params = [fields[n].db_value(v) for n, v in data.items()]
    if any(isinstance(p, peewee.Node) for p in params):
        # A value peewee writes as SQL (SQLite JSON is json(?)): its own INSERT.
        pk = model.insert(data).execute()
    else:
        cursor = db.execute_sql(sql, params)
        pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    data[pk_field.name] = pk
    return saved_instance(model, data)


def saved_instance(model: type[M], data: dict[str, Any]) -> M:
    """An instance of ``model`` holding ``data`` (python values) as a saved row: nothing dirty."""
    obj: Any = model.__new__(model)
    obj.__data__ = data
    obj._dirty = set()
    obj.__rel__ = {}
    return obj


def json_param(field: peewee.Field) -> tuple[str, Callable[[Any], Any]]:
    """The placeholder (``{p}`` in it) and the converter of a JSON column, for raw SQL.

    On SQLite peewee writes JSON as ``json(<dumps(value)>)`` (a SQL expression,
    not a bindable value), on asyncpg as a node holding ``dumps(value)``;
    elsewhere ``db_value`` gives a bindable value.
    """
    value = field.db_value([])
    if isinstance(value, peewee.Node):  # the SQL it renders to, around one parameter
        sql, _ = peewee.Context().sql(value).query()
        return sql.replace("?", "{p}"), field._dumps  # type: ignore[attr-defined]
    return "{p}", field.db_value


def clear_caches() -> None:
    """Forget every statement, column list, row builder and INSERT made so far
    (after a model's fields change, as tests of old schemas do)."""
    for cache in (_statements, _columns, _builders, _inserts):
        cache.clear()

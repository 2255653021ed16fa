"""0006: an integer id is never handed out twice (SQLite ``AUTOINCREMENT``).

A plain ``INTEGER PRIMARY KEY`` gives a new row ``max(id) + 1``: delete the
newest conversation and the next one gets its id again, so an app that
remembered "conversation 2" would open another chat. ``AUTOINCREMENT`` keeps
the largest id ever used in ``sqlite_sequence`` and never goes below it.

SQLite cannot add ``AUTOINCREMENT`` to an existing table, so every table with
an integer primary key named ``id`` is rebuilt (the 12 steps of
sqlite.org/lang_altertable.html), found in ``sqlite_master`` rather than
listed here, so tables made by migrations this file was not written for are
covered too. Per table: create the new table from the old ``CREATE TABLE``
text with ``AUTOINCREMENT`` added to the ``id`` column, copy every row with
its id (which also sets ``sqlite_sequence`` to the largest id), drop the old
table, rename, and re-create its indexes. Triggers and views are dropped
before and re-created after, from their saved SQL, unchanged: a rebuild would
drop the triggers on the table (the FTS5 sync triggers of 0002, the bump
trigger of 0004), a trigger or view naming a rebuilt table would make the
rename fail. The FTS5 indexes are external-content indexes keyed by id, and
ids do not change, so they stay valid without re-indexing.

Ids freed before this migration ran (a deleted newest row) are below nothing
that SQLite remembers and may be handed out once more; from here on, never.

Foreign keys must be off (``localchat.schema`` turns them off around every
upgrade): with them on, dropping a parent table deletes its children through
``ON DELETE CASCADE``. ``up`` refuses to run otherwise.

``down`` rebuilds the same tables back to a plain ``INTEGER PRIMARY KEY`` and
empties their ``sqlite_sequence`` rows (SQLite never drops that table).

PostgreSQL: nothing to do; a ``SERIAL`` column's sequence never goes back.

Frozen: this file never imports localchat and is never edited.
"""
import re

from peewee import SqliteDatabase

HISTORY_TABLE = "schema_migration"  # the migration runner's own table: not ours
_ID = re.compile(
    r'(?P<col>(?:"id"|`id`|\[id\]|\bid\b)\s+INTEGER\s+(?:NOT\s+NULL\s+)?PRIMARY\s+KEY(?:\s+ASC)?)'
    r"(?P<auto>\s+AUTOINCREMENT)?",
    re.IGNORECASE,
)
_HEAD = re.compile(r'^\s*CREATE\s+TABLE\s+(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|\S+?)\s*\(', re.IGNORECASE)


def _quote(name):
    return '"%s"' % name.replace('"', '""')


def _tables(db):
    """(name, CREATE TABLE sql) of every ordinary table whose primary key is ``id INTEGER``."""
    rows = db.execute_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    virtual = [n for n, sql in rows if sql.upper().startswith("CREATE VIRTUAL")]
    found = []
    for name, sql in rows:
        if name == HISTORY_TABLE or name in virtual:
            continue
        if any(name.startswith(v + "_") for v in virtual):
            continue  # an FTS5 shadow table (message_fts_data, ...)
        pk = [
            (col[1], col[2].upper())
            for col in db.execute_sql("PRAGMA table_info(%s)" % _quote(name)).fetchall()
            if col[5]
        ]
        if pk == [("id", "INTEGER")]:
            found.append((name, sql))
    return found


def _rewrite(name, sql, autoincrement):
    """The CREATE TABLE text of ``name`` under a temporary name, ``id`` changed."""
    match = _ID.search(sql)
    if match is None:
        raise RuntimeError(
            "0006: cannot find the integer id column in the definition of table %r: %s"
            % (name, sql)
        )
    column = match.group("col") + (" AUTOINCREMENT" if autoincrement else "")
    body = sql[: match.start()] + column + sql[match.end():]
    head = _HEAD.match(body)
    if head is None:
        raise RuntimeError("0006: cannot parse the definition of table %r: %s" % (name, sql))
    return "CREATE TABLE %s (%s" % (_quote(name + "__0006_tmp"), body[head.end():])


def _rebuild(db, autoincrement):
    if db.execute_sql("PRAGMA foreign_keys").fetchone()[0]:
        raise RuntimeError(
            "0006 rebuilds tables and must run with foreign keys off (dropping a parent "
            "table would delete its children through ON DELETE CASCADE); run it through "
            "localchat's upgrade, or migrator.migration_context() outside any transaction."
        )
    tables = [
        (name, sql) for name, sql in _tables(db)
        if bool(_ID.search(sql) and _ID.search(sql).group("auto")) != autoincrement
    ]
    if not tables:
        return []
    # Triggers and views go first and come back last, exactly as they were.
    saved = db.execute_sql(
        "SELECT type, name, sql FROM sqlite_master WHERE type IN ('trigger', 'view') "
        "AND sql IS NOT NULL ORDER BY type = 'trigger', rowid"
    ).fetchall()
    for kind, name, _ in reversed(saved):
        db.execute_sql("DROP %s %s" % (kind.upper(), _quote(name)))
    for name, sql in tables:
        indexes = [
            row[0] for row in db.execute_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL ORDER BY rowid",
                (name,),
            ).fetchall()
        ]
        columns = ", ".join(
            _quote(col[1])
            for col in db.execute_sql("PRAGMA table_info(%s)" % _quote(name)).fetchall()
        )
        tmp = _quote(name + "__0006_tmp")
        db.execute_sql(_rewrite(name, sql, autoincrement))
        db.execute_sql(
            "INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY rowid"
            % (tmp, columns, columns, _quote(name))
        )
        db.execute_sql("DROP TABLE %s" % _quote(name))
        db.execute_sql("ALTER TABLE %s RENAME TO %s" % (tmp, _quote(name)))
        for index_sql in indexes:
            db.execute_sql(index_sql)
    for _, _, sql in saved:
        db.execute_sql(sql)
    return [name for name, _ in tables]


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        _rebuild(db, autoincrement=True)


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    rebuilt = _rebuild(db, autoincrement=False)
    for name in rebuilt:
        db.execute_sql("DELETE FROM sqlite_sequence WHERE name = ?", (name,))

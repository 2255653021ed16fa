"""0007: ``audit_log.model_used`` may be NULL: no model is assumed for an entry.

Before, the model class gave ``model_used`` the default "gpt-4o" (one
particular application's model; the column itself had no SQL default) and the
column was ``NOT NULL``, so an entry logged without naming a model claimed
that one. Now an entry that names no model stores NULL.

PostgreSQL: ``ALTER COLUMN ... DROP NOT NULL``, in place.

SQLite: peewee's ``drop_not_null`` rebuilds the table on SQLite before 3.53
(copy into a new table, drop the old, rename). A rebuild drops the triggers on
``audit_log`` (localchat has none there; an app may), fails while a trigger or
view elsewhere names the table, and sets ``sqlite_sequence`` to the largest id
present, so the id of a deleted newest entry could come back (0006 made ids
never reused). So the triggers and views naming ``audit_log`` are dropped
before and re-created after, unchanged, and the sequence is put back, never
lowered (what ``localchat.search_index.keep_triggers`` does; this file is
frozen and imports nothing from localchat).

``down``: entries without a model get ``"unknown"``, and the column is
``NOT NULL`` again (on PostgreSQL under a table lock, so that no entry without
a model is written in between).

Frozen: this file never imports localchat and is never edited.
"""
import re

from peewee import SqliteDatabase

TABLE = "audit_log"
COLUMN = "model_used"
UNKNOWN = "unknown"  # what down() writes where no model was named
_NAMES = re.compile(r'(?<![\w$])"?audit_log"?(?![\w$])', re.IGNORECASE)


def _rebuilding(db, change):
    """Run ``change()`` (a table rebuild on SQLite) keeping triggers, views and the sequence."""
    if not isinstance(db, SqliteDatabase):
        change()
        return
    saved = [
        (kind, name, sql)
        for kind, name, table, sql in db.execute_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE type IN ('trigger', 'view') AND sql IS NOT NULL "
            "ORDER BY type = 'trigger', rowid"
        ).fetchall()
        if table == TABLE or _NAMES.search(sql)
    ]
    for kind, name, _ in reversed(saved):
        db.execute_sql('DROP %s "%s"' % (kind.upper(), name.replace('"', '""')))
    has_sequence = db.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ).fetchone()
    seq = None
    if has_sequence:
        row = db.execute_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (TABLE,)).fetchone()
        seq = None if row is None else int(row[0])
    change()
    for _, _, sql in saved:
        db.execute_sql(sql)
    if seq is not None:
        updated = db.execute_sql(
            "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?", (seq, TABLE)
        ).rowcount
        if not updated:  # the table is empty: the new one has no sequence row yet
            db.execute_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (TABLE, seq))


def up(migrator, db):
    _rebuilding(db, lambda: migrator.migrate(migrator.drop_not_null(TABLE, COLUMN)))


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):  # no NULL may slip in between UPDATE and ALTER
        db.execute_sql('LOCK TABLE "%s" IN ACCESS EXCLUSIVE MODE' % TABLE)
    db.execute_sql(
        'UPDATE "%s" SET "%s" = %s WHERE "%s" IS NULL' % (TABLE, COLUMN, db.param, COLUMN),
        (UNKNOWN,),
    )
    _rebuilding(db, lambda: migrator.migrate(migrator.add_not_null(TABLE, COLUMN)))

"""0008: what a chat window needs: message status, the current branch, sidebar fields.

``message.status`` (``complete``, ``streaming``, ``incomplete``, ``error``;
existing messages are ``complete``) and ``message.error`` (the error text of
a failed reply). ``conversation.current_leaf_id`` (the message at the end of
the branch on screen; NULL means the conversation's latest message, so no
existing row needs a value), ``conversation.pinned`` (false),
``conversation.tags`` and ``conversation.metadata`` (JSON, NULL).

Every column is added in place (``ALTER TABLE ... ADD COLUMN``, with a
constant default where it is ``NOT NULL``): no table is rebuilt, so the full
text search triggers, 0004's trigger and the ``AUTOINCREMENT`` high-water
marks are untouched. ``current_leaf_id`` is a plain integer (no foreign key:
SQLite cannot add one in place); the repository keeps it pointing at a
message.

SQLite: 0004's trigger ``message_bumps_conversation`` is replaced by one of the
same name that also makes the new message the current leaf (one UPDATE inside
the INSERT, as before). PostgreSQL: ``add_message`` sets it in its UPDATE.

``down``: 0004's trigger comes back exactly, and the columns are dropped
(``ALTER TABLE ... DROP COLUMN``, in place on SQLite 3.35+ and PostgreSQL).

Frozen: this file never imports localchat and is never edited.
"""

from peewee import SqliteDatabase

NAME = "message_bumps_conversation"

TRIGGER_0004 = (
    'CREATE TRIGGER "message_bumps_conversation" AFTER INSERT ON "message" BEGIN '
    'UPDATE "conversation" SET "updated_at" = NEW."created_at", "last_message" = '
    'CASE WHEN length(NEW."content") <= 200 THEN NEW."content" '
    "ELSE substr(NEW.\"content\", 1, 199) || '\u2026' END "
    'WHERE "id" = NEW."conversation_id"; END'
)
TRIGGER_0008 = (
    'CREATE TRIGGER "message_bumps_conversation" AFTER INSERT ON "message" BEGIN '
    'UPDATE "conversation" SET "updated_at" = NEW."created_at", "last_message" = '
    'CASE WHEN length(NEW."content") <= 200 THEN NEW."content" '
    "ELSE substr(NEW.\"content\", 1, 199) || '\u2026' END, "
    '"current_leaf_id" = NEW."id" '
    'WHERE "id" = NEW."conversation_id"; END'
)

COLUMNS = (
    ("message", "status", "VARCHAR(16) NOT NULL DEFAULT 'complete'"),
    ("message", "error", "TEXT"),
    ("conversation", "current_leaf_id", "INTEGER"),
    ("conversation", "pinned", "BOOLEAN NOT NULL DEFAULT %s"),
    ("conversation", "tags", "%s"),
    ("conversation", "metadata", "%s"),
)


def _ddl(db, ddl):
    sqlite = isinstance(db, SqliteDatabase)
    if ddl == "%s":
        return "TEXT" if sqlite else "JSONB"
    if "%s" in ddl:
        return ddl % ("0" if sqlite else "false")
    return ddl


def _has_trigger(db):
    return (
        isinstance(db, SqliteDatabase)
        and db.execute_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?", (NAME,)
        ).fetchone()
        is not None
    )


def up(migrator, db):
    for table, column, ddl in COLUMNS:
        db.execute_sql('ALTER TABLE "%s" ADD COLUMN "%s" %s' % (table, column, _ddl(db, ddl)))
    if _has_trigger(db):
        db.execute_sql('DROP TRIGGER "%s"' % NAME)
        db.execute_sql(TRIGGER_0008)


def down(migrator, db):
    if _has_trigger(db):
        db.execute_sql('DROP TRIGGER "%s"' % NAME)
        db.execute_sql(TRIGGER_0004)
    for table, column, _ in reversed(COLUMNS):
        db.execute_sql('ALTER TABLE "%s" DROP COLUMN "%s"' % (table, column))

"""0004: a new message moves its conversation's ``updated_at`` and preview (SQLite trigger).

Before, ``add_message`` ran two statements (UPDATE the conversation, INSERT the
message) inside a savepoint so that a failed call left nothing behind. With
this trigger the INSERT alone does both, and SQLite runs one statement (its
triggers included) atomically: no savepoint is needed, and FTS5 no longer
flushes its pending index at savepoint boundaries on every message.

The trigger does what ``add_message`` did, for every inserted message:

    updated_at   = the message's created_at (the same stored text)
    last_message = the content, cut to 199 characters plus an ellipsis when
                   longer than 200 (``length``/``substr`` count characters,
                   as Python's ``len`` and slicing do)

A table rebuild of ``message`` drops it (it is a trigger *on* message); a
rebuild of ``conversation`` fails while it exists (SQLite re-checks every
trigger that names the renamed table). Both are handled by
``localchat.search_index.keep_triggers(db, "message")`` /
``keep_triggers(db, "conversation")`` around the rebuild.

PostgreSQL: nothing is created; ``add_message`` keeps its explicit UPDATE in a
savepoint there (a failed statement aborts a PostgreSQL transaction, so the
savepoint is needed anyway).

Frozen: this file never imports localchat and is never edited.
"""
from peewee import SqliteDatabase

NAME = "message_bumps_conversation"

TRIGGER = (
    'CREATE TRIGGER "message_bumps_conversation" AFTER INSERT ON "message" BEGIN '
    'UPDATE "conversation" SET "updated_at" = NEW."created_at", "last_message" = '
    'CASE WHEN length(NEW."content") <= 200 THEN NEW."content" '
    "ELSE substr(NEW.\"content\", 1, 199) || '\u2026' END "
    'WHERE "id" = NEW."conversation_id"; END'
)


def up(migrator, db):
    if isinstance(db, SqliteDatabase):
        db.execute_sql(TRIGGER)


def down(migrator, db):
    if isinstance(db, SqliteDatabase):
        db.execute_sql('DROP TRIGGER IF EXISTS "message_bumps_conversation"')

"""0009: trash (soft delete): ``conversation.trashed_at`` and ``document.trashed_at``.

A conversation or document with ``trashed_at`` set is in the trash: the
listings, counts, searches and exports leave it out unless asked
(``include_trashed=True``); restoring sets it back to NULL; ``empty_trash``
deletes it for good. Both columns are nullable, with a partial index of the
trashed rows only (``WHERE trashed_at IS NOT NULL``): ``list_trash`` and
``empty_trash`` use it, and a listing's ``trashed_at IS NULL`` never does (a
full index would tempt SQLite to read every live row through it and sort).

SQLite: ``ALTER TABLE ... ADD COLUMN``, in place (no table rebuild, so the
FTS5 and bump triggers stay). ``down`` drops the indexes and the columns
(SQLite 3.35+: ``ALTER TABLE ... DROP COLUMN``, also in place): what was in the
trash comes back as ordinary rows.

Frozen: this file never imports localchat and is never edited.
"""

from peewee import DateTimeField
from playhouse.migrate import migrate

COLUMNS = (("conversation", "conversation_trashed_at"), ("document", "document_trashed_at"))


def up(migrator, db):
    for table, index in COLUMNS:
        migrate(migrator.add_column(table, "trashed_at", DateTimeField(null=True)))
        db.execute_sql(
            'CREATE INDEX "%s" ON "%s" ("trashed_at") WHERE ("trashed_at" IS NOT NULL)'
            % (index, table)
        )


def down(migrator, db):
    for table, index in COLUMNS:
        db.execute_sql('DROP INDEX IF EXISTS "%s"' % index)
        migrate(migrator.drop_column(table, "trashed_at"))

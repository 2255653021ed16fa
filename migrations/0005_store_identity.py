"""0005: the store's identity: one row holding a random uuid, made once per store.

A store's file folder (``chat.db`` -> ``chat.db-files/``, and any
``storage_dir`` it writes in) holds a marker file ``.localchat-store-<uuid hex>``
naming this uuid. localchat deletes files only in folders that carry its own
marker, so a folder it did not write (``files/`` of an older store, a user's
folder, another store's) is never cleaned.

    SELECT "uuid" FROM "store_identity"       -- 32 hex digits, one row

Works the same on SQLite and PostgreSQL. ``down()`` drops the table and, on
SQLite, removes the marker from ``<database>-files/`` (only that file), so the
folder is unmarked rather than marked by an identity that no longer exists;
the next write after a new ``up()`` marks it with the new identity.

Files of older stores stay where they are: rows with a ``stored_name`` and no
``path`` are found in ``files/`` beside the database when they are not in the
new folder (a read fallback; ``files/`` is never written to or cleaned).

Frozen: this file never imports localchat and is never edited.
"""
import datetime
import os
import stat
import uuid

from peewee import CharField, DateTimeField, Model, SqliteDatabase

NAME = "store_identity"
MARKER_PREFIX = ".localchat-store-"


def _model(db):
    class StoreIdentity(Model):
        uuid = CharField(max_length=32, unique=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = "store_identity"

    return StoreIdentity


def up(migrator, db):
    StoreIdentity = _model(db)
    db.create_tables([StoreIdentity])
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    StoreIdentity.insert(uuid=uuid.uuid4().hex, created_at=now).execute()


def down(migrator, db):
    StoreIdentity = _model(db)
    if isinstance(db, SqliteDatabase) and db.database not in (None, "", ":memory:"):
        folder = str(db.database) + "-files"
        for (value,) in StoreIdentity.select(StoreIdentity.uuid).tuples():
            marker = os.path.join(folder, MARKER_PREFIX + str(value))
            try:
                if stat.S_ISREG(os.lstat(marker).st_mode):
                    os.unlink(marker)
            except OSError:
                pass
    db.drop_tables([StoreIdentity])

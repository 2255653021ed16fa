"""0002: full-text search indexes over messages, conversation titles and knowledge.

SQLite FTS5 *external-content* tables: the text stays in its own table and the
index holds only tokens, kept current by AFTER INSERT / UPDATE OF / DELETE
triggers. Existing rows are indexed here ('rebuild' reads the content table).

    message_fts          (content)          content='message'
    conversation_fts     (title)            content='conversation'
    knowledge_chunk_fts  (title, content)   content='knowledge_chunk'

Tokenizer ``porter unicode61 remove_diacritics 2``: Unicode word boundaries,
case and diacritics folded (Munchen finds München), English suffixes stemmed
(run finds running). Why: see the docstring of ``localchat/search.py``.

Frozen DDL: this file never imports localchat and is never edited; a later
change to the indexes is a new migration. A later migration that rebuilds one
of these tables (``alter_column_type`` and friends on SQLite) drops its
triggers and must keep them: ``with localchat.search.keep_triggers(db, "message"):``.

PostgreSQL: nothing is created (full-text search is SQLite-only for now;
``localchat.search`` raises ``Unsupported`` there). A SQLite built without FTS5
also gets nothing, so the store still opens; search then raises ``Unsupported``.
"""
from peewee import OperationalError, SqliteDatabase

TOKENIZE = "porter unicode61 remove_diacritics 2"

# (index, content table, indexed columns)
INDEXES = (
    ("message_fts", "message", ("content",)),
    ("conversation_fts", "conversation", ("title",)),
    ("knowledge_chunk_fts", "knowledge_chunk", ("title", "content")),
)


def _fts5_available(db):
    """Whether this connection's SQLite has FTS5 (compiled in or loaded)."""
    try:
        db.execute_sql("CREATE VIRTUAL TABLE temp.localchat_fts5_probe USING fts5(x)")
    except OperationalError:
        return False
    db.execute_sql("DROP TABLE temp.localchat_fts5_probe")
    return True


def _ddl(index, table, columns):
    cols = ", ".join(columns)
    new = ", ".join("new.%s" % c for c in columns)
    old = ", ".join("old.%s" % c for c in columns)
    insert = "INSERT INTO %s(rowid, %s) VALUES (new.id, %s);" % (index, cols, new)
    delete = "INSERT INTO %s(%s, rowid, %s) VALUES ('delete', old.id, %s);" % (
        index, index, cols, old)
    return [
        "CREATE VIRTUAL TABLE %s USING fts5(%s, content='%s', content_rowid='id', "
        "tokenize='%s')" % (index, cols, table, TOKENIZE),
        "CREATE TRIGGER %s_ai AFTER INSERT ON %s BEGIN %s END" % (index, table, insert),
        "CREATE TRIGGER %s_ad AFTER DELETE ON %s BEGIN %s END" % (index, table, delete),
        # Only a change to an indexed column touches the index: bumping a
        # conversation's updated_at on every new message costs nothing here.
        "CREATE TRIGGER %s_au AFTER UPDATE OF %s ON %s BEGIN %s %s END"
        % (index, cols, table, delete, insert),
        "INSERT INTO %s(%s) VALUES ('rebuild')" % (index, index),
    ]


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return  # PostgreSQL: no full-text index yet (see the module docstring).
    if not _fts5_available(db):
        return  # search raises Unsupported; the store itself keeps working.
    for index, table, columns in INDEXES:
        for sql in _ddl(index, table, columns):
            db.execute_sql(sql)


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        return
    for index, table, columns in reversed(INDEXES):
        for suffix in ("ai", "ad", "au"):
            db.execute_sql("DROP TRIGGER IF EXISTS %s_%s" % (index, suffix))
        db.execute_sql("DROP TABLE IF EXISTS %s" % index)

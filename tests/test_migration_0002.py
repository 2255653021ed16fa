"""Migration 0002: FTS5 indexes on old data, clean down(), and surviving table rebuilds."""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
import textwrap
import uuid
from pathlib import Path

import peewee
from old_schema import models_before_0008

from localchat.config import resolve
from localchat.database import Store
from localchat.models import Message
from localchat.repository import add_message, create_conversation
from localchat.schema import MIGRATIONS_DIR
from localchat.search import search_conversations, search_knowledge, search_messages

INDEXES = ("message_fts", "conversation_fts", "knowledge_chunk_fts")
NOW = "2025-01-01 00:00:00"


def _fts_objects(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE '%fts%' ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


def _old_store_full_of_data(path: Path, n: int = 300) -> Store:
    """A store at 0001 holding ``n`` messages, conversations and chunks, written raw."""
    store = Store(resolve(path))
    assert store.upgrade("0001_initial") == ["0001_initial"]
    store.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO conversation (id, uuid, created_at, updated_at, title, status) "
            "VALUES (?, ?, ?, ?, ?, 'active')",
            [(i, uuid.uuid4().hex, NOW, NOW, f"title{i} agenda") for i in range(1, n // 10 + 1)],
        )
        conn.executemany(
            "INSERT INTO message (id, uuid, created_at, updated_at, conversation_id, role, content)"
            " VALUES (?, ?, ?, ?, ?, 'user', ?)",
            [
                (i, uuid.uuid4().hex, NOW, NOW, i % (n // 10) + 1, f"old message word{i} here")
                for i in range(1, n + 1)
            ],
        )
        conn.executemany(
            "INSERT INTO knowledge_chunk (uuid, created_at, updated_at, source, external_id, "
            "title, content, content_hash) VALUES (?, ?, ?, 'docs', ?, ?, ?, 'h')",
            [(uuid.uuid4().hex, NOW, NOW, str(i), f"chunk{i}", f"body{i}") for i in range(20)],
        )
    conn.close()
    return Store(resolve(path))


def test_a_0001_database_full_of_data_upgrades_and_every_old_row_is_searchable(db_path):
    store = _old_store_full_of_data(db_path)
    assert store.upgrade("0002_full_text_search") == ["0002_full_text_search"]
    with store.session() as s:
        for i in range(1, 301):
            hits = search_messages(s, f"word{i}")
            assert [h.message.id for h in hits] == [i], i
        assert len(search_conversations(s, "title7")) == 1
        assert len(search_conversations(s, "agenda", limit=100)) == 30
        assert [h.chunk.title for h in search_knowledge(s, "body13")] == ["chunk13"]
        assert len(search_knowledge(s, "chunk13")) == 1


def test_down_removes_every_index_and_trigger_and_up_restores_them(db_path):
    store = _old_store_full_of_data(db_path, n=50)
    store.upgrade("0002_full_text_search")
    created = _fts_objects(db_path)
    assert {f"{i}_{t}" for i in INDEXES for t in ("ai", "au", "ad")} <= set(created)
    assert store.downgrade("0001_initial") == ["0002_full_text_search"]
    assert _fts_objects(db_path) == []
    store.upgrade("0002_full_text_search")
    assert _fts_objects(db_path) == created
    with store.session() as s:
        assert [h.message.id for h in search_messages(s, "word42")] == [42]


def _load_0002():
    spec = importlib.util.spec_from_file_location(
        "m0002", MIGRATIONS_DIR / "0002_full_text_search.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_does_nothing_on_postgresql():
    module = _load_0002()
    db = peewee.PostgresqlDatabase("never_connected", autoconnect=False)
    module.up(None, db)  # would raise InterfaceError if it touched the database
    module.down(None, db)


class _NoFts5(peewee.SqliteDatabase):
    def execute_sql(self, sql, *args, **kwargs):
        if "fts5" in sql:
            raise peewee.OperationalError("no such module: fts5")
        return super().execute_sql(sql, *args, **kwargs)


def test_migration_creates_nothing_when_sqlite_lacks_fts5(tmp_path):
    db = _NoFts5(str(tmp_path / "x.db"))
    _load_0002().up(None, db)
    assert db.get_tables() == []


# -- table rebuilds -------------------------------------------------------------------

REBUILD_0003 = """
    from peewee import *
    {imports}

    def up(migrator, db):
        {context}
            migrator.migrate(
                migrator.alter_column_type("message", "model", TextField(null=True)))

    def down(migrator, db):
        pass
"""


def _rebuilding_store(tmp_path: Path, keep: bool) -> Store:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name in ("0001_initial.py", "0002_full_text_search.py", "0009_trash.py"):
        shutil.copy(MIGRATIONS_DIR / name, folder / name)  # 0009: columns the models read
    body = REBUILD_0003.format(
        imports="from localchat.search import keep_triggers" if keep else "",
        context='with keep_triggers(db, "message"):' if keep else "if True:",
    )
    (folder / "0003_rebuild_message.py").write_text(textwrap.dedent(body))
    store = Store(resolve(tmp_path / "rebuilt.db"), migrations_dir=folder)
    store.upgrade("0002_full_text_search")
    store._migrated = True  # stay at 0002 while writing the old row
    with models_before_0008(), store.session() as s:
        conv = create_conversation(s, title="t")
        add_message(s, conv.id, "user", "an old albatross")
    assert store.upgrade() == ["0003_rebuild_message", "0009_trash"]
    return store


def _message_triggers(store: Store) -> set[str]:
    with store.db.connection_context():
        rows = store.db.execute_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'message'"
        )
        return {r[0] for r in rows}


def test_rebuilding_the_message_table_drops_its_fts_triggers(tmp_path):
    store = _rebuilding_store(tmp_path, keep=False)
    assert _message_triggers(store) == set()
    with models_before_0008(), store.session() as s:
        old = Message.get()
        add_message(s, old.conversation_id, "user", "a new albatross")
        assert [h.message.id for h in search_messages(s, "albatross")] == [old.id]  # new: unseen


def test_keep_triggers_lets_search_see_new_and_changed_messages_after_a_rebuild(tmp_path):
    store = _rebuilding_store(tmp_path, keep=True)
    assert _message_triggers(store) == {"message_fts_ai", "message_fts_au", "message_fts_ad"}
    with models_before_0008(), store.session() as s:
        old = Message.get()
        new = add_message(s, old.conversation_id, "user", "a new albatross")
        assert {h.message.id for h in search_messages(s, "albatross")} == {old.id, new.id}
        Message.update(content="a changed pelican").where(Message.id == old.id).execute()
        assert [h.message.id for h in search_messages(s, "albatross")] == [new.id]
        assert [h.message.id for h in search_messages(s, "pelican")] == [old.id]
        Message.delete().where(Message.id == new.id).execute()
        assert search_messages(s, "albatross") == []
        integrity = "INSERT INTO message_fts(message_fts, rank) VALUES ('integrity-check', 1)"
        s.db.execute_sql(integrity)  # raises if the index and the table disagree

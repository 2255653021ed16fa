"""Migration 0004: the trigger that moves a conversation when a message is inserted.

It replaces add_message's UPDATE (and its savepoint) on SQLite, so it must do
exactly what that UPDATE did, survive table rebuilds, and leave a failed call
without a trace.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest
from old_schema import models_before_0008

from localchat.config import resolve
from localchat.database import Store
from localchat.errors import Conflict, NotFound, ValidationError
from localchat.models import Conversation, Message
from localchat.repository import (
    add_message,
    add_sibling,
    create_conversation,
    create_user,
    list_conversations_for_user,
    update_conversation,
)
from localchat.repository._bump import preview as _preview
from localchat.schema import MIGRATIONS_DIR
from localchat.search import search_messages

TRIGGER = "message_bumps_conversation"
NOW = "2025-01-01 00:00:00"


def _triggers(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    finally:
        conn.close()


def _raw(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_the_trigger_exists_after_upgrade_and_is_gone_after_down(tmp_path):
    path = tmp_path / "s.db"
    store = Store(resolve(path))
    store.upgrade("0004_message_bumps_conversation")
    assert TRIGGER in _triggers(path)
    assert store.downgrade() == ["0004_message_bumps_conversation"]
    assert TRIGGER not in _triggers(path)
    assert "message_fts_ai" in _triggers(path)  # 0002's triggers are not touched
    assert store.upgrade("0004_message_bumps_conversation") == ["0004_message_bumps_conversation"]
    assert TRIGGER in _triggers(path)


def test_an_old_store_with_rows_upgrades_and_new_messages_move_their_conversation(tmp_path):
    path = tmp_path / "old.db"
    old = Store(resolve(path))
    old.upgrade("0003_conversation_recent_index")
    old.close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO conversation (id, uuid, created_at, updated_at, title, status, last_message)"
        " VALUES (1, 'a' || hex(randomblob(15)), ?, ?, 't', 'active', 'old text')",
        (NOW, NOW),
    )
    conn.execute(
        "INSERT INTO message (id, uuid, created_at, updated_at, conversation_id, role, content)"
        " VALUES (1, 'b' || hex(randomblob(15)), ?, ?, 1, 'user', 'old text')",
        (NOW, NOW),
    )
    conn.commit()
    conn.close()
    store = Store(resolve(path))
    assert store.upgrade("0004_message_bumps_conversation") == ["0004_message_bumps_conversation"]
    assert _raw(path, "SELECT updated_at, last_message FROM conversation") == [(NOW, "old text")]
    with store.session() as s:
        new = add_message(s, 1, "assistant", "new text")
        assert new.parent_id == 1
    assert _raw(path, "SELECT updated_at, last_message FROM conversation") == [
        (_raw(path, "SELECT created_at FROM message WHERE id = ?", (new.id,))[0][0], "new text")
    ]
    store.close()


LONG = [
    "x" * 199,
    "x" * 200,
    "x" * 201,
    "é" * 250,  # two bytes in UTF-8: lengths are characters, not bytes
    "😀" * 201,  # four bytes, outside the BMP
    "e\u0301" * 150,  # combining accents: 300 code points
    "",
    "a\nb\tc" * 80,
]


@pytest.mark.parametrize("content", LONG)
def test_the_preview_is_cut_exactly_as_python_cuts_it(localchat_session, content):
    s = localchat_session
    conv = create_conversation(s, title="t")
    message = add_message(s, conv.id, "user", content)
    stored = Conversation.get_by_id(conv.id)
    assert stored.last_message == _preview(content)
    assert stored.updated_at == message.created_at == message.updated_at


def test_updated_at_is_stored_as_python_writes_it_and_orders_with_python_written_rows(
    localchat_session,
):
    s = localchat_session
    user = create_user(s, email="ada@example.org").id
    older = create_conversation(s, title="older", user_id=user)
    by_message = create_conversation(s, title="by message", user_id=user)
    add_message(s, by_message.id, "user", "hi")
    newer = create_conversation(s, title="newer", user_id=user)  # written by Python
    update_conversation(s, older.id, title="renamed")  # Python sets updated_at = now
    rows = s.db.execute_sql('SELECT "title", "updated_at" FROM "conversation"').fetchall()
    texts = dict(rows)
    # one stored form: what UTCDateTimeField writes for the same instant
    field = Conversation.updated_at
    for text in texts.values():
        parsed = field.python_value(text)
        assert parsed.tzinfo == dt.timezone.utc
        assert str(field.db_value(parsed)) == text
    ordered = [c.title for c in list_conversations_for_user(s, user, limit=10)]
    expected = [t for t, _ in sorted(rows, key=lambda r: r[1], reverse=True)]
    assert ordered == expected == ["renamed", "newer", "by message"]
    add_sibling(s, Message.get().id, "again")  # a sibling moves it to the top too
    assert list_conversations_for_user(s, user, limit=1)[0].id == by_message.id
    assert newer.id != by_message.id


def _fail_when(s, table: str, condition: str) -> None:
    """A test-only trigger that makes a write to ``table`` fail when ``condition`` holds."""
    s.db.execute_sql(
        f'CREATE TRIGGER "test_fail_{table}" BEFORE {"INSERT" if table == "message" else "UPDATE"}'
        f" ON \"{table}\" WHEN {condition} BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )


@pytest.mark.parametrize(
    ("table", "condition"),
    [
        ("message", "NEW.content = 'boom'"),  # the INSERT itself fails
        ("conversation", "NEW.last_message = 'boom'"),  # the trigger's UPDATE fails
    ],
)
def test_a_failed_add_message_leaves_no_message_and_no_conversation_change(
    localchat_session, table, condition
):
    s = localchat_session
    conv = create_conversation(s, title="t")
    add_message(s, conv.id, "user", "kept")
    before = s.db.execute_sql('SELECT * FROM "conversation"').fetchall()
    count = Message.select().count()
    _fail_when(s, table, condition)
    with pytest.raises(Conflict, match="refused"):
        add_message(s, conv.id, "user", "boom")
    assert Message.select().count() == count
    assert s.db.execute_sql('SELECT * FROM "conversation"').fetchall() == before
    assert search_messages(s, "boom") == []  # the FTS index did not keep it either
    # the session goes on
    after = add_message(s, conv.id, "assistant", "still here")
    assert Conversation.get_by_id(conv.id).last_message == "still here"
    assert Message.select().count() == count + 1
    assert after.parent_id is not None


def test_a_missing_conversation_or_bad_input_writes_nothing(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    before = s.db.execute_sql('SELECT * FROM "conversation"').fetchall()
    with pytest.raises(NotFound):
        add_message(s, conv.id + 1000, "user", "x")
    with pytest.raises(ValidationError):
        add_message(s, conv.id, "user", "x", {1: "non-str key"})
    assert Message.select().count() == 0
    assert s.db.execute_sql('SELECT * FROM "conversation"').fetchall() == before


def test_add_message_falls_back_to_its_own_update_without_the_trigger(tmp_path):
    store = Store(resolve(tmp_path / "s.db"))
    store.upgrade("0003_conversation_recent_index")
    store._migrated = True  # stay at 0003
    with models_before_0008(), store.session() as s:
        conv = create_conversation(s, title="t")
        message = add_message(s, conv.id, "user", "y" * 300)
        stored = (
            Conversation.select(Conversation.updated_at, Conversation.last_message)
            .where(Conversation.id == conv.id)
            .get()
        )  # those columns only: the store stays at 0003, the model has later ones
        assert (stored.updated_at, stored.last_message) == (message.created_at, _preview("y" * 300))
    store.close()


# -- table rebuilds -------------------------------------------------------------------

REBUILD = """
    from peewee import *
    from localchat.search.index import keep_triggers

    def up(migrator, db):
        with keep_triggers(db, "message", "conversation"):
            migrator.migrate(
                migrator.alter_column_type("message", "model", TextField(null=True)),
                migrator.add_column_default("conversation", "status", "active"),
            )

    def down(migrator, db):
        pass
"""


def test_the_trigger_survives_rebuilds_of_message_and_conversation(tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in MIGRATIONS_DIR.glob("[0-9]*.py"):
        shutil.copy(path, folder / path.name)
    (folder / "9001_rebuild_both.py").write_text(textwrap.dedent(REBUILD))
    db_file = tmp_path / "rebuilt.db"
    store = Store(resolve(db_file), migrations_dir=folder)
    assert store.upgrade("0004_message_bumps_conversation")[-1] == "0004_message_bumps_conversation"
    assert store.upgrade()[-1] == "9001_rebuild_both"
    assert TRIGGER in _triggers(db_file)
    with store.session() as s:
        conv = create_conversation(s, title="t")
        add_message(s, conv.id, "user", "after the rebuild")
        assert Conversation.get_by_id(conv.id).last_message == "after the rebuild"
        assert len(search_messages(s, "rebuild")) == 1
    store.close()


def test_postgresql_moves_the_conversation_without_a_trigger(pg_session):
    s = pg_session
    count = s.db.execute_sql("SELECT count(*) FROM pg_trigger WHERE tgname = %s", (TRIGGER,))
    assert count.fetchone()[0] == 0  # the migration creates nothing there
    conv = create_conversation(s, title="pg")
    message = add_message(s, conv.id, "user", "é" * 300)
    stored = Conversation.get_by_id(conv.id)
    assert (stored.updated_at, stored.last_message) == (message.created_at, _preview("é" * 300))
    with pytest.raises(NotFound):
        add_message(s, conv.id + 1000, "user", "x")
    assert add_message(s, conv.id, "user", "next").parent_id == message.id  # the session goes on


def test_a_message_stores_its_times_in_the_text_python_writes(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="t")
    message = add_message(s, conv.id, "user", "hi")
    stored = s.db.execute_sql(
        'SELECT "created_at", "updated_at" FROM "message" WHERE "id" = ?', (message.id,)
    ).fetchone()
    written = s.db.execute_sql("SELECT ?", (Message.created_at.db_value(message.created_at),))
    assert stored == (written.fetchone()[0],) * 2
    assert Message.get_by_id(message.id).created_at == message.created_at

"""Migration 0008: message status, the current leaf, the sidebar fields, all added in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from localchat.config import resolve
from localchat.database import Store
from localchat.models import Conversation, Message
from localchat.repository import add_message, get_current_leaf, list_messages_for_conversation
from localchat.search import search_messages

NAME = "0008_chat_window"
BEFORE = "0007_audit_model_default"


def _raw(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _schema(path: Path) -> dict[str, str]:
    return dict(_raw(path, "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))


def _old_store(path: Path) -> Store:
    store = Store(resolve(path))
    store.upgrade(BEFORE)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO conversation (id, uuid, created_at, updated_at, title, status) "
            "VALUES (1, ?, '2025-01-01 00:00:00', '2025-01-01 00:00:00', 't', 'active')",
            ("0" * 31 + "a",),
        )
        for i, parent in ((1, None), (2, 1), (3, 1)):
            conn.execute(
                "INSERT INTO message (id, uuid, created_at, updated_at, conversation_id, "
                "parent_id, role, content) VALUES (?, ?, ?, ?, 1, ?, 'user', ?)",
                (i, f"{i:032x}", f"2025-01-01 00:00:0{i}", "2025-01-01 00:00:00", parent,
                 f"old albatross {i}"),
            )  # fmt: skip
    conn.close()
    return store


def test_upgrading_keeps_rows_triggers_and_ids_and_opens_on_the_latest_message(tmp_path):
    path = tmp_path / "s.db"
    store = _old_store(path)
    _raw(path, "DELETE FROM message WHERE id = 3")  # the high-water mark stays 3
    before = _schema(path)
    assert store.upgrade(NAME) == [NAME]
    after = _schema(path)
    assert {k for k in before if k != "message_bumps_conversation"} <= set(after)
    assert all(after[k] == v for k, v in before.items() if k not in (
        "message", "conversation", "message_bumps_conversation"))  # fmt: skip
    assert '"current_leaf_id" = NEW."id"' in after["message_bumps_conversation"]
    with store.session() as s:
        assert [m.status for m in Message.select()] == ["complete", "complete"]
        conv = Conversation.get_by_id(1)
        assert (conv.pinned, conv.tags, conv.metadata, conv.current_leaf_id) == (
            False, None, None, None)  # fmt: skip
        assert get_current_leaf(s, 1).id == 2
        new = add_message(s, 1, "assistant", "new pelican")
        assert new.id == 4 and new.parent_id == 2
        assert Conversation.get_by_id(1).current_leaf_id == 4
        assert [m.id for m in list_messages_for_conversation(s, 1, latest=True)] == [1, 2, 4]
        assert {h.message.id for h in search_messages(s, "albatross")} == {1, 2}


def test_down_restores_the_0004_trigger_and_drops_the_columns(tmp_path):
    path = tmp_path / "s.db"
    store = _old_store(path)
    before = _schema(path)
    store.upgrade(NAME)
    assert store.downgrade(BEFORE) == [NAME]
    assert _schema(path) == before
    assert _raw(path, "SELECT COUNT(*) FROM message") == [(3,)]
    store.upgrade(NAME)
    assert "current_leaf_id" in _schema(path)["message_bumps_conversation"]

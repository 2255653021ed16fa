"""Migration 0010: the start-up and sidebar indexes, added and dropped in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from localchat import open_store
from localchat.repository import (
    add_message,
    create_conversation,
    create_user,
    list_conversations_for_user,
    start_reply,
)

NAME = "0010_app_indexes"
INDEXES = {"message_streaming", "conversation_user_id_pinned_updated_at"}


def _indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


def test_0010_adds_and_drops_its_indexes_keeping_every_row(tmp_path):
    path = tmp_path / "s.db"
    store = open_store(path)
    store.upgrade("0009_trash")
    store._migrated = True  # stay at 0009 while writing the rows
    with store.session() as s:
        ada = create_user(s, email="ada@example.org")
        conv = create_conversation(s, ada.id, "kept", pinned=True)
        add_message(s, conv.id, "user", "hello")
        start_reply(s, conv.id)
    counts = store.table_counts()
    assert not INDEXES & _indexes(path)
    assert store.upgrade()[0] == NAME
    assert INDEXES <= _indexes(path) and store.table_counts() == counts
    with store.read_session() as s:
        assert [c.title for c in list_conversations_for_user(s, ada.id, pinned_first=True)] == [
            "kept"
        ]
    reverted = store.downgrade("0009_trash")
    assert reverted[-1] == NAME  # the newer ones first
    assert not INDEXES & _indexes(path) and store.table_counts() == counts
    assert store.upgrade()[0] == NAME

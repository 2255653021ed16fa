"""Trash: a trashed conversation leaves every listing, count and search, and comes back whole."""

from __future__ import annotations

import datetime as dt
import io
import os
import sqlite3
from pathlib import Path

import pytest

from localchat import ValidationError, close_all, local_session, open_store
from localchat.export import export_messages_jsonl
from localchat.models import Conversation
from localchat.portable import ExportFilter, export_markdown, export_store
from localchat.repository import (
    add_message,
    count_conversations_for_user,
    create_conversation,
    create_user,
    empty_trash,
    list_all_conversations,
    list_conversations_for_user,
    list_documents,
    list_trash,
    record_response,
    restore_conversation,
    restore_document,
    trash_conversation,
    trash_document,
)
from localchat.repository import documents as document_ops
from localchat.search import search_conversations, search_messages

pytestmark = pytest.mark.src("plan.txt", b"the penguin plan")


@pytest.fixture
def world(db_path: Path, src: Path) -> dict:
    with local_session(db_path) as s:
        ada = create_user(s, "ada@example.org")
        kept = create_conversation(s, ada.id, "Kept penguins")
        add_message(s, kept.id, "user", "penguins in the kept one")
        gone = create_conversation(s, ada.id, "Trashed penguins")
        q = add_message(s, gone.id, "user", "penguins in the trashed one")
        a = add_message(s, gone.id, "assistant", "emperor penguins", parent_id=q.id)
        record_response(s, a.id, "llama3", 1, 2)
        doc = document_ops.create_document_with_file(
            s, src, user_id=ada.id, conversation_id=gone.id
        )
    return {"ada": ada.id, "kept": kept.id, "gone": gone.id, "doc": doc.id}


def snapshot(db_path: Path) -> tuple[dict, list[str]]:
    folder = db_path.parent / "chat.db-files"
    return open_store(db_path).table_counts(), sorted(os.listdir(folder))


def test_a_trashed_conversation_leaves_listings_counts_and_search(db_path, world):
    ada, kept, gone = world["ada"], world["kept"], world["gone"]
    with local_session(db_path) as s:
        trash_conversation(s, gone)
    with open_store(db_path).read_session() as s:
        assert [c.id for c in list_conversations_for_user(s, ada)] == [kept]
        assert [c.id for c in list_conversations_for_user(s, user_email="ada@example.org")] == [
            kept
        ]
        assert [c.id for c in list_conversations_for_user(s, ada, status="active")] == [kept]
        assert [c.id for c in list_all_conversations(s)] == [kept]
        assert count_conversations_for_user(s, ada) == 1
        assert count_conversations_for_user(s, ada, include_trashed=True) == 2
        assert len(list_conversations_for_user(s, ada, include_trashed=True)) == 2
        assert len(list_all_conversations(s, include_trashed=True)) == 2
        assert {h.conversation.id for h in search_messages(s, "penguins")} == {kept}
        assert {h.conversation.id for h in search_messages(s, "penguins", user_id=ada)} == {kept}
        assert {h.conversation.id for h in search_conversations(s, "penguins")} == {kept}
        found = search_messages(s, "penguins", include_trashed=True)
        assert {h.conversation.id for h in found} == {kept, gone}
        assert len(search_conversations(s, "penguins", include_trashed=True)) == 2
        assert list_documents(s) == []
        assert [d.id for d in list_documents(s, include_trashed=True)] == [world["doc"]]
        assert [c.id for c in list_trash(s).conversations] == [gone]
        assert [c.id for c in list_trash(s, user_id=ada).conversations] == [gone]


def test_trash_and_restore_round_trip_keeps_every_row_and_file(db_path, world):
    before = snapshot(db_path)
    with local_session(db_path) as s:
        trash_conversation(s, world["gone"])
        trash_document(s, world["doc"])
    assert snapshot(db_path) == before
    with local_session(db_path) as s:
        restore_conversation(s, world["gone"])
        restore_document(s, world["doc"])
    assert snapshot(db_path) == before
    with local_session(db_path) as s:
        assert len(list_conversations_for_user(s, world["ada"])) == 2
        assert len(search_messages(s, "penguins")) == 3
        assert [d.id for d in list_documents(s)] == [world["doc"]]
        assert list_trash(s).conversations == [] and list_trash(s).documents == []


def test_a_trashed_document_leaves_the_listing(db_path, world):
    with local_session(db_path) as s:
        trash_document(s, world["doc"])
        assert list_documents(s) == []
        assert [d.id for d in list_trash(s).documents] == [world["doc"]]


def test_empty_trash_deletes_for_good_and_frees_the_files_after_commit(db_path, world):
    folder = db_path.parent / "chat.db-files"
    with local_session(db_path) as s:
        trash_conversation(s, world["gone"])
        assert empty_trash(s, older_than=dt.timedelta(days=1)) == {
            "conversations": 0,
            "documents": 0,
        }
    with local_session(db_path) as s:
        assert empty_trash(s) == {"conversations": 1, "documents": 0}
    counts, files = snapshot(db_path)
    assert counts["conversation"] == 1 and counts["document"] == 0 and counts["response"] == 0
    assert [n for n in files if not n.startswith(".")] == []
    assert folder.exists()


def test_trash_of_a_missing_row_is_none_and_bad_ages_are_refused(db_path, world):
    with local_session(db_path) as s:
        assert trash_conversation(s, 999) is None
        assert restore_document(s, 999) is None
        with pytest.raises(ValidationError):
            empty_trash(s, older_than=dt.timedelta(days=-1))
        with pytest.raises(ValidationError):
            empty_trash(s, older_than="old")


def _exported(db_path: Path, flt: ExportFilter | None = None) -> dict[str, int]:
    with open_store(db_path).read_session() as s:
        return export_store(s, io.StringIO(), flt)


def test_a_trashed_conversation_leaves_the_export_unless_asked(db_path, world, tmp_path):
    with local_session(db_path) as s:
        trash_conversation(s, world["gone"])
    plain = _exported(db_path)
    assert plain["conversation"] == 1 and plain["message"] == 1
    assert "response" not in plain and "document" not in plain
    assert plain["user"] == 1
    mine = _exported(db_path, ExportFilter(user="ada@example.org"))
    assert mine["conversation"] == 1 and mine["message"] == 1
    everything = _exported(db_path, ExportFilter(include_trashed=True))
    assert everything["conversation"] == 2 and everything["message"] == 3
    assert everything["response"] == 1 and everything["document"] == 1
    with open_store(db_path).read_session() as s:
        assert export_markdown(s, tmp_path / "md") == 1
        assert export_messages_jsonl(s, io.StringIO()) == 1
        assert export_messages_jsonl(s, io.StringIO(), conversation_id=world["gone"]) == 0
        assert export_messages_jsonl(s, io.StringIO(), include_trashed=True) == 3


def test_migration_0009_adds_and_removes_the_trash_columns_keeping_rows(db_path, world):
    store = open_store(db_path)
    with local_session(db_path) as s:
        trash_conversation(s, world["gone"])
    before = store.table_counts()
    assert store.downgrade("0008_chat_window")[-1] == "0009_trash"
    close_all()
    conn = sqlite3.connect(str(db_path))
    columns = {r[1] for r in conn.execute('PRAGMA table_info("conversation")')}
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    conn.close()
    assert "trashed_at" not in columns and "message_fts_ai" in triggers
    assert store.upgrade()[0] == "0009_trash"
    assert store.table_counts() == before
    with local_session(db_path) as s:
        assert len(list_conversations_for_user(s, world["ada"])) == 2  # back as ordinary rows


def test_listings_never_read_through_the_trash_index(db_path, world):
    with local_session(db_path) as s:
        live = (
            Conversation.select()
            .where(Conversation.trashed_at.is_null())
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            .limit(100)
        )
        sql, params = live.sql()
        plan = " ".join(str(r) for r in s.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
        assert "trashed_at" not in plan and "TEMP B-TREE" not in plan, plan
        trashed = Conversation.select().where(Conversation.trashed_at.is_null(False))
        sql, params = trashed.sql()
        plan = " ".join(str(r) for r in s.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
        assert "conversation_trashed_at" in plan, plan

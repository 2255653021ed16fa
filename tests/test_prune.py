"""Prune: a dry run changes nothing; a prune removes exactly the matching rows and their files."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path

import pytest

from localchat import ValidationError, local_session, open_store
from localchat.cli import main
from localchat.maintenance import prune, vacuum_store
from localchat.models import Conversation
from localchat.repository import (
    add_message,
    archive_conversation,
    create_conversation,
    create_user,
    record_response,
    trash_conversation,
)
from localchat.repository import documents as document_ops

OLD = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def world(db_path: Path, tmp_path: Path) -> dict:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "only.txt").write_bytes(b"only the old one uses me")
    (inbox / "shared.txt").write_bytes(b"shared")
    with local_session(db_path) as s:
        ada = create_user(s, "ada@example.org")
        old = create_conversation(s, ada.id, "old")
        q = add_message(s, old.id, "user", "old question")
        a = add_message(s, old.id, "assistant", "old answer", parent_id=q.id)
        record_response(s, a.id, "llama3", 1, 2)
        document_ops.create_document_with_file(
            s, inbox / "only.txt", user_id=ada.id, conversation_id=old.id
        )
        document_ops.create_document_with_file(
            s, inbox / "shared.txt", user_id=ada.id, conversation_id=old.id
        )
        new = create_conversation(s, ada.id, "new")
        add_message(s, new.id, "user", "new question")
        document_ops.create_document_with_file(
            s, inbox / "shared.txt", user_id=ada.id, conversation_id=new.id
        )
        Conversation.update(updated_at=OLD).where(Conversation.id == old.id).execute()
    return {"old": old.id, "new": new.id}


def files(db_path: Path) -> list[str]:
    folder = db_path.parent / "chat.db-files"
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def dump(db_path: Path) -> list[str]:
    conn = sqlite3.connect(str(db_path))
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_a_dry_run_changes_nothing(db_path, world):
    before, before_files = dump(db_path), files(db_path)
    with local_session(db_path) as s:
        report = prune(s, older_than=dt.timedelta(days=30))
    assert report.dry_run and report.conversations == 1
    assert (report.messages, report.responses, report.documents) == (2, 1, 2)
    assert report.files == 1 and report.bytes == len(b"only the old one uses me")
    assert dump(db_path) == before and files(db_path) == before_files


def test_prune_removes_exactly_the_matching_rows_and_the_files_only_they_used(db_path, world):
    counts = open_store(db_path).table_counts()
    assert len(files(db_path)) == 2
    with local_session(db_path) as s:
        report = prune(s, older_than=dt.timedelta(days=30), dry_run=False)
        assert len(files(db_path)) == 2  # files go after the commit
    assert report.conversations == 1 and not report.dry_run
    after = open_store(db_path).table_counts()
    assert after["conversation"] == counts["conversation"] - 1
    assert after["message"] == counts["message"] - 2
    assert after["response"] == counts["response"] - 1
    assert after["document"] == counts["document"] - 2
    assert after["user"] == counts["user"]
    assert len(files(db_path)) == 1  # the shared file stays
    with local_session(db_path) as s:
        assert [c.id for c in Conversation.select()] == [world["new"]]


def test_archived_and_trashed_criteria_combine(db_path, world):
    with local_session(db_path) as s:
        archive_conversation(s, world["new"])
        assert prune(s, archived_only=True).conversations == 1
        assert prune(s, archived_only=True, older_than=dt.timedelta(days=30)).conversations == 0
        assert prune(s, trashed_only=True).conversations == 0
        trash_conversation(s, world["old"])
        assert prune(s, trashed_only=True, dry_run=False).conversations == 1
    assert open_store(db_path).table_counts()["conversation"] == 1


def test_prune_needs_a_criterion_and_checks_its_arguments(db_path, world):
    with local_session(db_path) as s:
        with pytest.raises(ValidationError, match="never deletes everything"):
            prune(s, dry_run=False)
        with pytest.raises(ValidationError):
            prune(s, older_than=dt.timedelta(days=-1))
        with pytest.raises(ValidationError):
            prune(s, older_than="old")
    assert open_store(db_path).table_counts()["conversation"] == 2


def test_prune_command_dry_run_then_apply_in_batches(db_path, world, capsys):
    db = str(db_path)
    assert main(["--db", db, "prune", "--older-than", "30", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["conversations"] == 1
    assert open_store(db_path).table_counts()["conversation"] == 2
    assert main(["--db", db, "prune", "--older-than", "30", "--apply", "--batch", "1",
                 "--vacuum"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "deleted 1 conversation(s)" in out and "free pages" in out
    assert open_store(db_path).table_counts()["conversation"] == 1


def test_vacuum_gives_pages_back_in_incremental_mode(db_path, world):
    conn = sqlite3.connect(str(db_path), isolation_level=None)
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    conn.execute("VACUUM")
    conn.close()
    with local_session(db_path) as s:
        prune(s, older_than=dt.timedelta(days=30), dry_run=False)
    said = vacuum_store(open_store(db_path), step_pages=1)
    assert said.startswith("gave")
    conn = sqlite3.connect(str(db_path))
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    conn.close()

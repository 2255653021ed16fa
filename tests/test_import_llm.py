"""Importing llm's logs.db (0.31 responses, 0.32+ threads, upgraded files): the goldens."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from localchat import ValidationError
from localchat.models import Conversation, Document, Message, Response
from localchat.portable import detect_format, import_path

DATA = Path("/work/shared/data/imports")
FILES = ["llm-logs", "llm-logs-legacy-0.31.1", "llm-logs-upgraded-0.31.1-to-0.36"]


def _data(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"the llm fixtures are not at {DATA} (shared test data, not in the repository)")
    return path


def _import(store, path, **kwargs):
    with store.session() as s:
        return import_path(s, path, **kwargs)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", FILES)
def test_every_conversation_matches_what_llm_itself_reads_back(localchat_store, name):
    db = _data(f"{name}.db")
    expected = json.loads(_data(f"{name}.expected.json").read_text(encoding="utf-8"))
    report = _import(localchat_store, db, attachments_dir=_data("llm-attachments"))
    assert report.format == "llm"
    assert report.added["conversation"] == expected["conversation_count"]
    assert report.added["message"] == sum(c["message_count"] for c in expected["conversations"])
    with localchat_store.read_session():
        for conv in expected["conversations"]:
            row = Conversation.get(Conversation.external_id == conv["id"])
            assert row.title == conv["name"]
            messages = list(
                Message.select().where(Message.conversation == row).order_by(Message.id)
            )
            assert [m.role for m in messages] == conv["roles"]
            assert messages[0].parent_id is None
            assert all(b.parent_id == a.id for a, b in zip(messages, messages[1:], strict=False))
            for got, want in zip(messages, conv["messages"], strict=True):
                _same_message(got, want)
            responses = list(
                Response.select().join(Message).where(Message.conversation == row)
                .order_by(Response.created_at)
            )  # fmt: skip
            assert len(responses) == len(conv["turns"])
            for got, turn in zip(responses, conv["turns"], strict=True):
                assert got.model_used == (turn["resolved_model"] or turn["model"])
                assert (got.tokens_prompt, got.tokens_completion) == (
                    turn["input_tokens"],
                    turn["output_tokens"],
                )
                assert got.options == turn["options"]
                assert got.usage_details == turn["token_details"]
                assert got.message.metadata["turn_id"] == turn["id"]


def _same_message(got: Message, want: dict) -> None:
    parts = want["parts"]
    texts = [p["text"] for p in parts if p["type"] == "text"]
    texts += [p["output"] for p in parts if p["type"] == "tool_result"]
    assert got.content == "\n".join(texts)
    meta = got.metadata
    calls = [{k: v for k, v in p.items() if k != "type"} for p in parts if p["type"] == "tool_call"]
    assert meta.get("tool_calls", []) == calls
    reasoning = "".join(p["text"] for p in parts if p["type"] == "reasoning")
    assert meta.get("reasoning", "") == reasoning
    attachments = [p["attachment"] for p in parts if p["type"] == "attachment"]
    if not attachments:  # llm reads no attachment parts back from ``responses``; we keep them
        return
    assert len(meta.get("attachments", [])) == len(attachments)
    for have, need in zip(meta.get("attachments", []), attachments, strict=True):
        assert have["type"] == need["type"]
        assert have.get("path") == need.get("path") and have.get("url") == need.get("url")


@pytest.mark.parametrize("name", FILES)
def test_the_source_database_stays_byte_identical(localchat_store, tmp_path, name):
    db = _data(f"{name}.db")
    copy = tmp_path / "logs.db"  # a writable copy, so a write attempt could succeed
    shutil.copyfile(db, copy)
    before, mtime = _digest(copy), os.stat(copy).st_mtime_ns
    _import(localchat_store, copy)
    assert _digest(copy) == before and os.stat(copy).st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("logs")) == ["logs.db"]


@pytest.mark.parametrize("name", FILES)
def test_attachments_become_documents_with_bytes_when_they_can_be_found(localchat_store, name):
    report = _import(localchat_store, _data(f"{name}.db"), attachments_dir=_data("llm-attachments"))
    assert report.added["document"] == 4
    with localchat_store.read_session():
        docs = {d.filename: d for d in Document.select()}
        notes = docs["meeting-notes.txt"]
        assert (
            Path(notes.path).read_bytes()
            == (DATA / "llm-attachments" / notes.filename).read_bytes()
        )
        assert notes.sha256 == "220e307a40ac03c34b6314b98296740a372507e6ba5b109a2085a5b0c6d12903"
        inline = next(d for d in docs.values() if d.filename.startswith("attachment-"))
        assert inline.size == 72 and inline.mime_type == "image/png"
        url = docs["diagram.png"]
        assert url.sha256 is None and url.recorded_path == "https://example.com/diagram.png"


def test_attachments_whose_files_are_gone_are_kept_as_metadata(localchat_store):
    _import(localchat_store, _data("llm-logs.db"))
    with localchat_store.read_session():
        notes = Document.get(Document.filename == "meeting-notes.txt")
        assert notes.sha256 is None
        assert notes.recorded_path == "/home/ada/Documents/llm-attachments/meeting-notes.txt"


def test_fragments_system_prompts_and_schemas_are_kept(localchat_store):
    _import(localchat_store, _data("llm-logs.db"))
    with localchat_store.read_session():
        conv = Conversation.get(Conversation.title.startswith("# Design notes"))
        rows = list(Message.select().where(Message.conversation == conv).order_by(Message.id))
        assert rows[0].role == "system" and rows[0].content == "Cite the notes."
        assert rows[1].metadata["fragments"][0]["source"] == "docs/design-notes.md"
        assert len(rows[1].content) > 7772
        assert rows[4].metadata["schema"]["required"] == ["title", "word_count"]


def test_importing_twice_adds_nothing(localchat_store):
    db = _data("llm-logs.db")
    first = _import(localchat_store, db)
    again = _import(localchat_store, db)
    assert again.added == {} and again.skipped == first.added


def test_a_sqlite_database_that_is_not_llms_is_refused(localchat_store, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert detect_format(other) == "llm"
    with pytest.raises(ValidationError, match="not an llm logs.db"):
        _import(localchat_store, other)
    assert localchat_store.table_counts()["conversation"] == 0


def test_a_file_that_is_not_sqlite_is_refused_as_llm(localchat_store, tmp_path):
    bogus = tmp_path / "logs.db"
    bogus.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValidationError, match="not an llm logs.db"):
        _import(localchat_store, bogus, format="llm")


def test_a_broken_message_chain_names_the_conversation_and_changes_nothing(
    localchat_store, tmp_path
):
    broken = tmp_path / "logs.db"
    shutil.copyfile(_data("llm-logs.db"), broken)
    with sqlite3.connect(broken) as conn:
        conn.execute('DELETE FROM "messages" WHERE "role" = \'system\'')
    conn.close()
    with pytest.raises(ValidationError, match="conversation .* is missing from the messages"):
        _import(localchat_store, broken)
    assert localchat_store.table_counts()["message"] == 0


def test_a_damaged_database_is_refused_and_changes_nothing(localchat_store, tmp_path):
    damaged = tmp_path / "logs.db"
    raw = _data("llm-logs.db").read_bytes()
    damaged.write_bytes(raw[:4096] + b"\xff" * (len(raw) - 4096))  # the header page survives
    with pytest.raises(ValidationError, match="logs.db"):
        _import(localchat_store, damaged, format="llm")
    assert localchat_store.table_counts()["message"] == 0


def test_an_llm_import_into_postgresql_matches_the_sqlite_one(pg_session, tmp_path):
    db = _data("llm-logs.db")
    report = import_path(
        pg_session, db, attachments_dir=_data("llm-attachments"), storage_dir=tmp_path / "files"
    )
    assert report.added == {"conversation": 13, "message": 74, "response": 33, "document": 4}
    assert import_path(pg_session, db, storage_dir=tmp_path / "files").added == {}
    assert Message.select().where(Message.role == "tool").count() == 1

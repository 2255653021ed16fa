"""What the chat app runs at start-up, in the sidebar and on a switch reads through an index
(checked with EXPLAIN QUERY PLAN on the statements the functions send; the speed itself is
measured by benchmarks/bench_app_queries.py on a store of 1,000,000 messages)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localchat import open_store
from localchat.repository import (
    add_message,
    add_sibling,
    create_conversation,
    create_user,
    list_conversations_for_user,
    list_versions,
    mark_interrupted_replies,
)


@contextmanager
def _statements() -> Iterator[list[tuple[str, Any]]]:
    """Every statement peewee sends inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, tuple) and len(record.msg) == 2:
                seen.append(record.msg)

    logger = logging.getLogger("peewee")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _plans(path: Path, run: Callable[[Any], Any], store: Any) -> list[str]:
    """The query plans of the SELECTs ``run(session)`` sends, one string each."""
    with _statements() as seen, store.read_session() as s:
        run(s)
    conn = sqlite3.connect(path)
    try:
        return [
            " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params or ()))
            for sql, params in seen
            if sql.lstrip().upper().startswith(("SELECT", "WITH"))
        ]
    finally:
        conn.close()


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "app.db"
    store = open_store(path)
    with store.session() as s:
        ada = create_user(s, email="ada@example.org")
        for i in range(3):
            conv = create_conversation(s, ada.id, f"chat {i}", pinned=i == 1)
            question = add_message(s, conv.id, "user", "q")
            answer = add_message(s, conv.id, "assistant", "a")
            add_sibling(s, answer.id, "a, again")
            for j in range(20):
                add_message(s, conv.id, "user", f"more {j}")
    return {"path": path, "store": store, "ada": ada.id, "answer": answer.id, "q": question.id}


def test_the_start_up_check_for_interrupted_replies_reads_the_streaming_index(world):
    with world["store"].session() as s:  # a write session: what the app runs
        with _statements() as seen:
            mark_interrupted_replies(s)
    sql, params = next(q for q in seen if '"status"' in q[0])
    conn = sqlite3.connect(world["path"])
    plan = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
    conn.close()
    assert "message_streaming" in plan and "SCAN" not in plan


def test_the_sidebar_pinned_first_comes_from_an_index_without_sorting(world):
    plans = _plans(
        world["path"],
        lambda s: list_conversations_for_user(s, world["ada"], pinned_first=True, limit=200),
        world["store"],
    )
    assert len(plans) == 1
    assert "conversation_user_id_pinned_updated_at" in plans[0]
    assert "TEMP B-TREE" not in plans[0]


def test_the_versions_of_a_reply_are_read_by_parent_not_by_conversation(world):
    plans = _plans(world["path"], lambda s: list_versions(s, world["answer"]), world["store"])
    siblings = plans[-1]
    assert "message_parent_id" in siblings, siblings


def test_the_versions_of_a_first_message_are_still_found(world):
    with world["store"].read_session() as s:
        assert list_versions(s, world["q"]).label == "1 of 1"

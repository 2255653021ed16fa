"""Migration 0011: ChatGPT conversations imported before it open on ChatGPT's current branch."""

from __future__ import annotations

import json
from pathlib import Path

import localchat
from localchat import open_store
from localchat.models import Conversation, Message
from localchat.portable import import_path
from localchat.repository import (
    add_message,
    create_conversation,
    get_current_leaf,
    switch_branch,
)

NAME = "0011_chatgpt_current_leaf"
BEFORE = "0010_app_indexes"


def _node(key, parent, role=None, text="", t=None, children=()):
    message = None
    if role is not None:
        message = {
            "id": key,
            "author": {"role": role},
            "create_time": t,
            "content": {"content_type": "text", "parts": [text]},
            "metadata": {},
        }
    return {"id": key, "parent": parent, "children": list(children), "message": message}


def _export(tmp_path: Path, cid: str) -> Path:
    """A question answered twice: a2 is the newest answer, ChatGPT's current_node is a1."""
    t = 1_700_000_000.0
    mapping = {
        "root": _node("root", None, children=["q"]),
        "q": _node("q", "root", "user", "which?", t, ["a1", "a2"]),
        "a1": _node("a1", "q", "assistant", "the first", t + 1),
        "a2": _node("a2", "q", "assistant", "the second", t + 2),
    }
    conv = {"id": cid, "title": cid, "create_time": t, "mapping": mapping, "current_node": "a1"}
    path = tmp_path / f"{cid}.json"
    path.write_text(json.dumps([conv]), encoding="utf-8")
    return path


def _as_before(store, tmp_path: Path) -> dict[str, int | None]:
    """At 0010: three conversations as an older localchat left them; their expected leaves."""
    with store.session() as s:
        import_path(s, _export(tmp_path, "untouched"))
        import_path(s, _export(tmp_path, "moved"))
        mine = create_conversation(s, title="mine")
        add_message(s, mine.id, "user", "hello")
    with store.session():  # what imports did before: no current leaf
        Conversation.update(current_leaf_id=None).execute()
    with store.session() as s:  # the user chose the newest answer of one of them
        moved = Conversation.get(Conversation.external_id == "moved")
        newest = Message.get(Message.conversation == moved.id, Message.content == "the second")
        switch_branch(s, newest.id)
        untouched = Conversation.get(Conversation.external_id == "untouched")
        first = Message.get(Message.conversation == untouched.id, Message.content == "the first")
    return {"untouched": first.id, "moved": newest.id, None: None}


def _leaves(store) -> dict[str | None, int | None]:
    with store.session():  # a read session refuses a store that is not migrated
        return {c.external_id: c.current_leaf_id for c in Conversation.select()}


def _check(store, tmp_path: Path) -> None:
    store.upgrade(BEFORE)
    store._migrated = True  # stay at 0010 while writing the rows
    expected = _as_before(store, tmp_path)
    counts = store.table_counts()
    assert _leaves(store) == {"untouched": None, "moved": expected["moved"], None: None}
    assert store.upgrade() == [NAME]
    assert _leaves(store) == expected and store.table_counts() == counts
    with store.read_session() as s:
        conv = Conversation.get(Conversation.external_id == "untouched")
        assert get_current_leaf(s, conv.id).content == "the first"  # not the newest
    assert store.downgrade() == [NAME]
    store._migrated = True  # stay at 0010 while reading
    assert _leaves(store) == expected and store.table_counts() == counts
    assert store.upgrade() == [NAME]


def test_0011_opens_old_chatgpt_imports_on_chatgpts_branch(tmp_path):
    _check(open_store(tmp_path / "s.db"), tmp_path)


def test_0011_opens_old_chatgpt_imports_on_chatgpts_branch_on_postgresql(pg_url, tmp_path):
    localchat.reset_db(url=pg_url)
    store = open_store(url=pg_url)
    store.downgrade(BEFORE)
    _check(store, tmp_path)

"""What a chat window needs: streamed replies, message status, the current branch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from localchat import open_store
from localchat.errors import Conflict, NotFound, ValidationError
from localchat.models import Conversation, Message
from localchat.repository import (
    add_message,
    add_sibling,
    append_to_reply,
    create_conversation,
    create_user,
    delete_message,
    finish_reply,
    get_current_leaf,
    get_thread,
    list_all_conversations,
    list_conversations_for_user,
    list_messages_for_conversation,
    list_versions,
    mark_interrupted_replies,
    start_reply,
    stream_reply,
    switch_branch,
    update_conversation,
    update_message,
)
from localchat.search import search_messages


def _texts(messages):
    return [m.content for m in messages]


@pytest.fixture
def store(tmp_path: Path):
    return open_store(tmp_path / "chat.db")


def _question(store):
    with store.session() as s:
        conv = create_conversation(s, title="t")
        q = add_message(s, conv.id, "user", "What is 2+2?")
        first = add_message(s, conv.id, "assistant", "4")
    return conv.id, q.id, first.id


def test_two_regenerations_streaming_at_once_write_into_their_own_messages(store):
    conv_id, _, first = _question(store)
    a = stream_reply(store, replaces=first)
    b = stream_reply(store, replaces=first)
    errors = []

    def feed(reply, word):
        try:
            with reply:
                for i in range(20):
                    reply.append(f"{word}{i} ")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(r, w)) for r, w in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.read_session():
        got_a, got_b = Message.get_by_id(a.id), Message.get_by_id(b.id)
    assert got_a.content == "".join(f"a{i} " for i in range(20))
    assert got_b.content == "".join(f"b{i} " for i in range(20))
    assert got_a.status == got_b.status == "complete"


CHILD = """
import os, sys
from localchat import open_store
from localchat.repository import stream_reply
store = open_store(sys.argv[1])
reply = stream_reply(store, int(sys.argv[2]))
for i in range(3):
    reply.append(f"chunk{i} ")
print(reply.id, flush=True)
sys.stdin.readline()   # killed here, mid-stream
"""


def test_a_reply_killed_mid_stream_is_marked_incomplete_with_every_saved_chunk(store, tmp_path):
    conv_id, _, _ = _question(store)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path / "chat.db"), str(conv_id)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    reply_id = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with store.session() as s:
        assert Message.get_by_id(reply_id).status == "streaming"
        assert mark_interrupted_replies(s) == 1
        left = Message.get_by_id(reply_id)
        assert (left.status, left.content) == ("incomplete", "chunk0 chunk1 chunk2 ")
        assert Conversation.get_by_id(conv_id).last_message == "chunk0 chunk1 chunk2 "
        assert mark_interrupted_replies(s) == 0


def test_stopping_and_failing_keep_what_arrived(store):
    conv_id, _, first = _question(store)
    with stream_reply(store, replaces=first) as reply:
        reply.append("Fo")
        reply.stop()
    assert reply.message.status == "incomplete" and reply.message.content == "Fo"
    with pytest.raises(RuntimeError), stream_reply(store, conv_id) as failed:
        failed.append("partial")
        raise RuntimeError("model went away")
    with store.read_session():
        row = Message.get_by_id(failed.id)
    assert (row.status, row.error, row.content) == ("error", "model went away", "partial")


def test_chunks_go_only_into_a_streaming_reply(s):
    conv = create_conversation(s)
    done = add_message(s, conv.id, "assistant", "final")
    with pytest.raises(Conflict, match="complete, not streaming"):
        append_to_reply(s, done.id, "more")
    with pytest.raises(NotFound):
        append_to_reply(s, 10**9, "more")
    assert Message.get_by_id(done.id).content == "final"


def test_search_finds_a_streamed_replys_final_text_and_not_a_stale_one(s):
    conv = create_conversation(s)
    add_message(s, conv.id, "user", "tell me about birds")
    reply = start_reply(s, conv.id)
    append_to_reply(s, reply.id, "the albatross ")
    append_to_reply(s, reply.id, "glides")
    finish_reply(s, reply.id, content="the pelican glides")
    assert [h.message.id for h in search_messages(s, "pelican")] == [reply.id]
    assert search_messages(s, "albatross") == []


def test_update_message_changes_exactly_that_message_and_moves_the_conversation(s):
    conv = create_conversation(s)
    q = add_message(s, conv.id, "user", "q")
    older = add_message(s, conv.id, "assistant", "one")
    newer = add_sibling(s, older.id, "two")
    before = Conversation.get_by_id(conv.id).updated_at
    update_message(s, older.id, content="ONE", metadata={"edited": True})
    assert Message.get_by_id(older.id).content == "ONE"
    assert Message.get_by_id(newer.id).content == "two"
    assert Conversation.get_by_id(conv.id).last_message == "two"  # the latest message's
    update_message(s, newer.id, content="TWO")
    stored = Conversation.get_by_id(conv.id)
    assert stored.last_message == "TWO" and stored.updated_at >= before
    assert update_message(s, 10**9, content="x") is None
    assert Message.get_by_id(q.id).status == "complete"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"status": "done"}, "status"),
        ({"error": "boom"}, 'status="error"'),
        ({"status": "complete", "error": "boom"}, 'status="error"'),
        ({"content": "a\x00b"}, "content"),
    ],
)
def test_bad_updates_are_refused_and_change_nothing(s, kwargs, message):
    conv = create_conversation(s)
    msg = add_message(s, conv.id, "user", "kept")
    with pytest.raises(ValidationError, match=message):
        update_message(s, msg.id, **kwargs)
    row = Message.get_by_id(msg.id)
    assert (row.content, row.status, row.error) == ("kept", "complete", None)


def test_error_status_keeps_its_text_and_another_status_clears_it(s):
    conv = create_conversation(s)
    msg = add_message(s, conv.id, "assistant", "")
    assert update_message(s, msg.id, status="error", error="timeout").error == "timeout"
    assert update_message(s, msg.id, status="complete").error is None


def _branches(s):
    """q -> a1 -> q2 -> a3; a regeneration a2 of a1 with its own follow-up q2b."""
    conv = create_conversation(s)
    q = add_message(s, conv.id, "user", "q")
    a1 = add_message(s, conv.id, "assistant", "a1")
    q2 = add_message(s, conv.id, "user", "q2")
    add_message(s, conv.id, "assistant", "a3")
    a2 = add_sibling(s, a1.id, "a2")
    q2b = add_message(s, conv.id, "user", "q2b")
    return conv, q, a1, a2, q2, q2b


def test_add_message_and_add_sibling_move_the_current_leaf(s):
    conv, q, a1, a2, q2, q2b = _branches(s)
    assert get_current_leaf(s, conv.id) == q2b
    assert q2b.parent_id == a2.id
    assert _texts(list_messages_for_conversation(s, conv.id, latest=True)) == ["q", "a2", "q2b"]


def test_flipping_versions_and_reopening_returns_the_chosen_branch(store):
    with store.session() as s:
        conv, q, a1, a2, q2, q2b = _branches(s)
        leaf = switch_branch(s, a1.id)
        assert leaf.content == "a3"
    with store.read_session() as s:  # the window reopens
        assert _texts(list_messages_for_conversation(s, conv.id, latest=True)) == [
            "q", "a1", "q2", "a3"]  # fmt: skip
        assert _texts(list_messages_for_conversation(s, conv.id, limit=2, latest=True)) == [
            "q2", "a3"]  # fmt: skip
        page = list_messages_for_conversation(s, conv.id, limit=2, offset=1, latest=True)
        assert _texts(page) == ["a1", "q2"]
    with store.session() as s:  # a new message continues the branch on screen
        follow = add_message(s, conv.id, "user", "more")
        assert follow.parent_id == get_thread(s, follow.id)[-2].id
        assert _texts(get_thread(s, follow.id))[-2] == "a3"


def test_the_versions_of_a_message_come_with_its_position(s):
    conv, q, a1, a2, q2, q2b = _branches(s)
    versions = list_versions(s, a2.id)
    assert _texts(versions.messages) == ["a1", "a2"]
    assert (versions.position, versions.total, versions.label) == (2, 2, "2 of 2")
    assert list_versions(s, 10**9) is None


def test_the_first_messages_versions_are_listed(s):
    conv = create_conversation(s)
    first = add_message(s, conv.id, "user", "hello")
    edit = add_sibling(s, first.id, "hi")
    other = create_conversation(s)
    add_message(s, other.id, "user", "another root elsewhere")
    versions = list_versions(s, first.id)
    assert [m.id for m in versions.messages] == [first.id, edit.id]
    assert versions.label == "1 of 2"


def test_get_thread_limit_gives_the_last_messages_oldest_first(s):
    conv = create_conversation(s)
    for i in range(10):
        leaf = add_message(s, conv.id, "user", str(i))
    assert _texts(get_thread(s, leaf.id, limit=3)) == ["7", "8", "9"]
    assert len(get_thread(s, leaf.id)) == 10


def test_deleting_the_current_leaf_keeps_the_branch_and_moves_the_leaf_up(s):
    conv, q, a1, a2, q2, q2b = _branches(s)
    delete_message(s, q2b.id)
    assert get_current_leaf(s, conv.id) == Message.get_by_id(a2.id)
    delete_message(s, a1.id)  # q2 and a3 move up under q
    assert Message.get_by_id(q2.id).parent_id == q.id
    switch_branch(s, q2.id)
    assert _texts(list_messages_for_conversation(s, conv.id, latest=True)) == ["q", "q2", "a3"]


def test_switch_branch_to_a_missing_message_is_not_found(s):
    with pytest.raises(NotFound):
        switch_branch(s, 10**9)


def _sidebar(s):
    user = create_user(s, "side@example.org")
    work = create_conversation(s, user.id, title="work", tags=["job", "q3"], metadata={"c": 1})
    home = create_conversation(s, user.id, title="home", pinned=True, tags=["family"])
    old = create_conversation(s, user.id, title="old", pinned=True)
    add_message(s, work.id, "user", "newest")
    return user, work, home, old


@pytest.mark.parametrize("listing", ["user", "all"])
def test_conversations_filter_by_pinned_and_tag_and_list_pinned_first(s, listing):
    user, work, home, old = _sidebar(s)

    def titles(**kw):
        if listing == "user":
            return [c.title for c in list_conversations_for_user(s, user.id, **kw)]
        return [c.title for c in list_all_conversations(s, **kw)]

    assert titles() == ["work", "old", "home"]
    assert titles(pinned_first=True) == ["old", "home", "work"]
    assert titles(pinned=True) == ["old", "home"]
    assert titles(pinned=False) == ["work"]
    assert titles(tag="q3") == ["work"]
    assert titles(tag="nope") == []


@pytest.mark.parametrize("listing", ["user", "all"])
def test_conversations_filter_by_title_text_any_case_wildcards_literal(s, listing):
    user, work, home, old = _sidebar(s)
    create_conversation(s, user.id, title="50% off_sale")

    def titles(**kw):
        if listing == "user":
            return [c.title for c in list_conversations_for_user(s, user.id, **kw)]
        return [c.title for c in list_all_conversations(s, **kw)]

    assert titles(title_contains="O") == ["50% off_sale", "work", "old", "home"]
    assert titles(title_contains="OM", pinned_first=True) == ["home"]
    assert titles(title_contains="%") == titles(title_contains="0% o") == ["50% off_sale"]
    assert titles(title_contains="_") == ["50% off_sale"]
    assert titles(title_contains="nothing like it") == []
    with pytest.raises(ValidationError):
        titles(title_contains=3)


def test_sidebar_fields_update_and_are_checked(s):
    user, work, home, old = _sidebar(s)
    assert work.pinned is False and home.pinned is True
    got = update_conversation(s, work.id, pinned=True, tags=[], metadata={"color": "red"})
    stored = Conversation.get_by_id(work.id)
    assert (stored.pinned, stored.tags, stored.metadata) == (True, [], {"color": "red"})
    assert got.pinned is True
    for bad in ({"tags": "job"}, {"tags": [""]}, {"tags": [1]}, {"pinned": 1}):
        with pytest.raises(ValidationError):
            update_conversation(s, work.id, **bad)
    assert Conversation.get_by_id(work.id).tags == []


def test_export_and_import_carry_the_sidebar_fields_and_message_status(tmp_path):
    from localchat.portable import export_store, import_path

    src = open_store(tmp_path / "a.db")
    with src.session() as s:
        conv = create_conversation(s, title="t", pinned=True, tags=["x"], metadata={"k": [1]})
        reply = start_reply(s, conv.id)
        finish_reply(s, reply.id, "error", error="boom")
    out = tmp_path / "dump.jsonl"
    with src.read_session() as s, open(out, "w", encoding="utf-8") as fp:
        export_store(s, fp)
    dst = open_store(tmp_path / "b.db")
    with dst.session() as s:
        import_path(s, out)
        got = Conversation.get(Conversation.title == "t")
        assert (got.pinned, got.tags, got.metadata) == (True, ["x"], {"k": [1]})
        msg = Message.get(Message.conversation == got.id)
        assert (msg.status, msg.error) == ("error", "boom")
        assert get_current_leaf(s, got.id) == msg


def test_branches_streaming_and_tags_work_on_postgresql(pg_session):
    s = pg_session
    user, work, home, old = _sidebar(s)
    assert [c.title for c in list_all_conversations(s, tag="q3", pinned_first=True)] == ["work"]
    assert [c.title for c in list_all_conversations(s, title_contains="OR")] == ["work"]
    conv, q, a1, a2, q2, q2b = _branches(s)
    switch_branch(s, a1.id)
    assert _texts(list_messages_for_conversation(s, conv.id, latest=True)) == [
        "q",
        "a1",
        "q2",
        "a3",
    ]
    reply = start_reply(s, conv.id)
    append_to_reply(s, reply.id, "part")
    assert mark_interrupted_replies(s) == 1
    assert get_current_leaf(s, conv.id).content == "part"
    assert list_versions(s, q.id).label == "1 of 1"
    delete_message(s, reply.id)
    assert get_current_leaf(s, conv.id).content == "a3"

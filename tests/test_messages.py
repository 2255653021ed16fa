"""Messages: the tree (chains, edits, regenerations, threads), listings, deletes, responses."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playhouse.test_utils import assert_query_count

from localchat import Conflict, NotFound, ValidationError
from localchat.models import Conversation, Message, Response
from localchat.repository import (
    MessageSenderType,
    add_chat_exchange,
    add_message,
    add_sibling,
    bulk_upsert_knowledge_chunks,
    create_conversation,
    delete_conversation,
    delete_message,
    get_conversation_by_id,
    get_conversation_message_count,
    get_latest_message,
    get_message_by_id,
    get_response_for_message,
    get_thread,
    list_chat_exchanges,
    list_children,
    list_messages_for_conversation,
    record_response,
)

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
# Every writing call runs in a savepoint: SAVEPOINT + RELEASE around its own statements.
SAVEPOINT = 2


@pytest.fixture
def conv(localchat_session):
    return create_conversation(localchat_session, title="chat")


def _contents(messages):
    return [m.content for m in messages]


# -- add_message -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["user", "assistant", "system", "tool", *MessageSenderType])
def test_every_role_is_accepted_as_a_string_or_enum(localchat_session, conv, role):
    msg = add_message(localchat_session, conv.id, role, "text")
    assert msg.role == getattr(role, "value", role) == msg.sender_type


def test_message_keeps_metadata_model_and_aware_timestamps(localchat_session, conv):
    msg = add_message(localchat_session, conv.id, "assistant", "hi", {"tokens": 5}, model="llama3")
    stored = get_message_by_id(localchat_session, msg.id)
    assert (stored.role_metadata, stored.model, stored.conversation_id) == (
        {"tokens": 5},
        "llama3",
        conv.id,
    )
    assert stored.created_at == msg.created_at and stored.created_at.tzinfo is dt.timezone.utc
    assert get_message_by_id(localchat_session, str(msg.uuid)).id == msg.id


def test_new_message_bumps_the_conversation_updated_at_and_preview(localchat_session, conv):
    Conversation.update(updated_at=T0).where(Conversation.id == conv.id).execute()
    msg = add_message(localchat_session, conv.uuid, "user", "x" * 1000)
    stored = get_conversation_by_id(localchat_session, conv.id)
    assert stored.updated_at == msg.created_at > T0
    assert stored.last_message == "x" * 199 + "\u2026"


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        (("robot", "hi"), {}, ValidationError, "sender_type 'robot' is not one of user, assistant"),
        (("user", None), {}, ValidationError, "content must be a string"),
        (("user", "a\0b"), {}, ValidationError, "NUL"),
        (("user", "\ud800"), {}, ValidationError, "lone surrogate"),
        (("user", "hi", {"x": float("nan")}), {}, ValidationError, "finite"),
        (("user", "hi", {"x": {1, 2}}), {}, ValidationError, "JSON accepts"),
        (("user", "hi", {1: "x"}), {}, ValidationError, "keys must be strings"),
        (("user", "hi"), {"model": 7}, ValidationError, "model must be a string"),
        (("user", "hi"), {"parent_id": 10_000}, NotFound, "no message 10000"),
        (("user", "hi"), {"parent_id": "x"}, ValidationError, "message_id must be an integer id"),
    ],
)
def test_bad_message_is_refused_and_nothing_changes(
    snapshot, localchat_session, conv, args, kwargs, error, message
):
    add_message(localchat_session, conv.id, "user", "first")
    before = snapshot(localchat_session)
    with pytest.raises(error, match=re.escape(message)):
        add_message(localchat_session, conv.id, *args, **kwargs)
    assert snapshot(localchat_session) == before


@pytest.mark.parametrize("key", [10_000, "5b3c8f0e-8a8e-4d52-9df1-1a2b3c4d5e6f"])
def test_message_for_a_missing_conversation_is_not_found(snapshot, localchat_session, conv, key):
    before = snapshot(localchat_session)
    with pytest.raises(NotFound, match="no conversation"):
        add_message(localchat_session, key, "user", "hi")
    assert snapshot(localchat_session) == before


def test_parent_from_another_conversation_is_refused(snapshot, localchat_session, conv):
    s = localchat_session
    other = create_conversation(s)
    foreign = add_message(s, other.id, "user", "elsewhere")
    before = snapshot(localchat_session)
    with pytest.raises(ValidationError, match="belongs to conversation"):
        add_message(s, conv.id, "assistant", "reply", parent_id=foreign.id)
    assert snapshot(localchat_session) == before


# -- the tree ----------------------------------------------------------------------


def test_messages_without_parent_form_a_chain(localchat_session, conv):
    s = localchat_session
    a = add_message(s, conv.id, "system", "be brief")
    b = add_message(s, conv.id, "user", "hi")
    c = add_message(s, conv.id, "assistant", "hello")
    assert (a.parent_id, b.parent_id, c.parent_id) == (None, a.id, b.id)
    assert _contents(get_thread(s, c.id)) == ["be brief", "hi", "hello"]
    assert get_latest_message(s, conv.id).id == c.id


def test_regenerating_adds_a_sibling_and_the_next_message_follows_it(localchat_session, conv):
    s = localchat_session
    q = add_message(s, conv.id, "user", "2+2?")
    first = add_message(s, conv.id, "assistant", "4")
    second = add_sibling(s, first.id, "Four.", model="other")
    follow = add_message(s, conv.id, "user", "thanks")
    assert (second.parent_id, second.role, second.model) == (q.id, "assistant", "other")
    assert _contents(list_children(s, q.id)) == ["4", "Four."]
    assert _contents(get_thread(s, follow.id)) == ["2+2?", "Four.", "thanks"]
    assert _contents(get_thread(s, first.id)) == ["2+2?", "4"]


def test_editing_the_first_message_starts_a_second_root(localchat_session, conv):
    s = localchat_session
    root = add_message(s, conv.id, "user", "hello")
    add_message(s, conv.id, "assistant", "hi")
    edited = add_sibling(s, root.id, "hello there")
    assert edited.parent_id is None and edited.role == "user"
    assert _contents(get_thread(s, edited.id)) == ["hello there"]
    assert get_conversation_message_count(s, conv.id) == 3


def test_explicit_parent_continues_an_older_branch(localchat_session, conv):
    s = localchat_session
    q = add_message(s, conv.id, "user", "q")
    a1 = add_message(s, conv.id, "assistant", "a1")
    add_sibling(s, a1.id, "a2")
    back = add_message(s, conv.id, "user", "on a1", parent_id=a1)
    assert _contents(get_thread(s, back.id)) == ["q", "a1", "on a1"]
    assert _contents(list_children(s, a1.id)) == ["on a1"]
    assert list_children(s, back.id) == [] and q.parent_id is None


def test_sibling_of_a_missing_message_is_not_found(localchat_session, conv):
    with pytest.raises(NotFound, match="edit or regenerate"):
        add_sibling(localchat_session, 404, "x")


def test_a_deep_thread_comes_back_whole_in_one_query(localchat_session, conv):
    s = localchat_session
    for i in range(300):
        leaf = add_message(s, conv.id, "user" if i % 2 == 0 else "assistant", str(i))
    with assert_query_count(1 + SAVEPOINT):
        thread = get_thread(s, leaf.id)
    assert _contents(thread) == [str(i) for i in range(300)]


@pytest.mark.parametrize("key", [404, "5b3c8f0e-8a8e-4d52-9df1-1a2b3c4d5e6f"])
def test_reads_of_missing_messages_are_empty(localchat_session, conv, key):
    s = localchat_session
    assert get_thread(s, key) == [] and list_children(s, key) == []
    assert get_message_by_id(s, key) is None and get_response_for_message(s, key) is None


# -- query counts on the hot paths ------------------------------------------------


@pytest.mark.parametrize("with_parent", [False, True])
def test_add_message_is_one_insert_without_a_savepoint(localchat_session, conv, with_parent):
    s = localchat_session
    first = add_message(s, conv.id, "user", "q")
    parent = {"parent_id": first.id} if with_parent else {}
    # SELECT (the conversation and its latest message, or the given parent's
    # conversation), then ONE INSERT: migration 0004's trigger moves the conversation,
    # and one statement is atomic on SQLite.
    with assert_query_count(2):
        reply = add_message(s, conv.id, "assistant", "a", {"k": 1}, **parent)
    assert reply.parent_id == first.id
    assert get_message_by_id(s, reply.id).parent_id == first.id


def test_listing_messages_is_one_query(localchat_session, conv):
    for i in range(20):
        add_message(localchat_session, conv.id, "user", str(i))
    with assert_query_count(1):  # a read: no savepoint
        assert len(list_messages_for_conversation(localchat_session, conv.id)) == 20


# -- listings ----------------------------------------------------------------------


def test_listing_is_oldest_first_across_branches_with_role_filter(localchat_session, conv):
    s = localchat_session
    add_message(s, conv.id, "user", "q")
    a = add_message(s, conv.id, "assistant", "a1")
    add_sibling(s, a.id, "a2")
    add_message(s, conv.id, "system", "note")
    assert _contents(list_messages_for_conversation(s, conv.id)) == ["q", "a1", "a2", "note"]
    by_enum = list_messages_for_conversation(s, conv.id, sender_type=MessageSenderType.ASSISTANT)
    assert _contents(by_enum) == ["a1", "a2"]
    assert _contents(list_messages_for_conversation(s, conv.id, sender_type="tool")) == []
    with pytest.raises(ValidationError, match="sender_type"):
        list_messages_for_conversation(s, conv.id, sender_type="bot")


def test_messages_with_equal_timestamps_keep_insertion_order(localchat_session, conv):
    s = localchat_session
    made = [add_message(s, conv.id, "user", str(i)) for i in range(4)]
    Message.update(created_at=T0).execute()
    assert _contents(list_messages_for_conversation(s, conv.id)) == ["0", "1", "2", "3"]
    assert get_latest_message(s, conv.id).id == made[-1].id


def test_message_pagination_edges(localchat_session, conv):
    s = localchat_session
    for i in range(5):
        add_message(s, conv.id, "user", str(i))
    assert _contents(list_messages_for_conversation(s, conv.id, limit=2, offset=3)) == ["3", "4"]
    assert list_messages_for_conversation(s, conv.id, offset=5) == []
    for limit, offset in [(0, 0), (5, -1), (5, None)]:
        with pytest.raises(ValidationError):
            list_messages_for_conversation(s, conv.id, limit=limit, offset=offset)


def test_unknown_conversation_has_no_messages(localchat_session, conv):
    add_message(localchat_session, conv.id, "user", "x")
    for key in (404, "5b3c8f0e-8a8e-4d52-9df1-1a2b3c4d5e6f"):
        assert list_messages_for_conversation(localchat_session, key) == []
        assert get_conversation_message_count(localchat_session, key) == 0
        assert get_latest_message(localchat_session, key) is None


# -- delete ------------------------------------------------------------------------


def test_deleting_a_message_reattaches_its_children_to_its_parent(localchat_session, conv):
    s = localchat_session
    q = add_message(s, conv.id, "user", "q")
    a = add_message(s, conv.id, "assistant", "a")
    b = add_sibling(s, a.id, "b")
    c = add_message(s, conv.id, "user", "c", parent_id=a.id)
    assert delete_message(s, a.id) is True
    assert get_message_by_id(s, c.id).parent_id == q.id
    assert _contents(get_thread(s, c.id)) == ["q", "c"]
    assert get_message_by_id(s, b.id).parent_id == q.id
    assert delete_message(s, a.id) is False


def test_deleting_a_root_makes_its_children_roots(localchat_session, conv):
    s = localchat_session
    q = add_message(s, conv.id, "user", "q")
    a = add_message(s, conv.id, "assistant", "a")
    delete_message(s, q.id)
    assert get_message_by_id(s, a.id).parent_id is None


def test_deleting_the_latest_message_rolls_the_preview_back(localchat_session, conv):
    s = localchat_session
    add_message(s, conv.id, "user", "older")
    last = add_message(s, conv.id, "assistant", "secret")
    delete_message(s, last.id)
    assert get_conversation_by_id(s, conv.id).last_message == "older"
    delete_message(s, get_latest_message(s, conv.id).id)
    assert get_conversation_by_id(s, conv.id).last_message is None


def test_deleting_a_message_deletes_its_response(localchat_session, conv):
    s = localchat_session
    a = add_message(s, conv.id, "assistant", "a")
    record_response(s, a.id, "m", 3, 4)
    delete_message(s, a.id)
    assert Response.select().count() == 0


# -- responses ---------------------------------------------------------------------


@pytest.fixture
def reply(localchat_session, conv):
    add_message(localchat_session, conv.id, "user", "q")
    return add_message(localchat_session, conv.id, "assistant", "a")


def test_response_total_is_computed_when_omitted(localchat_session, reply):
    r = record_response(localchat_session, reply.id, "gpt-x", 10, 5, completion_time_ms=120)
    stored = get_response_for_message(localchat_session, reply.id)
    assert (r.tokens_total, stored.tokens_total, stored.completion_time_ms) == (15, 15, 120)


@pytest.mark.parametrize(
    ("counts", "total"), [((10, 5, 99), 99), ((10, None, None), None), ((None, None, 7), 7)]
)
def test_response_total_given_or_unknowable_is_kept(localchat_session, reply, counts, total):
    assert record_response(localchat_session, reply.id, "m", *counts).tokens_total == total


def test_response_keeps_options_and_usage_details(localchat_session, reply):
    opts = {"temperature": 0.2, "stop": ["\n"]}
    usage = {"cached_tokens": 3, "reasoning": {"tokens": 1}}
    record_response(localchat_session, reply, "m", options=opts, usage_details=usage)
    stored = get_response_for_message(localchat_session, reply.uuid)
    assert (stored.options, stored.usage_details, stored.message_id) == (opts, usage, reply.id)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tokens_prompt": -1},
        {"tokens_completion": -5},
        {"tokens_total": -1},
        {"completion_time_ms": -1},
        {"tokens_prompt": 1.5},
        {"tokens_total": True},
        {"options": {"t": float("inf")}},
    ],
)
def test_bad_response_values_are_refused(localchat_session, reply, kwargs):
    with pytest.raises(ValidationError):
        record_response(localchat_session, reply.id, "m", **kwargs)
    assert get_response_for_message(localchat_session, reply.id) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"tokens_prompt": 2**63}, {"completion_time_ms": 2**31},
     {"tokens_prompt": 2**30, "tokens_completion": 2**30}],  # a total past the column
)  # fmt: skip
def test_counts_past_an_integer_column_are_refused(localchat_session, reply, kwargs):
    """PostgreSQL's INTEGER holds 32 bits; SQLite refuses the same counts."""
    with pytest.raises(ValidationError, match="from 0 to 2147483647"):
        record_response(localchat_session, reply.id, "m", **kwargs)
    assert get_response_for_message(localchat_session, reply.id) is None


@pytest.mark.parametrize("key", [2**63, -(2**63) - 1, "99999999999999999999"])
def test_an_id_no_message_can_have_is_missing_not_an_error(localchat_session, conv, key):
    s = localchat_session
    add_message(s, conv.id, "user", "q")
    assert get_message_by_id(s, key) is None
    assert delete_message(s, key) is False
    assert get_thread(s, key) == []
    assert list_messages_for_conversation(s, key) == []
    assert get_latest_message(s, key) is None
    with pytest.raises(NotFound):
        add_message(s, conv.id, "user", "x", parent_id=key)
    with pytest.raises(NotFound):
        add_message(s, key, "user", "x")
    with pytest.raises(NotFound):
        record_response(s, key, "m")


def test_response_needs_a_model_name(localchat_session, reply):
    with pytest.raises(ValidationError, match="model_used must not be empty"):
        record_response(localchat_session, reply.id, " ")


def test_responses_belong_to_assistant_messages_only(localchat_session, conv):
    q = add_message(localchat_session, conv.id, "user", "q")
    with pytest.raises(ValidationError, match="is a user message"):
        record_response(localchat_session, q.id, "m")


def test_response_for_a_missing_message_is_not_found(localchat_session, conv):
    with pytest.raises(NotFound):
        record_response(localchat_session, 404, "m")


def test_second_response_for_a_message_conflicts_and_keeps_the_first(localchat_session, reply):
    record_response(localchat_session, reply.id, "first", 1, 1)
    with pytest.raises(Conflict, match="already has a response"):
        record_response(localchat_session, reply.id, "second", 2, 2)
    assert get_response_for_message(localchat_session, reply.id).model_used == "first"


def test_conversation_delete_cascades_to_messages_and_responses(localchat_session, reply):
    record_response(localchat_session, reply.id, "m")
    delete_conversation(localchat_session, reply.conversation_id)
    assert (Message.select().count(), Response.select().count()) == (0, 0)


# -- properties --------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=TEXT, metadata=JSON)
def test_any_unicode_content_and_json_metadata_round_trip(
    localchat_session, conv, content, metadata
):
    msg = add_message(localchat_session, conv.id, "user", content, metadata)
    stored = Message.get_by_id(msg.id)
    assert (stored.content, stored.metadata) == (content, metadata)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "reply", "sibling", "delete"]),
            st.integers(min_value=0, max_value=50),
        ),
        max_size=25,
    )
)
def test_any_sequence_of_adds_and_deletes_keeps_counts_and_tree_consistent(
    localchat_session, conv, steps
):
    s = localchat_session
    with s.db.atomic() as example:
        alive: list[int] = []
        for op, pick in steps:
            target = alive[pick % len(alive)] if alive else None
            if op == "add" or target is None:
                alive.append(add_message(s, conv.id, "user", "m").id)
            elif op == "reply":
                alive.append(add_message(s, conv.id, "assistant", "r", parent_id=target).id)
            elif op == "sibling":
                alive.append(add_sibling(s, target, "s").id)
            else:
                assert delete_message(s, target) is True
                alive.remove(target)
        assert get_conversation_message_count(s, conv.id) == len(alive)
        listed = list_messages_for_conversation(s, conv.id, limit=1000)
        assert sorted(m.id for m in listed) == sorted(alive)
        for message in listed:
            thread = get_thread(s, message.id)
            assert thread[0].parent_id is None and thread[-1].id == message.id
            assert all(
                child.parent_id == parent.id
                for parent, child in zip(thread, thread[1:], strict=False)
            )
        example.rollback()


# -- PostgreSQL --------------------------------------------------------------------


def test_tree_responses_and_exchanges_work_on_postgresql(pg_session):
    s = pg_session
    conv = create_conversation(s, title="pg")
    q = add_message(s, conv.id, "user", "q", {"é": [1, 2.5, None]})
    a1 = add_message(s, conv.id, "assistant", "a1")
    a2 = add_sibling(s, a1.id, "a2")
    follow = add_message(s, conv.id, "user", "next")
    assert _contents(get_thread(s, follow.id)) == ["q", "a2", "next"]
    record_response(s, a2.id, "m", 1, 2)
    with pytest.raises(Conflict):
        record_response(s, a2.id, "m")
    # the failed call was rolled back to its savepoint: the transaction goes on
    assert delete_message(s, a2.id) is True
    assert get_message_by_id(s, follow.id).parent_id == q.id
    assert get_message_by_id(s, q.id).metadata == {"é": [1, 2.5, None]}
    exch = add_chat_exchange(s, conv.id, "hi", "p", "hello", "<p>", [{"i": 1}])
    assert list_chat_exchanges(s, conv.id)[-1] == exch
    chunks = [{"source": "d", "content": f"c{i}", "external_id": str(i)} for i in range(600)]
    assert len(bulk_upsert_knowledge_chunks(s, chunks + [{"source": "d", "content": "c0"}])) == 601
    assert get_conversation_message_count(s, conv.id) == 5


def test_unknown_conversation_uuid_is_not_found_even_with_a_parent(localchat_session, conv):
    parent = add_message(localchat_session, conv.id, "user", "q")
    with pytest.raises(NotFound, match="no conversation"):
        add_message(
            localchat_session,
            "5b3c8f0e-8a8e-4d52-9df1-1a2b3c4d5e6f",
            "assistant",
            "a",
            parent_id=parent.id,
        )

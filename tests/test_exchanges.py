"""Chat exchanges: a view over a user message and its assistant reply, never a copy."""

from __future__ import annotations

import dataclasses

import pytest
from playhouse.test_utils import assert_query_count

from localchat import NotFound, ValidationError
from localchat.models import Message
from localchat.repository import (
    ChatExchange,
    add_chat_exchange,
    add_message,
    add_sibling,
    create_chat_session,
    delete_chat_exchange,
    get_chat_exchange,
    get_conversation_by_id,
    get_message_by_id,
    get_thread,
    list_chat_exchanges,
    list_messages_for_conversation,
    update_chat_exchange,
)

FULL = {
    "user_message": "Hello",
    "rag_prompt": "Prompt",
    "assistant_message": "Hi!",
    "html_response": "<p>Hi!</p>",
    "context_used": [{"info": "test"}],
}


@pytest.fixture
def chat(localchat_session):
    return create_chat_session(localchat_session, title="support")


def _fields(exchange):
    return {name: getattr(exchange, name) for name in FULL}


def test_exchange_round_trips_every_field(localchat_session, chat):
    exch = add_chat_exchange(localchat_session, chat.id, **FULL)
    fetched = get_chat_exchange(localchat_session, exch.id)
    assert _fields(fetched) == FULL == _fields(exch)
    assert fetched.chat_session_id == chat.id
    assert fetched.created_at == exch.created_at and fetched.created_at.tzinfo is not None


def test_exchange_is_two_messages_not_a_copy(localchat_session, chat):
    s = localchat_session
    exch = add_chat_exchange(s, chat.id, **FULL)
    question, reply = list_messages_for_conversation(s, chat.id)
    assert (question.id, question.role, question.content) == (exch.id, "user", "Hello")
    assert (reply.id, reply.parent_id, reply.role, reply.content) == (
        exch.reply_id,
        exch.id,
        "assistant",
        "Hi!",
    )
    assert reply.metadata == {
        "rag_prompt": "Prompt",
        "html_response": "<p>Hi!</p>",
        "context_used": [{"info": "test"}],
    }
    assert question.metadata is None
    assert get_conversation_by_id(s, chat.id).last_message == "Hi!"


def test_exchanges_chain_like_a_chat(localchat_session, chat):
    s = localchat_session
    first = add_chat_exchange(s, chat.id, "one", assistant_message="1")
    second = add_chat_exchange(s, chat.id, "two", assistant_message="2")
    thread = get_thread(s, second.reply_id)
    assert [m.id for m in thread] == [first.id, first.reply_id, second.id, second.reply_id]


def test_exchange_without_a_reply_has_none_for_the_reply_fields(localchat_session, chat):
    exch = add_chat_exchange(localchat_session, chat.id, "just asking")
    assert (exch.assistant_message, exch.rag_prompt, exch.reply_id) == (None, None, None)
    assert Message.select().count() == 1


@pytest.mark.parametrize("field", ["rag_prompt", "html_response", "context_used"])
def test_reply_fields_without_a_reply_are_refused(snapshot, localchat_session, chat, field):
    before = snapshot(localchat_session)
    with pytest.raises(ValidationError, match="kept with the assistant reply"):
        add_chat_exchange(localchat_session, chat.id, "q", **{field: FULL[field]})
    assert snapshot(localchat_session) == before


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"user_message": None}, ValidationError),
        ({"user_message": 5}, ValidationError),
        ({"user_message": "q", "assistant_message": ["a"]}, ValidationError),
        (
            {"user_message": "q", "assistant_message": "a", "context_used": {"x": object()}},
            ValidationError,
        ),
    ],
)
def test_bad_exchange_is_refused_and_nothing_is_written(
    snapshot, localchat_session, chat, kwargs, error
):
    before = snapshot(localchat_session)
    with pytest.raises(error):
        add_chat_exchange(localchat_session, chat.id, **kwargs)
    assert snapshot(localchat_session) == before


def test_exchange_in_a_missing_chat_is_not_found(localchat_session, chat):
    with pytest.raises(NotFound):
        add_chat_exchange(localchat_session, 404, "q", assistant_message="a")
    assert Message.select().count() == 0


def test_exchange_view_is_read_only(localchat_session, chat):
    exch = add_chat_exchange(localchat_session, chat.id, "q")
    with pytest.raises(dataclasses.FrozenInstanceError):
        exch.user_message = "changed"  # type: ignore[misc]


def test_get_is_none_for_missing_ids_and_non_user_messages(localchat_session, chat):
    exch = add_chat_exchange(localchat_session, chat.id, **FULL)
    assert get_chat_exchange(localchat_session, exch.reply_id) is None
    assert get_chat_exchange(localchat_session, 404) is None
    assert (
        get_chat_exchange(
            localchat_session, str(get_message_by_id(localchat_session, exch.id).uuid)
        ).id
        == exch.id
    )


def test_regenerated_reply_is_what_the_exchange_shows(localchat_session, chat):
    s = localchat_session
    exch = add_chat_exchange(s, chat.id, **FULL)
    add_sibling(s, exch.reply_id, "Hello again!", {"html_response": "<p>again</p>"})
    fetched = get_chat_exchange(s, exch.id)
    assert (fetched.assistant_message, fetched.html_response) == ("Hello again!", "<p>again</p>")
    assert list_chat_exchanges(s, chat.id)[0].assistant_message == "Hello again!"


def test_list_is_oldest_first_in_two_queries(localchat_session, chat):
    s = localchat_session
    for i in range(10):
        add_chat_exchange(s, chat.id, f"q{i}", assistant_message=f"a{i}" if i % 2 else None)
    add_message(s, chat.id, "system", "not an exchange")
    with assert_query_count(2 + 2):  # user messages, their replies; savepoint + release
        listed = list_chat_exchanges(s, chat.id)
    assert [e.user_message for e in listed] == [f"q{i}" for i in range(10)]
    assert [e.assistant_message for e in listed] == [f"a{i}" if i % 2 else None for i in range(10)]


def test_list_of_an_unknown_or_empty_chat_is_empty(localchat_session, chat):
    assert list_chat_exchanges(localchat_session, chat.id) == []
    assert list_chat_exchanges(localchat_session, 404) == []


def test_update_edits_in_place_without_new_messages(localchat_session, chat):
    s = localchat_session
    exch = add_chat_exchange(s, chat.id, **FULL)
    updated = update_chat_exchange(s, exch.id, assistant_message="Updated message", context_used=[])
    assert Message.select().count() == 2
    assert _fields(updated) == {**FULL, "assistant_message": "Updated message", "context_used": []}
    assert _fields(get_chat_exchange(s, exch.id)) == _fields(updated)
    assert get_conversation_by_id(s, chat.id).last_message == "Updated message"


def test_update_of_the_user_message_keeps_the_reply(localchat_session, chat):
    s = localchat_session
    exch = add_chat_exchange(s, chat.id, **FULL)
    updated = update_chat_exchange(s, exch.id, user_message="Hello?", rag_prompt=None)
    assert _fields(updated) == {**FULL, "user_message": "Hello?"}
    assert get_message_by_id(s, exch.id).updated_at >= exch.created_at


def test_update_can_add_the_reply_later(localchat_session, chat):
    s = localchat_session
    exch = add_chat_exchange(s, chat.id, "Hello")
    later = update_chat_exchange(s, exch.id, assistant_message="Hi!", html_response="<p>Hi!</p>")
    assert (later.assistant_message, later.html_response) == ("Hi!", "<p>Hi!</p>")
    assert get_message_by_id(s, later.reply_id).parent_id == exch.id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"html_response": "<p>"}, "has no assistant reply"),
        ({"answer": "x"}, "has no field answer"),
        ({"user_message": 3}, "user_message must be a string"),
    ],
)
def test_bad_update_is_refused_and_changes_nothing(
    snapshot, localchat_session, chat, fields, message
):
    exch = add_chat_exchange(localchat_session, chat.id, "Hello")
    before = snapshot(localchat_session)
    with pytest.raises(ValidationError, match=message):
        update_chat_exchange(localchat_session, exch.id, **fields)
    assert snapshot(localchat_session) == before


def test_update_of_a_missing_exchange_returns_none(localchat_session, chat):
    assert update_chat_exchange(localchat_session, 404, user_message="x") is None


def test_delete_removes_the_exchange_and_keeps_later_messages(localchat_session, chat):
    s = localchat_session
    first = add_chat_exchange(s, chat.id, **FULL)
    add_sibling(s, first.reply_id, "another reply")
    second = add_chat_exchange(s, chat.id, "next", assistant_message="ok")
    assert delete_chat_exchange(s, first.id) is True
    assert [m.id for m in list_messages_for_conversation(s, chat.id)] == [
        second.id,
        second.reply_id,
    ]
    assert get_message_by_id(s, second.id).parent_id is None
    assert get_conversation_by_id(s, chat.id).last_message == "ok"
    assert delete_chat_exchange(s, first.id) is False


def test_delete_of_a_reply_id_is_not_an_exchange(localchat_session, chat):
    exch = add_chat_exchange(localchat_session, chat.id, **FULL)
    assert delete_chat_exchange(localchat_session, exch.reply_id) is False
    assert Message.select().count() == 2


def test_chat_exchange_is_exported_as_a_dataclass():
    assert dataclasses.is_dataclass(ChatExchange)
    names = [f.name for f in dataclasses.fields(ChatExchange)]
    assert names[:8] == [
        "id",
        "chat_session_id",
        "user_message",
        "rag_prompt",
        "assistant_message",
        "html_response",
        "context_used",
        "created_at",
    ]

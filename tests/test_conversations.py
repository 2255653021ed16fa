"""Conversations: creation, lookup, owner listings, updates, archive, delete and cascades."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
import textwrap
from pathlib import Path

import pytest

from localchat import Conflict, NotFound, ValidationError
from localchat.models import Conversation, Message, Response, User
from localchat.repository import (
    add_message,
    archive_conversation,
    count_conversations_for_user,
    create_chat_session,
    create_conversation,
    delete_chat_session,
    delete_conversation,
    get_chat_session,
    get_conversation_by_id,
    get_conversation_by_thread_id,
    get_conversation_by_uuid,
    get_conversation_message_count,
    get_or_create_conversation,
    list_all_conversations,
    list_conversations_for_user,
    list_messages_for_conversation,
    record_response,
    update_chat_session,
    update_conversation,
)


@pytest.fixture
def ada(localchat_session):
    return User.create(email="ada@example.org", name="Ada")


@pytest.fixture
def bob(localchat_session):
    return User.create(email="bob@example.org", name="Bob")


def _touch(conv, when):
    """Give a conversation a chosen updated_at (to pin ordering)."""
    Conversation.update(updated_at=when).where(Conversation.id == conv.id).execute()


T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


# -- create ------------------------------------------------------------------------


def test_new_conversation_is_active_anonymous_and_stamped_once(localchat_session):
    conv = create_conversation(localchat_session)
    stored = get_conversation_by_id(localchat_session, conv.id)
    assert (stored.status, stored.user_id, stored.title) == ("active", None, None)
    assert stored.created_at == stored.updated_at
    assert stored.created_at.tzinfo is dt.timezone.utc


@pytest.mark.parametrize("owner", ["id", "row", "uuid", "email"])
def test_owner_can_be_named_by_id_row_uuid_or_email(localchat_session, ada, owner):
    kwargs = {
        "id": {"user_id": ada.id},
        "row": {"user_id": ada},
        "uuid": {"user_id": str(ada.uuid)},
        "email": {"user_email": "ADA@example.org "},
    }[owner]
    conv = create_conversation(localchat_session, title="t", **kwargs)
    assert conv.user_id == ada.id


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": 999},
        {"user_email": "nobody@example.org"},
        {"user_id": "00000000-0000-4000-8000-000000000001"},
    ],
)
def test_creating_for_a_missing_user_is_not_found_and_writes_nothing(localchat_session, kwargs):
    with pytest.raises(NotFound, match="no user"):
        create_conversation(localchat_session, title="t", **kwargs)
    assert Conversation.select().count() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "deleted"}, "status 'deleted' is not one of active, archived"),
        ({"title": "x" * 501}, "title is 501 characters; the limit is 500"),
        ({"title": 42}, "title must be a string"),
        ({"default_model": ["gpt"]}, "default_model must be a string"),
        ({"user_id": 1.5}, "user_id must be an integer id, a uuid or a User"),
        ({"user_id": 1, "user_email": "a@b.c"}, "user_id or user_email, not both"),
        ({"external_id": ""}, "external_id must not be empty"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(localchat_session, kwargs, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        create_conversation(localchat_session, **kwargs)
    assert Conversation.select().count() == 0


def test_external_id_is_unique(localchat_session):
    create_conversation(localchat_session, external_id="thread-1")
    with pytest.raises(Conflict, match="already exists"):
        create_conversation(localchat_session, external_id="thread-1", title="second")
    assert [c.title for c in Conversation.select()] == [None]


def test_last_message_is_kept_as_a_short_preview(localchat_session):
    conv = create_conversation(localchat_session, last_message="é" * 500)
    assert len(conv.last_message) == 200
    assert conv.last_message.endswith("\u2026")
    assert create_conversation(localchat_session, last_message="short").last_message == "short"


# -- get ---------------------------------------------------------------------------


def test_get_by_id_by_uuid_and_by_thread_id(localchat_session):
    conv = create_conversation(localchat_session, external_id="app-thread-7")
    s = localchat_session
    assert get_conversation_by_id(s, conv.id).id == conv.id
    assert get_conversation_by_uuid(s, conv.uuid).id == conv.id
    assert get_conversation_by_uuid(s, str(conv.uuid)).id == conv.id
    assert get_conversation_by_thread_id(s, "app-thread-7").id == conv.id


def test_thread_id_falls_back_to_the_uuid(localchat_session):
    conv = create_conversation(localchat_session)
    assert conv.thread_id == str(conv.uuid)
    assert get_conversation_by_thread_id(localchat_session, conv.thread_id).id == conv.id


@pytest.mark.parametrize("key", [12345, "00000000-0000-4000-8000-000000000001", "not-a-uuid"])
def test_missing_conversation_reads_as_none(localchat_session, key):
    assert get_conversation_by_id(localchat_session, key) is None
    assert get_conversation_by_uuid(localchat_session, key) is None
    assert get_conversation_by_thread_id(localchat_session, str(key)) is None


# -- thread ids: one key rule for every conversation function ----------------------

THREAD_IDS = ["thread-42", "3f2b8a9e-1c4d-4e5f-8a6b-7c8d9e0f1a2b", "1"]


@pytest.mark.parametrize("thread_id", THREAD_IDS)
def test_a_conversation_is_updated_archived_and_deleted_by_its_thread_id(
    localchat_session, thread_id
):
    s = localchat_session
    conv, _ = get_or_create_conversation(s, thread_id, title="Old")
    assert get_conversation_by_id(s, thread_id).id == conv.id
    assert update_conversation(s, thread_id, title="New", last_message="hi").id == conv.id
    assert archive_conversation(s, thread_id).status == "archived"
    assert update_chat_session(s, thread_id, title="Newer").title == "Newer"
    stored = get_conversation_by_thread_id(s, thread_id)
    assert (stored.title, stored.status, stored.last_message) == ("Newer", "archived", "hi")
    assert delete_conversation(s, thread_id) is True
    assert delete_conversation(s, thread_id) is False
    assert get_conversation_by_thread_id(s, thread_id) is None


def test_messages_are_added_and_listed_by_thread_id(localchat_session):
    s = localchat_session
    conv, _ = get_or_create_conversation(s, "thread-7")
    add_message(s, "thread-7", "user", "hello")
    assert [m.content for m in list_messages_for_conversation(s, "thread-7")] == ["hello"]
    assert get_conversation_message_count(s, "thread-7") == 1
    assert list_messages_for_conversation(s, "thread-8") == []


def test_a_string_is_a_thread_id_never_a_row_id(localchat_session):
    """An int names the row; a str names a thread, so "5" never reaches row 5 by accident."""
    s = localchat_session
    plain = create_conversation(s, title="row")
    other = create_conversation(s, title="thread", external_id=str(plain.id))
    assert get_conversation_by_id(s, plain.id).id == plain.id
    assert get_conversation_by_id(s, str(plain.id)).id == other.id
    assert update_conversation(s, str(plain.id), title="renamed").id == other.id
    assert get_conversation_by_id(s, plain.id).title == "row"
    assert delete_conversation(s, str(plain.id)) is True
    # the thread is gone: deleting it again must not fall back to the row with that id
    assert delete_conversation(s, str(plain.id)) is False
    assert update_conversation(s, str(plain.id), title="x") is None
    assert get_conversation_by_id(s, plain.id).title == "row"


def test_a_thread_id_wins_over_another_conversations_uuid(localchat_session):
    s = localchat_session
    first = create_conversation(s, title="first")
    second = create_conversation(s, title="second", external_id=str(first.uuid))
    assert update_conversation(s, str(first.uuid), title="2").id == second.id
    assert update_conversation(s, first.uuid, title="1").id == first.id  # a UUID: the uuid
    assert get_conversation_by_uuid(s, str(first.uuid)).id == first.id


def test_the_uuid_still_names_a_conversation_that_has_a_thread_id(localchat_session):
    s = localchat_session
    conv = create_conversation(s, external_id="thread-1")
    assert update_conversation(s, str(conv.uuid), title="t").id == conv.id
    assert delete_conversation(s, str(conv.uuid)) is True


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "must not be empty"), ("a\0b", "NUL"), ("\ud800", "lone surrogate"),
     ("x" * 256, "the limit is 255")],
)  # fmt: skip
def test_a_thread_id_that_cannot_exist_is_refused_the_same_way_everywhere(
    localchat_session, key, message
):
    s = localchat_session
    create_conversation(s, title="kept", external_id="thread-1")
    for call in (
        lambda: get_conversation_by_thread_id(s, key),
        lambda: get_conversation_by_id(s, key),
        lambda: update_conversation(s, key, title="x"),
        lambda: archive_conversation(s, key),
        lambda: delete_conversation(s, key),
    ):
        with pytest.raises(ValidationError, match=message):
            call()
    assert [c.title for c in list_all_conversations(s)] == ["kept"]


# -- get_or_create -----------------------------------------------------------------


def test_get_or_create_creates_once_then_returns_the_same_conversation(localchat_session, ada):
    s = localchat_session
    conv, created = get_or_create_conversation(
        s, "t-1", title="First", last_message="hi", user_email="ada@example.org"
    )
    again, created_again = get_or_create_conversation(
        s, "t-1", title="Other", user_email="ada@example.org"
    )
    assert (created, created_again) == (True, False)
    assert again.id == conv.id and again.title == "First"
    assert (conv.external_id, conv.user_id, conv.last_message) == ("t-1", ada.id, "hi")


def test_get_or_create_finds_a_conversation_by_its_uuid_thread_id(localchat_session):
    conv = create_conversation(localchat_session)
    found, created = get_or_create_conversation(localchat_session, conv.thread_id)
    assert (found.id, created) == (conv.id, False)


def test_get_or_create_refuses_another_users_thread(localchat_session, ada, bob):
    get_or_create_conversation(localchat_session, "t-1", ada.id)
    with pytest.raises(Conflict, match="belongs to another user"):
        get_or_create_conversation(localchat_session, "t-1", user_email="bob@example.org")


def test_get_or_create_for_an_unknown_email_is_not_found(localchat_session):
    with pytest.raises(NotFound):
        get_or_create_conversation(localchat_session, "t-1", user_email="ghost@example.org")
    assert Conversation.select().count() == 0


# -- listings ----------------------------------------------------------------------


def test_user_listing_is_most_recently_updated_first_ties_by_newest_id(localchat_session, ada):
    s = localchat_session
    a, b, c = (create_conversation(s, ada.id, title=t) for t in "abc")
    _touch(a, T0 + dt.timedelta(hours=1))
    _touch(b, T0)
    _touch(c, T0)
    assert [x.title for x in list_conversations_for_user(s, ada.id)] == ["a", "c", "b"]


def test_a_new_message_moves_its_conversation_to_the_top(localchat_session, ada):
    s = localchat_session
    old, new = create_conversation(s, ada, title="old"), create_conversation(s, ada, title="new")
    _touch(old, T0)
    _touch(new, T0 + dt.timedelta(minutes=1))
    add_message(s, old.id, "user", "back again")
    assert [x.title for x in list_conversations_for_user(s, ada.id)] == ["old", "new"]


def test_user_listing_filters_by_owner_and_status(localchat_session, ada, bob):
    s = localchat_session
    keep = create_conversation(s, ada.id, title="keep")
    gone = create_conversation(s, ada.id, title="gone", status="archived")
    create_conversation(s, bob.id, title="bob's")
    create_conversation(s, title="anonymous")
    assert {c.id for c in list_conversations_for_user(s, ada.id)} == {keep.id, gone.id}
    assert [c.id for c in list_conversations_for_user(s, ada.id, status="active")] == [keep.id]
    assert [
        c.id
        for c in list_conversations_for_user(s, user_email="ada@example.org", status="archived")
    ] == [gone.id]
    assert count_conversations_for_user(s, ada.id) == 2
    assert count_conversations_for_user(s, ada.id, status="archived") == 1
    assert count_conversations_for_user(s, user_email="bob@example.org") == 1


@pytest.mark.parametrize("who", [{"user_id": 999}, {"user_email": "ghost@example.org"}])
def test_unknown_user_has_no_conversations_not_the_anonymous_ones(localchat_session, who):
    create_conversation(localchat_session, title="anonymous")
    assert list_conversations_for_user(localchat_session, **who) == []
    assert count_conversations_for_user(localchat_session, **who) == 0


def test_listing_needs_a_user(localchat_session):
    with pytest.raises(ValidationError, match="user_id or user_email is required"):
        list_conversations_for_user(localchat_session)


def test_list_all_includes_every_owner_and_filters_by_status(localchat_session, ada):
    s = localchat_session
    mine = create_conversation(s, ada.id)
    anon = create_conversation(s, status="archived")
    assert {c.id for c in list_all_conversations(s)} == {mine.id, anon.id}
    assert [c.id for c in list_all_conversations(s, status="archived")] == [anon.id]
    with pytest.raises(ValidationError, match="status"):
        list_all_conversations(s, status="open")


def test_pagination_edges(localchat_session, ada):
    s = localchat_session
    for i in range(5):
        _touch(create_conversation(s, ada.id, title=str(i)), T0 + dt.timedelta(minutes=i))
    titles = [c.title for c in list_conversations_for_user(s, ada.id, limit=2, offset=1)]
    assert titles == ["3", "2"]
    assert [c.title for c in list_all_conversations(s, limit=10, offset=4)] == ["0"]
    assert list_conversations_for_user(s, ada.id, offset=5) == []
    assert len(list_conversations_for_user(s, ada.id, limit=1)) == 1


@pytest.mark.parametrize(
    ("limit", "offset", "message"),
    [
        (0, 0, "limit must be a positive integer or None"),
        (10, -1, "offset must be an integer of 0 or more"),
        ("10", 0, "limit must be a positive integer or None"),
        (10, 1.0, "offset must be an integer of 0 or more"),
    ],
)
def test_bad_pagination_is_refused(localchat_session, ada, limit, offset, message):
    with pytest.raises(ValidationError, match=message):
        list_conversations_for_user(localchat_session, ada.id, limit=limit, offset=offset)
    with pytest.raises(ValidationError, match=message):
        list_all_conversations(localchat_session, limit=limit, offset=offset)


# -- update / archive / delete ----------------------------------------------------


def test_update_changes_given_values_only_and_moves_updated_at(localchat_session):
    s = localchat_session
    conv = create_conversation(s, title="Old", default_model="m1")
    _touch(conv, T0)
    updated = update_conversation(s, conv.id, title="New", last_message="x" * 300)
    assert (updated.title, updated.default_model) == ("New", "m1")
    assert len(updated.last_message) == 200
    assert get_conversation_by_id(s, conv.id).updated_at > T0


def test_update_by_uuid_and_status(localchat_session):
    conv = create_conversation(localchat_session)
    update_conversation(localchat_session, str(conv.uuid), status="archived", default_model="m")
    stored = get_conversation_by_id(localchat_session, conv.id)
    assert (stored.status, stored.default_model) == ("archived", "m")


def test_bad_update_leaves_the_conversation_unchanged(localchat_session):
    conv = create_conversation(localchat_session, title="Same")
    with pytest.raises(ValidationError):
        update_conversation(localchat_session, conv.id, title="Other", status="gone")
    assert get_conversation_by_id(localchat_session, conv.id).title == "Same"


@pytest.mark.parametrize("key", [2**63, -(2**63) - 1, "99999999999999999999", "\u00b2"])
def test_an_id_no_conversation_can_have_is_missing_not_an_error(localchat_session, ada, key):
    s = localchat_session
    create_conversation(s, ada.id, title="t")
    assert get_conversation_by_id(s, key) is None
    assert update_conversation(s, key, title="x") is None
    assert delete_conversation(s, key) is False
    if not isinstance(key, str) or key.isascii():  # "\u00b2" is no id at all for owners
        assert list_conversations_for_user(s, key) == []


@pytest.mark.parametrize("fn", [update_conversation, archive_conversation])
def test_updating_a_missing_conversation_returns_none(localchat_session, fn):
    assert fn(localchat_session, 404) is None


def test_archive_sets_status(localchat_session):
    conv = create_conversation(localchat_session)
    assert archive_conversation(localchat_session, conv.id).status == "archived"


def test_delete_reports_whether_a_conversation_was_deleted(localchat_session):
    conv = create_conversation(localchat_session)
    assert delete_conversation(localchat_session, conv.id) is True
    assert delete_conversation(localchat_session, conv.id) is False
    assert get_conversation_by_id(localchat_session, conv.id) is None


def test_deleting_a_conversation_deletes_its_messages_and_responses(localchat_session):
    s = localchat_session
    conv, other = create_conversation(s), create_conversation(s)
    add_message(s, conv.id, "user", "q")
    record_response(s, add_message(s, conv.id, "assistant", "a").id, "m", 1, 1)
    kept = add_message(s, other.id, "user", "stays")
    delete_conversation(s, conv.uuid)
    assert [m.id for m in Message.select()] == [kept.id]
    assert Response.select().count() == 0


def test_deleting_a_user_deletes_their_conversations_and_messages(localchat_session, ada):
    s = localchat_session
    conv = create_conversation(s, ada.id)
    anon = create_conversation(s)
    add_message(s, conv.id, "user", "q")
    ada.delete_instance()
    assert [c.id for c in Conversation.select()] == [anon.id]
    assert Message.select().count() == 0


# -- seed names and dicts ----------------------------------------------------------


def test_chat_session_names_are_the_conversation_functions(localchat_session, ada):
    s = localchat_session
    chat = create_chat_session(s, ada.id)
    assert get_chat_session(s, chat.id).user_id == ada.id
    assert update_chat_session(s, chat.id, title="New Title").title == "New Title"
    assert delete_chat_session(s, chat.id) is True
    assert create_chat_session is create_conversation
    assert delete_chat_session is delete_conversation


def test_to_dict_is_json_ready_with_thread_id(localchat_session, ada):
    conv = create_conversation(localchat_session, ada.id, title="T", external_id="th-9")
    data = json.loads(json.dumps(conv.to_dict()))
    assert data["thread_id"] == "th-9"
    assert data["uuid"] == str(conv.uuid)
    assert data["user"] == ada.id
    assert dt.datetime.fromisoformat(data["created_at"]).tzinfo is not None
    assert {"title", "status", "default_model", "last_message", "updated_at"} <= set(data)


# -- module documentation ----------------------------------------------------------


@pytest.mark.parametrize("module", ["conversations", "messages", "exchanges", "knowledge"])
def test_module_docstring_usage_example_runs(module):
    doc = importlib.import_module(f"localchat.repository.{module}").__doc__
    block = re.search(r"\n\n((?:    .*\n|\n)+)", doc).group(1)
    exec(compile(textwrap.dedent(block), f"{module} docstring", "exec"), {})


@pytest.mark.parametrize("module", ["conversations", "messages", "exchanges", "knowledge"])
def test_every_public_name_is_in_the_api_reference(module):
    text = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text("utf-8")
    names = importlib.import_module(f"localchat.repository.{module}").__all__
    assert [name for name in names if f"`{name}" not in text and f"`{name}`" not in text] == []

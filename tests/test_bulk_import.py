"""import_messages: many messages in one executemany, with add_message's rules."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from localchat import Conflict, NotFound, ValidationError
from localchat.models import Conversation, Message
from localchat.repository import (
    add_message,
    create_conversation,
    get_thread,
    import_messages,
    list_messages_for_conversation,
)
from localchat.search import search_messages

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 123456)


@pytest.fixture
def conv(localchat_session):
    return create_conversation(localchat_session, title="Imported")


def _rows(conv_id, n, start=T0):
    return [
        {
            "conversation_id": conv_id,
            "role": "user" if i % 2 == 0 else "assistant",
            "content": f"message number {i}",
            "created_at": start + dt.timedelta(seconds=i),
        }
        for i in range(n)
    ]


def test_imported_messages_read_back_as_given_with_utc_timestamps(localchat_session, conv):
    s = localchat_session
    assert import_messages(s, _rows(conv.id, 5)) == 5
    got = list_messages_for_conversation(s, conv.id)
    assert [m.content for m in got] == [f"message number {i}" for i in range(5)]
    assert [m.role for m in got] == ["user", "assistant", "user", "assistant", "user"]
    assert got[0].created_at == T0.replace(tzinfo=dt.timezone.utc)
    assert got[0].created_at == got[0].updated_at
    assert all(isinstance(m.uuid, uuid.UUID) for m in got)


def test_a_linear_history_imports_as_a_chain_under_the_latest_message(localchat_session, conv):
    s = localchat_session
    first = add_message(s, conv.id, "system", "be brief")
    import_messages(s, _rows(conv.id, 4, start=dt.datetime(2099, 1, 1)))
    last = list_messages_for_conversation(s, conv.id, limit=1, latest=True)[0]
    thread = get_thread(s, last.id)
    assert [m.content for m in thread] == ["be brief"] + [f"message number {i}" for i in range(4)]
    assert thread[0].id == first.id


def test_conversation_follows_its_newest_imported_message(localchat_session, conv):
    s = localchat_session
    import_messages(s, _rows(conv.id, 3))
    row = Conversation.get_by_id(conv.id)
    assert row.updated_at == (T0 + dt.timedelta(seconds=2)).replace(tzinfo=dt.timezone.utc)
    assert row.last_message == "message number 2"


def test_importing_older_history_leaves_a_newer_conversation_alone(localchat_session, conv):
    s = localchat_session
    add_message(s, conv.id, "user", "today")
    before = Conversation.get_by_id(conv.id)
    import_messages(s, _rows(conv.id, 2, start=dt.datetime(2001, 1, 1)))
    after = Conversation.get_by_id(conv.id)
    assert (after.updated_at, after.last_message) == (before.updated_at, "today")


def test_long_content_preview_is_cut_like_add_message(localchat_session, conv):
    s = localchat_session
    text = "x" * 500
    import_messages(s, [{"conversation_id": conv.id, "role": "user", "content": text}])
    imported = Conversation.get_by_id(conv.id).last_message
    add_message(s, conv.id, "user", text)
    assert imported == Conversation.get_by_id(conv.id).last_message


def test_aware_timestamps_are_stored_as_utc(localchat_session, conv):
    plus2 = dt.timezone(dt.timedelta(hours=2))
    at = dt.datetime(2024, 5, 1, 14, 0, 0, 5, tzinfo=plus2)
    row = {"conversation_id": conv.id, "role": "user", "content": "hi", "created_at": at}
    import_messages(localchat_session, [row])
    got = list_messages_for_conversation(localchat_session, conv.id)[0]
    assert got.created_at == at and got.created_at.tzinfo == dt.timezone.utc


def test_seed_names_metadata_model_and_uuid_are_kept(localchat_session, conv):
    uid = uuid.uuid4()
    row = {
        "conversation_id": conv.id,
        "sender_type": "assistant",
        "content": "4",
        "role_metadata": {"sources": [1, 2], "ok": True},
        "model": "llama3",
        "uuid": str(uid),
    }
    import_messages(localchat_session, [row])
    got = Message.get(Message.uuid == uid)
    assert (got.role, got.model, got.metadata) == ("assistant", "llama3", row["role_metadata"])
    direct = add_message(localchat_session, conv.id, "assistant", "4", {"sources": [1, 2]})
    raw = Message.select(Message.metadata).where(Message.id.in_([got.id, direct.id])).tuples()
    assert len({type(v) for (v,) in raw}) == 1  # stored the way add_message stores JSON


def test_imported_messages_are_searchable(localchat_session, conv):
    rows = _rows(conv.id, 3)
    rows[1]["content"] = "the zeppelin landed"
    import_messages(localchat_session, rows)
    hits = search_messages(localchat_session, "zeppelin")
    assert [h.message.content for h in hits] == ["the zeppelin landed"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"role": "robot"}, "row 2: role 'robot'"),
        ({"content": None}, "row 2: content must be a string"),
        ({"content": "a\0b"}, "row 2: content must not contain NUL"),
        ({"created_at": "2024-01-01"}, "row 2: created_at must be a datetime"),
        ({"conversation_id": "1"}, "row 2: conversation_id must be an integer"),
        ({"colour": "red"}, "row 2: unknown key(s) colour"),
        ({"uuid": "nope"}, "row 2: uuid 'nope' is not a UUID"),
        ({"metadata": {"x": float("nan")}}, "row 2: metadata"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_written(localchat_session, conv, bad, message):
    rows = _rows(conv.id, 4)
    rows[2].update(bad)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_messages(localchat_session, rows)
    assert list_messages_for_conversation(localchat_session, conv.id) == []


@pytest.mark.parametrize("bad", [("a",), "row", None, 7])
def test_a_row_that_is_not_a_dict_is_named_and_nothing_is_written(localchat_session, conv, bad):
    rows = [*_rows(conv.id, 2), bad]
    with pytest.raises(ValidationError, match="row 2: a row must be a dict"):
        import_messages(localchat_session, rows)
    assert list_messages_for_conversation(localchat_session, conv.id) == []


def _assert_a_taken_uuid_conflicts_and_writes_nothing(s, conv):
    taken = add_message(s, conv.id, "user", "already here")
    rows = _rows(conv.id, 3)
    rows[1]["uuid"] = taken.uuid
    with pytest.raises(Conflict, match="already exists"):
        import_messages(s, rows)
    assert [m.content for m in list_messages_for_conversation(s, conv.id)] == ["already here"]
    again = _rows(conv.id, 2)
    again[1]["uuid"] = again[0]["uuid"] = uuid.uuid4()  # taken within the same import
    with pytest.raises(Conflict):
        import_messages(s, again)
    assert import_messages(s, _rows(conv.id, 1)) == 1  # the session is still usable


def test_a_uuid_already_taken_is_a_conflict_and_nothing_is_written(localchat_session, conv):
    _assert_a_taken_uuid_conflicts_and_writes_nothing(localchat_session, conv)


def test_a_uuid_already_taken_is_a_conflict_on_postgresql(pg_session):
    _assert_a_taken_uuid_conflicts_and_writes_nothing(
        pg_session, create_conversation(pg_session, title="Imported")
    )


def test_a_conversation_id_past_64_bits_is_not_found(localchat_session, conv):
    with pytest.raises(NotFound, match=str(2**63)):
        import_messages(localchat_session, _rows(conv.id, 1) + _rows(2**63, 1))


def test_missing_conversations_are_listed_and_nothing_is_written(localchat_session, conv):
    rows = _rows(conv.id, 2) + _rows(999_999, 1)
    with pytest.raises(NotFound, match="999999"):
        import_messages(localchat_session, rows)
    assert list_messages_for_conversation(localchat_session, conv.id) == []


def test_nothing_to_import_is_zero(localchat_session):
    assert import_messages(localchat_session, []) == 0


def test_many_conversations_import_in_one_call(localchat_session):
    s = localchat_session
    convs = [create_conversation(s, title=f"c{i}") for i in range(3)]
    rows = [r for c in convs for r in _rows(c.id, 1000)]
    assert import_messages(s, rows) == 3000
    for c in convs:
        assert len(list_messages_for_conversation(s, c.id, limit=2000)) == 1000

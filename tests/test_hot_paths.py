"""The fast paths return exactly what the plain peewee paths return, and stay fast."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import peewee
import pytest
from hypothesis import given
from hypothesis import strategies as st

import localchat
from localchat import open_store
from localchat.fastsql import columns, fetch_models, statement
from localchat.models import Conversation, Message, User
from localchat.repository import (
    add_message,
    create_conversation,
    list_conversations_for_user,
    list_messages_for_conversation,
)
from localchat.repository.conversations import _RECENT_SQL


def _same(fast, slow):
    assert [type(m) for m in fast] == [type(m) for m in slow]
    assert [m.__data__ for m in fast] == [m.__data__ for m in slow]
    assert all(not m._dirty for m in fast)


@pytest.fixture
def user(localchat_session):
    return User.create(email="ada@example.org")


@pytest.fixture
def chat(localchat_session, user):
    s = localchat_session
    conv = create_conversation(s, user_id=user.id, title="t")
    for i in range(12):
        add_message(
            s, conv.id, "user" if i % 2 else "assistant", f"m{i}", {"i": i} if i % 3 else None
        )
    return conv


def test_message_pages_equal_the_peewee_query(localchat_session, chat):
    slow = list(Message.select().where(Message.conversation == chat.id).order_by(Message.id))
    _same(list_messages_for_conversation(localchat_session, chat.id), slow)
    _same(list_messages_for_conversation(localchat_session, chat.id, limit=5, offset=3), slow[3:8])


@pytest.mark.parametrize(("limit", "offset"), [(5, 0), (5, 2), (50, 0), (1, 11), (3, 20)])
def test_latest_pages_count_from_the_newest_end_and_stay_oldest_first(
    localchat_session, chat, limit, offset
):
    everything = list_messages_for_conversation(localchat_session, chat.id)
    got = list_messages_for_conversation(
        localchat_session, chat.id, limit=limit, offset=offset, latest=True
    )
    end = len(everything) - offset
    _same(got, everything[max(0, end - limit) : max(0, end)])


def test_latest_with_a_role_filter_takes_the_plain_path(localchat_session, chat):
    got = list_messages_for_conversation(
        localchat_session, chat.id, limit=2, sender_type="user", latest=True
    )
    assert [m.content for m in got] == ["m9", "m11"]


@pytest.mark.parametrize("status", [None, "active", "archived"])
def test_conversation_lists_equal_the_peewee_query(localchat_session, user, status):
    s = localchat_session
    for i in range(6):
        create_conversation(s, user_id=user.id, title=f"c{i}", status=["active", "archived"][i % 2])
    fast = list_conversations_for_user(s, user.id, status=status, limit=4)
    slow = list_conversations_for_user(s, user_email=user.email, status=status, limit=4)
    _same(fast, slow)
    assert len(fast) == (4 if status is None else 3)


def test_a_users_recent_conversations_come_off_an_index_without_sorting(localchat_session):
    db = localchat_session.db
    sql = statement(db, _RECENT_SQL[False, False], conversation=Conversation)
    plan = " ".join(str(row) for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, (1, 20, 0)))
    assert "conversation_user_id_updated_at" in plan and "TEMP B-TREE" not in plan


def test_fetched_models_behave_like_selected_ones(localchat_session, chat):
    db = localchat_session.db
    sql = statement(db, 'SELECT {c} FROM "conversation" WHERE "id" = {p}', c=Conversation)
    [conv] = fetch_models(Conversation, db.execute_sql(sql, (chat.id,)))
    assert conv == chat and conv.user.email == "ada@example.org"
    conv.title = "renamed"
    conv.save()
    assert Conversation.get_by_id(chat.id).title == "renamed"
    assert columns(Conversation).startswith('"id", "uuid"')


def test_added_message_equals_its_row_read_back(localchat_session, chat):
    made = add_message(localchat_session, chat.id, "user", "hello", {"a": [1, 2]}, model="m")
    _same([made], [Message.get_by_id(made.id)])


@given(st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)))
def test_timestamps_read_back_as_peewee_reads_them(value):
    field = Message.created_at
    for text in (str(value), value.isoformat(), value.isoformat(" ", "seconds")):
        slow = peewee.DateTimeField.python_value(field, text)
        assert field.python_value(text) == slow.replace(tzinfo=dt.timezone.utc)
        assert field.python_value(text).tzinfo == dt.timezone.utc


@pytest.mark.parametrize("text", ["2024-01-01T10:00:00+02:00", "2024-01-01 10:00:00Z", "junk"])
def test_other_timestamp_forms_still_go_through_peewee(text):
    field = Message.created_at
    try:
        expected = peewee.DateTimeField.python_value(field, text)
    except ValueError:
        expected = None
    got = field.python_value(text)
    if isinstance(expected, dt.datetime) and expected.tzinfo is None:
        expected = expected.replace(tzinfo=dt.timezone.utc)
    assert got == expected or (expected is None and got == text)


@given(
    st.uuids()
    | st.text(max_size=40)
    | st.text("0123456789abcdefABCDEF-_ +x", min_size=32, max_size=32)
)
def test_uuids_read_back_as_uuid_module_reads_them(value):
    text = value.hex if isinstance(value, uuid.UUID) else value
    try:
        expected: object = uuid.UUID(text)
    except ValueError as exc:
        expected = type(exc)
    try:
        got: object = Message.uuid.python_value(text)
    except ValueError as exc:
        got = type(exc)
    assert got == expected


def test_open_store_with_the_same_absolute_path_is_one_store(tmp_path):
    path = tmp_path / "a.db"
    store = open_store(path)
    assert open_store(str(path)) is store
    localchat.close_all()
    assert open_store(path) is not store


def test_a_store_dropped_from_the_cache_is_not_handed_out_again(tmp_path):
    from localchat import database

    store = open_store(tmp_path / "a.db")
    database.forget_store(store)  # what the pytest plugin does when a test ends
    assert open_store(tmp_path / "a.db") is not store


def test_a_session_returns_its_connection_and_close_releases_it(localchat_store):
    with localchat_store.session() as s:
        add_message(s, create_conversation(s).id, "user", "x")
    db = localchat_store.db
    assert db.is_closed() and len(db._connections) == 1  # idle, ready for the next session
    localchat_store.close()
    assert len(db._connections) == 0


def test_a_pooled_connection_serves_another_thread(localchat_store):
    with localchat_store.session() as s:
        conv_id = create_conversation(s).id
    errors = []

    def worker():
        try:
            with localchat_store.session() as s:
                add_message(s, conv_id, "user", "from a thread")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert errors == []
    with localchat_store.session() as s:
        assert [m.content for m in list_messages_for_conversation(s, conv_id)] == ["from a thread"]


def test_fast_paths_bulk_import_and_export_work_on_postgresql(pg_session):
    import io
    import json

    from localchat.export import export_messages_jsonl
    from localchat.repository import get_thread, import_messages

    s = pg_session
    user = User.create(email="pg@example.org")
    conv = create_conversation(s, user_id=user.id, title="pg")
    first = add_message(s, conv.id, "user", "hi", {"a": [1]})
    at = dt.datetime(2030, 1, 1, 12, 0, 0, 7)
    rows = [
        {"conversation_id": conv.id, "role": "assistant", "content": f"r{i}", "created_at": at}
        for i in range(3)
    ]
    rows[0]["metadata"] = {"k": "v"}
    assert import_messages(s, rows) == 3
    latest = list_messages_for_conversation(s, conv.id, limit=2, latest=True)
    assert [m.content for m in latest] == ["r1", "r2"]
    assert [m.content for m in get_thread(s, latest[-1].id)] == ["hi", "r0", "r1", "r2"]
    _same([first], [Message.get_by_id(first.id)])
    assert Message.get(Message.content == "r0").metadata == {"k": "v"}
    [listed] = list_conversations_for_user(s, user.id)
    assert listed.last_message == "r2" and listed.updated_at == at.replace(tzinfo=dt.timezone.utc)
    out = io.StringIO()
    assert export_messages_jsonl(s, out, batch_size=2) == 4
    assert [json.loads(line)["content"] for line in out.getvalue().splitlines()] == [
        "hi",
        "r0",
        "r1",
        "r2",
    ]


def _nested_calls():
    from localchat import ValidationError
    from localchat.operations import operation

    @operation
    def inner(s, fail):
        User.create(email="inner@example.org")
        if fail:
            raise ValidationError("inner failed")

    @operation
    def outer(s, inner_fails, outer_fails):
        User.create(email="outer@example.org")
        try:
            inner(s, inner_fails)
        except ValidationError:
            pass
        if outer_fails:
            raise ValidationError("outer failed")

    return outer, ValidationError


@pytest.mark.parametrize(
    ("inner_fails", "outer_fails", "kept"),
    [
        (False, False, ["inner@example.org", "outer@example.org"]),
        (True, False, ["outer@example.org"]),
        (False, True, []),
        (True, True, []),
    ],
)
def test_nested_calls_roll_back_exactly_their_own_changes(
    localchat_session, inner_fails, outer_fails, kept
):
    outer, error = _nested_calls()
    if outer_fails:
        with pytest.raises(error):
            outer(localchat_session, inner_fails, outer_fails)
    else:
        outer(localchat_session, inner_fails, outer_fails)
    assert sorted(u.email for u in User.select()) == kept


def test_at_head_is_true_only_when_every_shipped_migration_is_applied(tmp_path):
    import sqlite3

    from localchat import schema

    store = open_store(tmp_path / "a.db")
    assert not schema.at_head(store)  # no file yet
    store.upgrade("0001_initial")
    assert not schema.at_head(store)  # pending migrations
    store.upgrade()
    assert schema.at_head(store)
    conn = sqlite3.connect(tmp_path / "a.db")
    with conn:
        conn.execute("INSERT INTO schema_migration (name, applied) VALUES ('9999_x', '2030-01-01')")
    conn.close()
    assert not schema.at_head(store)  # a newer localchat's migration: upgrade() refuses


def test_opening_an_up_to_date_store_runs_no_migration_machinery(tmp_path, monkeypatch):
    from localchat import schema

    open_store(tmp_path / "a.db").upgrade()
    localchat.close_all()

    def refuse(*args, **kwargs):
        raise AssertionError("the Runner was used")

    monkeypatch.setattr(schema, "_runner", refuse)
    with localchat.get_session(tmp_path / "a.db") as s:
        assert list_conversations_for_user(s, 1) == []

"""Stores and sessions: pragmas, transactions, isolation, threads, permissions, cascades."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from localchat import NoSession, StoreError, get_session, init_db, local_session, open_store
from localchat.models import (
    Conversation,
    LLMModel,
    LLMService,
    Message,
    Response,
    User,
    WebSession,
)


class Boom(Exception):
    pass


def test_sqlite_pragmas_are_in_effect_in_every_session(db_path):
    with local_session(db_path) as s:
        assert s.db.pragma("journal_mode") == "wal"
        assert s.db.pragma("foreign_keys") == 1
        assert s.db.pragma("synchronous") == 1  # NORMAL
        assert s.db.pragma("busy_timeout") >= 5000


@pytest.mark.parametrize("helper", ["get_session", "local_session"])
def test_exception_inside_a_session_rolls_everything_back(db_path, helper):
    open_session = get_session if helper == "get_session" else local_session
    with pytest.raises(Boom):
        with open_session(db_path) as s:
            User.create(email="ada@example.org")
            assert User.select().count() == 1
            raise Boom
    with open_session(db_path) as s:
        assert User.select().count() == 0
        assert s.db.in_transaction()


def test_session_commits_on_success_and_releases_the_connection(db_path):
    with local_session(db_path) as s:
        User.create(email="ada@example.org")
        db = s.db
    assert db.is_closed()
    with local_session(db_path):
        assert User.select().count() == 1


def test_savepoint_rolls_back_alone(db_path):
    with local_session(db_path) as s:
        User.create(email="kept@example.org")
        with pytest.raises(Boom):
            with s.savepoint():
                User.create(email="lost@example.org")
                raise Boom
        assert [u.email for u in User.select()] == ["kept@example.org"]


def test_query_outside_a_session_raises_a_clear_error():
    with pytest.raises(NoSession, match="get_session"):
        User.select().count()


def test_two_stores_used_one_after_the_other_do_not_mix(tmp_path):
    with local_session(tmp_path / "a.db"):
        User.create(email="a@example.org")
    with local_session(tmp_path / "b.db"):
        User.create(email="b@example.org")
    with local_session(tmp_path / "a.db"):
        assert [u.email for u in User.select()] == ["a@example.org"]
    with local_session(tmp_path / "b.db"):
        assert [u.email for u in User.select()] == ["b@example.org"]


def test_two_stores_nested_in_one_thread_do_not_mix(tmp_path):
    from localchat.operations import operation

    @operation
    def emails(s):
        return sorted(u.email for u in User.select())

    with local_session(tmp_path / "a.db") as a:
        User.create(email="a@example.org")
        with local_session(tmp_path / "b.db") as b:
            User.create(email="b@example.org")
            # the outer session, used inside the inner block, still sees its own store
            assert emails(a) == ["a@example.org"]
            assert emails(b) == ["b@example.org"]
        assert emails(a) == ["a@example.org"]


def test_temporary_local_session_is_fresh_and_removed_afterwards():
    with local_session() as s:
        User.create(email="ada@example.org")
        path = s.store.path
        assert path.exists()
    assert not path.exists() and not path.parent.exists()
    with local_session():
        assert User.select().count() == 0


def test_eight_threads_write_to_one_store_without_database_is_locked(db_path):
    init_db(db_path)
    errors: list[BaseException] = []
    per_thread = 25

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                with get_session(db_path):
                    count = User.select().count()  # read, then write: needs IMMEDIATE
                    User.create(email=f"t{n}-{i}@example.org", name=str(count))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with get_session(db_path):
        assert User.select().count() == 8 * per_thread


def test_threads_on_different_stores_see_only_their_own(tmp_path):
    paths = [tmp_path / f"s{i}.db" for i in range(4)]
    for p in paths:
        init_db(p)
    barrier = threading.Barrier(len(paths))
    seen: dict[int, list[str]] = {}

    def work(i: int) -> None:
        with get_session(paths[i]):
            User.create(email=f"{i}@example.org")
            barrier.wait()
            seen[i] = [u.email for u in User.select()]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {i: [f"{i}@example.org"] for i in range(len(paths))}


def test_database_file_is_private_and_its_new_folder_too(tmp_path):
    path = tmp_path / "new" / "deeper" / "chat.db"
    init_db(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o700


def test_opening_a_store_creates_nothing_until_used(tmp_path):
    store = open_store(tmp_path / "later" / "chat.db")
    assert not store.exists()
    assert store.table_counts() == {}
    assert not (tmp_path / "later").exists()


def _tree():
    user = User.create(email="ada@example.org")
    conv = Conversation.create(user=user, title="t")
    question = Message.create(conversation=conv, role="user", content="q")
    answer = Message.create(conversation=conv, role="assistant", content="a", parent=question)
    Response.create(message=answer, model_used="m", tokens_total=3)
    WebSession.create(user=user, token_hash="0" * 64)
    return user, conv, question, answer


def test_deleting_a_user_cascades_to_everything_they_own(localchat_session):
    user, *_ = _tree()
    user.delete_instance()
    for model in (Conversation, Message, Response, WebSession):
        assert model.select().count() == 0, model


def test_deleting_a_conversation_cascades_to_messages_and_responses(localchat_session):
    user, conv, *_ = _tree()
    conv.delete_instance()
    assert (Message.select().count(), Response.select().count()) == (0, 0)
    assert User.select().count() == 1


def test_deleting_a_parent_message_keeps_its_replies(localchat_session):
    _, _, question, answer = _tree()
    question.delete_instance()
    assert Message.get_by_id(answer.id).parent_id is None


def test_deleting_a_service_cascades_to_its_models(localchat_session):
    svc = LLMService.create(name="local", provider="ollama")
    LLMModel.create(service=svc, name="llama3")
    svc.delete_instance()
    assert LLMModel.select().count() == 0


def test_timestamps_are_aware_utc_and_naive_input_is_taken_as_utc(localchat_session):
    import datetime as dt

    user = User.create(email="ada@example.org", created_at=dt.datetime(2024, 1, 2, 3, 4, 5))
    back = User.get_by_id(user.id)
    assert back.created_at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    user.created_at = dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=plus_two)
    user.save()
    assert User.get_by_id(user.id).created_at == back.created_at


def test_updated_at_moves_on_every_save(localchat_session):
    user = User.create(email="ada@example.org")
    before = user.updated_at
    user.name = "Ada"
    user.save()
    assert User.get_by_id(user.id).updated_at > before


def test_default_store_is_created_in_the_platform_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    applied = init_db()
    assert applied and applied[0] == "0001_initial"
    assert Path(tmp_path / "xdg" / "localchat" / "localchat.db").is_file()


def test_every_error_class_is_importable_from_the_package():
    import localchat
    import localchat.errors

    for name in localchat.errors.__all__:
        assert getattr(localchat, name) is getattr(localchat.errors, name)
        assert name in localchat.__all__


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_forked_child_opens_its_own_connection(db_path):
    store = open_store(db_path)
    with store.session() as s:
        User.create(email="parent@example.org")
        parent_conn = s.db.connection()  # held, so its address cannot be reused
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        try:
            with store.session() as s:
                reused = s.db.connection() is parent_conn
                User.create(email="child@example.org")
            os.write(write, b"reused" if reused else b"own")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"own"
    with store.session():
        assert sorted(u.email for u in User.select()) == [
            "child@example.org",
            "parent@example.org",
        ]


@pytest.mark.parametrize("decorator", ["read_operation", "own_atomicity_operation"])
def test_a_failed_read_leaves_a_postgresql_session_usable(pg_session, decorator):
    import peewee

    from localchat import operations as _base

    @getattr(_base, decorator)
    def broken_read(s):
        return s.db.execute_sql("SELECT 1 / 0").fetchone()

    with pytest.raises(StoreError) as info:  # the driver's error, as a localchat error
        broken_read(pg_session)
    assert isinstance(info.value.__cause__, peewee.DataError)
    assert User.select().count() == 0  # the transaction goes on


def test_db_echo_prints_sql_without_any_logging_set_up(tmp_path):
    import subprocess
    import sys

    code = (
        "from localchat import get_session\n"
        "from localchat.repository import create_user\n"
        f"with get_session({str(tmp_path / 'e.db')!r}) as s:\n"
        "    create_user(s, email='ada@example.org')\n"
    )
    env = {**os.environ, "DB_ECHO": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert 'INSERT INTO "user"' in proc.stderr
    quiet = subprocess.run(
        [sys.executable, "-c", code.replace("e.db", "q.db")],
        env={**env, "DB_ECHO": ""},
        capture_output=True,
        text=True,
    )
    assert quiet.returncode == 0 and "INSERT" not in quiet.stderr


def test_a_json_field_bound_again_outside_a_session_still_converts(db_path):
    from localchat.models import Conversation

    with local_session(db_path) as s:
        Conversation.create(title="before", metadata={"a": 1})
    field = Conversation._meta.fields["metadata"]
    Conversation._meta.remove_field("metadata")
    Conversation._meta.add_field("metadata", field)  # peewee clears its converters here
    with local_session(db_path) as s:
        conv = Conversation.create(title="after", metadata={"b": 2**70})
        assert Conversation.get_by_id(conv.id).metadata == {"b": 2**70}
        stored = s.db.execute_sql("SELECT metadata FROM conversation WHERE id = ?", (conv.id,))
        assert stored.fetchone()[0].replace(" ", "") == '{"b":1180591620717411303424}'

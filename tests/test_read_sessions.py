"""Read sessions never wait for a writer, never block one, and refuse to write."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from localchat import (
    ReadOnlySession,
    SessionClosed,
    StoreBusy,
    get_session,
    init_db,
    open_store,
)
from localchat.models import User
from localchat.repository import create_user, get_user, list_users

JOIN = 20  # seconds: a thread still alive after this is stuck, not slow


def _digest(path: Path) -> str:
    """The file's hash. Only with the store closed: a stray close() of the file drops
    this process's SQLite locks on it."""
    open_store(path).close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(db_path):
    init_db(db_path)
    with get_session(db_path) as s:
        create_user(s, email="ada@example.org")
    return open_store(db_path)


def test_a_read_session_reads_while_another_thread_holds_the_write_lock(store):
    writing, done = threading.Event(), threading.Event()

    def writer():
        with store.session() as s:
            create_user(s, email="uncommitted@example.org")
            writing.set()
            done.wait(JOIN)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(JOIN)
        with store.read_session() as s:  # would wait for the writer under BEGIN IMMEDIATE
            emails = [u.email for u in list_users(s)]
        assert emails == ["ada@example.org"]  # the snapshot: nothing uncommitted
    finally:
        done.set()
        thread.join(JOIN)
    assert not thread.is_alive()


def test_a_read_session_reads_while_another_process_holds_the_write_lock(store):
    conn = sqlite3.connect(str(store.path), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO user (uuid, email, created_at, updated_at, is_active) "
        "VALUES (lower(hex(randomblob(16))), 'x@example.org', '', '', 1)"
    )
    try:
        with get_session(store.path, readonly=True) as s:
            assert [u.email for u in list_users(s)] == ["ada@example.org"]
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_a_writer_commits_while_a_read_session_is_open(store):
    with store.read_session() as r:
        before = [u.email for u in list_users(r)]
        result: list[object] = []

        def writer():
            try:
                with store.session() as s:
                    create_user(s, email="bob@example.org")
                result.append("committed")
            except Exception as exc:  # pragma: no cover - reported below
                result.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(JOIN)
        assert result == ["committed"]
        assert [u.email for u in list_users(r)] == before  # still its own snapshot
    with store.read_session() as r:
        assert len(list_users(r)) == 2


def test_a_write_in_a_read_session_is_a_clear_error_and_changes_nothing(store):
    before = _digest(store.path)
    with pytest.raises(ReadOnlySession, match="read session"):
        with store.read_session() as s:
            create_user(s, email="no@example.org")
    with pytest.raises(ReadOnlySession):
        with store.read_session() as s:
            User.create(email="raw@example.org")  # the caller's own peewee query too
    with store.read_session() as s:
        assert [u.email for u in list_users(s)] == ["ada@example.org"]
    assert _digest(store.path) == before


def test_a_read_session_inside_a_write_session_sees_its_rows_and_cannot_write(store):
    with store.session() as w:
        create_user(w, email="new@example.org")
        with store.read_session() as r:
            assert len(list_users(r)) == 2
            with pytest.raises(ReadOnlySession):
                create_user(r, email="no@example.org")
        create_user(w, email="after@example.org")  # the write session writes again
    with store.read_session() as r:
        assert sorted(u.email for u in list_users(r)) == [
            "ada@example.org", "after@example.org", "new@example.org"]  # fmt: skip


def test_a_read_session_never_creates_or_migrates_a_store(tmp_path):
    missing = tmp_path / "none.db"
    with pytest.raises(Exception, match="no store"):
        with open_store(missing).read_session():
            pass
    assert not missing.exists()
    old = tmp_path / "old.db"
    open_store(old).upgrade("0001_initial")
    before = _digest(old)
    with pytest.raises(Exception, match="needs migrations"):
        with open_store(old).read_session():
            pass
    assert _digest(old) == before


def test_a_writer_that_cannot_get_the_lock_raises_store_busy(store):
    conn = sqlite3.connect(str(store.path), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    old = store.db.timeout
    store.close()
    store.db.timeout = 0.2
    try:
        with pytest.raises(StoreBusy, match=str(store.path)):
            with store.session() as s:
                create_user(s, email="late@example.org")
    finally:
        conn.execute("ROLLBACK")
        conn.close()
        store.close()
        store.db.timeout = old


def test_a_session_used_after_its_block_or_from_another_thread_is_a_clear_error(store):
    with store.session() as s:
        pass
    with pytest.raises(SessionClosed, match="has ended"):
        get_user(s, 1)
    errors: list[BaseException] = []
    with store.session() as s:

        def other():
            try:
                get_user(s, 1)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(JOIN)
    assert len(errors) == 1 and isinstance(errors[0], SessionClosed)
    assert "another thread" in str(errors[0])


def _open_new_store(path: str, start: multiprocessing.synchronize.Event, out) -> None:
    start.wait(30)
    try:
        with get_session(path) as s:
            create_user(s, email=f"{multiprocessing.current_process().name}@example.org")
        out.put("ok")
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    ctx = multiprocessing.get_context("fork")
    for round_ in range(6):
        path = str(tmp_path / f"new{round_}.db")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_open_new_store, args=(path, start, out)) for _ in range(6)]
        for p in procs:
            p.start()
        start.set()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
        assert results == ["ok"] * len(procs)
        with get_session(path, readonly=True) as s:
            assert len(list_users(s)) == len(procs)


def test_a_postgresql_read_session_refuses_writes(pg_session):
    store, errors = pg_session.store, []

    def reader():  # another thread: the fixture's own transaction is not joined
        with store.read_session() as s:
            try:
                create_user(s, email="no@example.org")
            except ReadOnlySession as exc:
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    thread.join(JOIN)
    assert len(errors) == 1 and "read session" in str(errors[0])

"""Trips to aiosqlite's thread: statements that return nothing ride with the next one.

A trip costs ~25 us; ``BEGIN DEFERRED``, ``SAVEPOINT`` and ``RELEASE`` (inside
a transaction) wait for the next statement's trip, and never change where a
write session's ``BEGIN IMMEDIATE`` fails.
"""

from __future__ import annotations

import asyncio

import peewee
import pytest

pytest.importorskip("aiosqlite", reason="the async extra: pip install 'localchat[async]'")
import aiosqlite  # noqa: E402

import localchat.storefile  # noqa: E402
from localchat import StoreBusy  # noqa: E402
from localchat.aio import (  # noqa: E402
    aio_session,
    create_user,
    list_users,
    open_async_store,
)
from localchat.models import User  # noqa: E402


@pytest.fixture
def trips(monkeypatch):
    """The functions sent to aiosqlite's threads, counted (a list of one int)."""
    sent = [0]
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        sent[0] += 1
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return sent


def _run(coro_fn, store):
    async def main():
        async with aio_session(store) as s:  # pools open and the store checked: not counted
            await create_user(s, email="first@example.org")
        async with aio_session(store, readonly=True) as s:
            await list_users(s)
        return await coro_fn()

    return asyncio.run(main())


def test_a_read_session_begins_in_its_first_statements_trip(localchat_store, trips):
    async def read():
        trips[0] = 0
        async with aio_session(localchat_store, readonly=True) as s:
            users = await list_users(s)  # BEGIN DEFERRED + SELECT: one trip
            after_select = trips[0]
        return [u.email for u in users], after_select, trips[0]  # COMMIT: a second

    assert _run(read, localchat_store) == (["first@example.org"], 1, 2)


def test_a_read_session_that_reads_nothing_makes_no_trip(localchat_store, trips):
    async def read():
        trips[0] = 0
        async with aio_session(localchat_store, readonly=True):
            pass
        return trips[0]

    assert _run(read, localchat_store) == 0


def test_a_write_session_begins_in_a_trip_of_its_own(localchat_store, trips):
    async def write():
        trips[0] = 0
        async with aio_session(localchat_store) as s:
            opened = trips[0]
            await s.run(lambda s: User.update(name="x").execute())
            return opened

    assert _run(write, localchat_store) == 1  # BEGIN IMMEDIATE ran when the session opened


def test_a_busy_store_fails_when_the_write_session_opens_before_its_block(
    localchat_store, monkeypatch
):
    monkeypatch.setattr(localchat.storefile, "BUSY_TIMEOUT_SECONDS", 0.05)
    entered = []

    async def main():
        astore = open_async_store(localchat_store)
        astore.db._timeout = 0.05  # a short busy timeout for this test's connections
        with localchat_store.session():  # another writer (this thread, sync) holds the lock
            localchat_store.db.execute_sql("UPDATE user SET name = name")
            async with aio_session(astore):
                entered.append(True)

    with pytest.raises(StoreBusy, match="busy"):
        asyncio.run(main())
    assert entered == []


def test_a_savepoint_rides_with_the_next_statement_and_rolls_back_alone(localchat_store, trips):
    def nested(s):
        with s.db.atomic():  # SAVEPOINT, waiting for the INSERT's trip
            User.create(email="kept@example.org")
        try:
            with s.db.atomic():
                User.create(email="undone@example.org")
                User.create(email="kept@example.org")  # unique: fails, back to the savepoint
        except peewee.IntegrityError:
            pass

    async def write():
        async with aio_session(localchat_store) as s:
            trips[0] = 0
            await s.run(nested)
            in_block = trips[0]
        async with aio_session(localchat_store, readonly=True) as s:
            return sorted(u.email for u in await list_users(s)), in_block

    emails, in_block = _run(write, localchat_store)
    assert emails == ["first@example.org", "kept@example.org"]
    # SAVEPOINT+INSERT, RELEASE+SAVEPOINT+INSERT, INSERT (fails), ROLLBACK TO; the last
    # RELEASE waits for the COMMIT's trip
    assert in_block == 4


def test_a_failing_statement_after_a_waiting_begin_leaves_the_session_usable_after(
    localchat_store,
):
    async def read():
        async with aio_session(localchat_store, readonly=True) as s:
            with pytest.raises(peewee.OperationalError):
                await s.run(lambda s: s.db.execute_sql("SELECT * FROM no_such_table"))
        async with aio_session(localchat_store, readonly=True) as s:
            return [u.email for u in await list_users(s)]

    assert _run(read, localchat_store) == ["first@example.org"]


def test_iterating_a_query_runs_the_waiting_begin_first(localchat_store):
    async def read():
        astore = open_async_store(localchat_store)
        async with aio_session(astore, readonly=True):
            conn = astore.read_db._state.conn
            assert [sql.split()[0] for sql in conn.pending] == ["BEGIN"]
            emails = [u.email async for u in astore.read_db.iterate(User.select())]
            return emails, conn.pending, conn.conn.in_transaction

    assert _run(read, localchat_store) == (["first@example.org"], [], True)

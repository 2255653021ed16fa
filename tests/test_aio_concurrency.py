"""Many tasks at once: 50 concurrent writers on SQLite and PostgreSQL, and a free event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import localchat
from localchat.aio import (
    aio_session,
    authenticate,
    count_generations_per_user,
    create_document_with_file,
    create_user,
    list_users,
    log_generation,
    set_password,
)
from localchat.models import AuditLog

WRITERS = 50


async def _write(where, i, **kw):
    async with aio_session(where, **kw) as s:
        await log_generation(
            s, user_id=f"user-{i}", document_type="note", input_data={"i": i},
            generated_text={"text": "x" * 200}, tokens_used=i,
        )  # fmt: skip
        await create_user(s, email=f"writer{i}@example.org")


async def _fifty_writers(where, **kw):
    results = await asyncio.gather(
        *(_write(where, i, **kw) for i in range(WRITERS)), return_exceptions=True
    )
    async with aio_session(where, readonly=True, **kw) as s:
        per_user = await count_generations_per_user(s)
        users = await list_users(s, limit=None)
    return [r for r in results if r is not None], per_user, users


def test_fifty_concurrent_writers_on_one_sqlite_store_all_commit(localchat_store):
    errors, per_user, users = asyncio.run(_fifty_writers(localchat_store))
    assert errors == []  # not one "database is locked" (StoreBusy) or anything else
    assert per_user == {f"user-{i}": 1 for i in range(WRITERS)}
    assert len(users) == WRITERS


def test_fifty_concurrent_writers_on_postgresql_all_commit(pg_url):
    localchat.reset_db(url=pg_url)
    errors, per_user, users = asyncio.run(_fifty_writers(None, url=pg_url))
    assert errors == []
    assert per_user == {f"user-{i}": 1 for i in range(WRITERS)}
    assert len(users) == WRITERS


def test_an_async_session_on_postgresql_commits_and_rolls_back(pg_url):
    localchat.reset_db(url=pg_url)

    async def main():
        async with aio_session(url=pg_url) as s:
            await create_user(s, email="ada@example.org")
        with pytest.raises(localchat.Conflict):
            async with aio_session(url=pg_url) as s:
                await create_user(s, email="bob@example.org")
                await create_user(s, email="ada@example.org")  # taken: the session rolls back
        with pytest.raises(localchat.ReadOnlySession):
            async with aio_session(url=pg_url, readonly=True) as s:
                await create_user(s, email="cy@example.org")
        async with aio_session(url=pg_url, readonly=True) as s:
            return [u.email for u in await list_users(s)]

    assert asyncio.run(main()) == ["ada@example.org"]


def test_the_event_loop_keeps_running_while_fifty_tasks_write(localchat_store):
    """A 5 ms ticker runs beside 50 writing tasks; its longest gap stays small.

    Not a timing benchmark: a "never blocked" check. The statements run in aiosqlite's
    threads and the writers queue on an asyncio lock, so the loop is only busy with
    Python work between statements (a few ms at most), never for a whole transaction
    or SQLite's busy wait (the next test makes a writer wait 300 ms for the lock). The
    250 ms bound is generous so a slow machine cannot fail it; numbers are in
    benchmarks/bench_async.py.
    """

    async def main():
        gaps, stop = [], asyncio.Event()

        async def ticker():
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async with aio_session(localchat_store):  # pools and migration check: before timing
            pass
        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        errors, _, _ = await _fifty_writers(localchat_store)
        stop.set()
        await tick
        return errors, max(gaps), len(gaps)

    errors, longest, ticks = asyncio.run(main())
    assert errors == []
    assert ticks > 3
    assert longest < 0.25, f"the loop stalled for {longest * 1000:.0f} ms"


def test_a_writer_of_another_thread_holding_the_lock_does_not_stall_the_loop(localchat_store):
    """While a sync session in a thread holds the write lock, an async writer waits for it in
    aiosqlite's thread (SQLite's busy handler), and the loop keeps ticking meanwhile."""

    held, release = threading.Event(), threading.Event()

    def hold():
        with localchat_store.session():
            AuditLog.select().count()
            localchat_store.db.execute_sql("UPDATE user SET name = name")
            held.set()
            release.wait(10)

    async def main():
        async with aio_session(localchat_store):
            pass
        thread = threading.Thread(target=hold)
        thread.start()
        held.wait(10)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.005)
                ticks += 1

        done = asyncio.Event()
        tick = asyncio.create_task(ticker())
        writer = asyncio.create_task(_write(localchat_store, 1))
        await asyncio.sleep(0.3)  # the writer waits on SQLite's lock; the loop runs on
        running_while_blocked = ticks
        release.set()
        await writer
        done.set()
        await tick
        await asyncio.to_thread(thread.join)
        return running_while_blocked

    assert asyncio.run(main()) > 5


def test_hashing_a_password_in_an_async_session_leaves_the_loop_running(localchat_store):
    """scrypt takes a quarter of a second: in an async session it runs in a worker thread."""

    async def main():
        async with aio_session(localchat_store) as s:
            user = await create_user(s, email="ada@example.org")
        ticks, done = 0, asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.005)
                ticks += 1

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        before = ticks
        async with aio_session(localchat_store) as s:
            await set_password(s, user.id, "correct horse")
            ok = await authenticate(s, "ada@example.org", "correct horse")
        during = ticks - before
        done.set()
        await tick
        return ok, during

    ok, during = asyncio.run(main())
    assert ok is not None
    assert during >= 10  # two KDF runs: ~0.5 s; a blocked loop would not tick at all


def test_copying_a_document_in_an_async_session_runs_off_the_loop_thread(
    localchat_store, tmp_path, monkeypatch
):
    from localchat.files import disk

    copied_in = []
    copy = disk._copy_into

    def recording(*args, **kwargs):
        copied_in.append(threading.get_ident())
        return copy(*args, **kwargs)

    monkeypatch.setattr(disk, "_copy_into", recording)
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * 100_000)

    async def main():
        async with aio_session(localchat_store) as s:
            doc = await create_document_with_file(s, src_path=src)
        return threading.get_ident(), doc.size

    loop_thread, size = asyncio.run(main())
    assert size == 100_000
    assert copied_in and loop_thread not in copied_in

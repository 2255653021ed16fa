"""asyncio sessions: one transaction each, per task, on the sync sessions' own steps.

Each test runs its coroutine with ``asyncio.run`` (a fresh event loop, whose
end also closes the store's async pools).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys

import pytest

from localchat import ReadOnlySession, SessionClosed, StoreBusy, open_store
from localchat.aio import (
    AsyncSession,
    aio_session,
    close_all,
    create_conversation,
    create_user,
    get_async_db,
    get_async_db_session,
    get_user_by_email,
    list_messages_for_conversation,
    list_users,
    open_async_store,
    stream_reply,
)
from localchat.models import User


def _emails(store):
    with store.read_session():
        return sorted(u.email for u in User.select())


def _idle(astore):
    """Connections in the async write pool not held by any task."""
    return astore.db._pool._queue.qsize()


class Boom(Exception):
    pass


# -- one transaction ------------------------------------------------------------------
def test_a_session_commits_when_its_block_ends(localchat_store):
    async def main():
        async with aio_session(localchat_store) as s:
            await create_user(s, email="ada@example.org")
        async with aio_session(localchat_store, readonly=True) as s:
            return [u.email for u in await list_users(s)]

    assert asyncio.run(main()) == ["ada@example.org"]
    assert _emails(localchat_store) == ["ada@example.org"]


def test_an_exception_inside_rolls_everything_back_and_goes_on(localchat_store):
    async def main():
        async with aio_session(localchat_store) as s:
            await create_user(s, email="ada@example.org")
            await s.run(lambda s: User.create(email="bob@example.org"))
            raise Boom

    with pytest.raises(Boom):
        asyncio.run(main())
    assert _emails(localchat_store) == []


def test_rollback_hooks_run_when_an_async_session_rolls_back(localchat_store):
    ran = []

    async def main():
        async with aio_session(localchat_store) as s:
            s.after_rollback(lambda: ran.append("rolled back"))
            s.after_commit(lambda: ran.append("committed"))
            raise Boom

    with pytest.raises(Boom):
        asyncio.run(main())
    assert ran == ["rolled back"]


def test_a_cancelled_task_rolls_back_and_returns_its_connection(localchat_store):
    async def main():
        astore = open_async_store(localchat_store)
        async with aio_session(astore):  # opens the pool
            pass
        idle = _idle(astore)
        inside = asyncio.Event()
        ran = []

        async def request():
            async with aio_session(astore) as s:
                await create_user(s, email="ada@example.org")
                s.after_rollback(lambda: ran.append("rolled back"))
                inside.set()
                await asyncio.Event().wait()  # the client goes away meanwhile

        task = asyncio.create_task(request())
        await inside.wait()
        assert _idle(astore) == idle - 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _idle(astore) == idle

        async def next_writer():
            async with aio_session(astore) as s:
                await create_user(s, email="bob@example.org")

        await asyncio.wait_for(next_writer(), 30)  # the write lock is free: no hang
        return ran

    assert asyncio.run(main()) == ["rolled back"]
    assert _emails(localchat_store) == ["bob@example.org"]


def test_nested_sessions_of_one_task_share_its_transaction(localchat_store):
    async def main():
        async with aio_session(localchat_store) as outer:
            await create_user(outer, email="ada@example.org")
            async with aio_session(localchat_store) as inner:  # no wait for its own lock
                await create_user(inner, email="bob@example.org")
            async with aio_session(localchat_store, readonly=True) as reader:
                seen = sorted(u.email for u in await list_users(reader))
            raise Boom(seen)

    with pytest.raises(Boom) as caught:
        asyncio.run(main())
    assert caught.value.args == (["ada@example.org", "bob@example.org"],)
    assert _emails(localchat_store) == []


def test_a_write_in_an_async_read_session_raises_read_only_session(localchat_store):
    async def main():
        async with aio_session(localchat_store, readonly=True) as s:
            assert s.readonly
            await create_user(s, email="ada@example.org")

    with pytest.raises(ReadOnlySession, match="read session"):
        asyncio.run(main())
    assert _emails(localchat_store) == []


def test_a_read_session_never_waits_for_an_open_write_session(localchat_store):
    async def main():
        written, done = asyncio.Event(), asyncio.Event()

        async def writer():
            async with aio_session(localchat_store) as s:
                await create_user(s, email="ada@example.org")
                written.set()
                await done.wait()

        task = asyncio.create_task(writer())
        await written.wait()

        async def reader():
            async with aio_session(localchat_store, readonly=True) as s:
                return await list_users(s)  # a snapshot without the open write

        seen = await asyncio.wait_for(reader(), 30)
        done.set()
        await task
        return seen

    assert asyncio.run(main()) == []
    assert _emails(localchat_store) == ["ada@example.org"]


# -- sessions belong to their task ------------------------------------------------------
def test_a_session_refuses_another_task_and_use_after_its_block(localchat_store):
    async def main():
        async with aio_session(localchat_store) as s:
            other = asyncio.create_task(get_user_by_email(s, "ada@example.org"))
            with pytest.raises(SessionClosed, match="belongs to another task"):
                await other
        with pytest.raises(SessionClosed, match="has ended"):
            await list_users(s)
        with pytest.raises(SessionClosed, match="has ended"):
            await s.run(lambda s: None)

    asyncio.run(main())


def test_tasks_on_two_stores_at_once_never_see_each_others_rows(tmp_path):
    one, two = open_store(tmp_path / "one.db"), open_store(tmp_path / "two.db")

    async def fill(store, prefix):
        async with aio_session(store) as s:
            for i in range(20):  # each call waits for the database: the tasks interleave
                await create_user(s, email=f"{prefix}{i}@example.org")
                await s.run(lambda s, i=i: User.create(email=f"{prefix}-direct{i}@example.org"))
                await asyncio.sleep(0)
            return await s.run(lambda s: sorted({u.email[:3] for u in User.select()}))

    async def main():
        return await asyncio.gather(fill(one, "one"), fill(two, "two"))

    assert asyncio.run(main()) == [["one"], ["two"]]
    assert len(_emails(one)) == len(_emails(two)) == 40


def test_rollback_hooks_of_one_task_survive_another_tasks_commit(localchat_store):
    ran = []

    async def main():
        registered, committed = asyncio.Event(), asyncio.Event()

        async def failing():
            async with aio_session(localchat_store) as s:
                s.after_rollback(lambda: ran.append("a"))
                registered.set()
                await committed.wait()
                raise Boom

        async def reading():
            await registered.wait()
            async with aio_session(localchat_store, readonly=True) as s:
                s.after_rollback(lambda: ran.append("b"))
            committed.set()

        await asyncio.gather(failing(), reading(), return_exceptions=True)

    asyncio.run(main())
    assert ran == ["a"]


def test_a_store_serves_one_event_loop_after_another(localchat_store):
    async def add(email):
        async with aio_session(localchat_store) as s:
            await create_user(s, email=email)

    asyncio.run(add("ada@example.org"))
    asyncio.run(add("bob@example.org"))
    assert _emails(localchat_store) == ["ada@example.org", "bob@example.org"]


def test_a_sync_session_in_a_worker_thread_runs_beside_async_ones(localchat_store):
    def sync_add():
        with localchat_store.session():
            User.create(email="sync@example.org")

    async def main():
        async with aio_session(localchat_store) as s:
            await create_user(s, email="async@example.org")
        await asyncio.to_thread(sync_add)

    asyncio.run(main())
    assert _emails(localchat_store) == ["async@example.org", "sync@example.org"]


def test_a_busy_store_is_a_store_busy_error(localchat_store, monkeypatch):
    import localchat.storefile

    monkeypatch.setattr(localchat.storefile, "BUSY_TIMEOUT_SECONDS", 0.05)

    async def main():
        astore = open_async_store(localchat_store)
        astore.db._timeout = 0.05  # a short busy timeout for this test's connections
        with localchat_store.session():  # another writer (this thread, sync) holds the lock
            localchat_store.db.execute_sql("UPDATE user SET name = name")
            async with aio_session(astore) as s:
                await create_user(s, email="ada@example.org")

    with pytest.raises(StoreBusy, match="busy"):
        asyncio.run(main())


# -- the dependencies ---------------------------------------------------------------------
@pytest.fixture
def configured(localchat_store, monkeypatch):
    """``localchat_store`` as the configured store (what the dependencies use)."""
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(localchat_store.path))
    return localchat_store


def test_get_async_db_commits_when_the_request_succeeds(configured):
    async def main():
        async with contextlib.asynccontextmanager(get_async_db)() as s:  # as FastAPI runs it
            assert isinstance(s, AsyncSession)
            await create_user(s, email="ada@example.org")

    asyncio.run(main())
    assert _emails(configured) == ["ada@example.org"]


def test_get_async_db_rolls_back_when_the_request_fails(configured):
    async def main():
        async with contextlib.asynccontextmanager(get_async_db)() as s:
            await create_user(s, email="ada@example.org")
            raise Boom

    with pytest.raises(Boom):
        asyncio.run(main())
    assert _emails(configured) == []


def test_get_async_db_releases_its_connection_when_the_client_disconnects(configured):
    async def main():
        astore = open_async_store()
        async with aio_session(astore):
            pass
        idle, inside = _idle(astore), asyncio.Event()

        async def request():
            async with contextlib.asynccontextmanager(get_async_db)() as s:
                await create_user(s, email="ada@example.org")
                inside.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(request())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return idle, _idle(astore)

    idle, after = asyncio.run(main())
    assert after == idle
    assert _emails(configured) == []


def test_get_async_db_session_is_one_transaction(configured):
    async def main(fail):
        async with get_async_db_session() as s:
            await create_user(s, email=f"{fail}@example.org")
            if fail:
                raise Boom
        async with get_async_db_session(readonly=True) as s:
            return len(await list_users(s))

    assert asyncio.run(main(False)) == 1
    with pytest.raises(Boom):
        asyncio.run(main(True))
    assert _emails(configured) == ["false@example.org"]


# -- streaming ----------------------------------------------------------------------------
def test_an_async_stream_saves_each_chunk_and_ends_with_a_status(localchat_store):
    async def main():
        async with aio_session(localchat_store) as s:
            conv = await create_conversation(s, title="t")
        async with await stream_reply(localchat_store, conv.id, model="m") as reply:
            await reply.append("Hel")
            await reply.append("lo")
        with pytest.raises(Boom):
            async with await stream_reply(localchat_store, conv.id) as failed:
                await failed.append("par")
                raise Boom("model died")
        async with aio_session(localchat_store, readonly=True) as s:
            msgs = await list_messages_for_conversation(s, conv.id)
        return [(m.content, m.status) for m in msgs], reply.status, failed.status

    msgs, first, second = asyncio.run(main())
    assert (first, second) == ("complete", "error")
    assert ("Hello", "complete") in msgs and ("par", "error") in msgs


# -- the optional extra -----------------------------------------------------------------
def test_without_the_async_extra_localchat_imports_and_a_session_names_the_extra(tmp_path):
    code = (
        "import sys, asyncio\n"
        "sys.modules['greenlet'] = None\n"
        "sys.modules['aiosqlite'] = None\n"
        "import localchat, localchat.aio\n"
        "from localchat.errors import ConfigError\n"
        "async def main():\n"
        f"    async with localchat.aio.aio_session({str(tmp_path / 'x.db')!r}):\n"
        "        pass\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pip install 'localchat[async]'" in out.stdout
    assert not (tmp_path / "x.db").exists()


def test_a_restore_waits_for_closed_async_pools_and_then_sessions_use_the_restored_file(
    db_path, tmp_path
):
    from localchat.backup import backup_store, restore_store

    archive = tmp_path / "backup.zip"

    async def main():
        async with aio_session(db_path) as s:
            await create_user(s, email="ada@example.org")
        await asyncio.to_thread(backup_store, archive, db_path)
        async with aio_session(db_path) as s:
            await create_user(s, email="bob@example.org")
        async with aio_session(db_path, readonly=True) as s:  # both pools hold connections
            assert len(await list_users(s)) == 2
        with pytest.raises(StoreBusy, match="Nothing was changed"):
            await asyncio.to_thread(restore_store, archive, db_path, wait=0.1)
        await close_all()  # what an app does before it restores
        await asyncio.to_thread(restore_store, archive, db_path)
        async with aio_session(db_path, readonly=True) as s:
            seen = [u.email for u in await list_users(s)]
        async with aio_session(db_path) as s:
            await create_user(s, email="cy@example.org")
        return seen

    assert asyncio.run(main()) == ["ada@example.org"]
    assert _emails(open_store(db_path)) == ["ada@example.org", "cy@example.org"]


def test_get_async_db_in_a_fastapi_app_commits_each_good_request_and_rolls_back_a_failed_one(
    configured,
):
    fastapi = pytest.importorskip("fastapi", reason="the web extra (FastAPI) is not installed")
    httpx = pytest.importorskip("httpx", reason="the web extra (httpx) is not installed")
    app, db = fastapi.FastAPI(), fastapi.Depends(get_async_db)

    @app.post("/users/{email}")
    async def add(email: str, fail: bool = False, s: AsyncSession = db):
        await create_user(s, email=email)
        if fail:
            raise Boom

    async def main():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            failed = await client.post("/users/bob@example.org?fail=true")
            done = await asyncio.gather(
                *(client.post(f"/users/user{i}@example.org") for i in range(20))
            )
        return failed.status_code, [r.status_code for r in done]

    failed, done = asyncio.run(main())
    assert (failed, done) == (500, [200] * 20)
    assert _emails(configured) == sorted(f"user{i}@example.org" for i in range(20))


def test_an_ended_loop_leaves_no_async_store_behind_and_a_new_loop_gets_its_own(
    localchat_store,
):
    import gc
    import weakref

    async def use(previous=None):
        astore = open_async_store(previous or localchat_store)
        async with aio_session(astore) as s:
            await create_user(s, email=f"user{id(astore)}@example.org")
        return astore

    first = asyncio.run(use())
    ref = weakref.ref(first)
    second = asyncio.run(use(first))  # a store of the ended loop names the same store
    assert second is not first and second.store is first.store
    del first, second
    gc.collect()
    assert ref() is None
    assert len(_emails(localchat_store)) == 2


def test_a_writer_waiting_longer_than_the_busy_timeout_gets_store_busy(
    localchat_store, monkeypatch
):
    from localchat.aio import store as aio_store

    monkeypatch.setattr(aio_store, "WRITE_WAIT_SECONDS", 0.2)

    async def child():
        async with aio_session(localchat_store) as s:
            await create_user(s, email="child@example.org")

    async def main():
        async with aio_session(localchat_store) as s:  # holds the write lock...
            await create_user(s, email="parent@example.org")
            await asyncio.wait_for(child(), 30)  # ...while a task it awaits wants it

    with pytest.raises(StoreBusy, match="busy"):
        asyncio.run(main())
    assert _emails(localchat_store) == []


def test_the_async_twins_use_the_store_the_web_layer_configured(tmp_path, monkeypatch):
    from localchat import web

    # what an unconfigured app would get:
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(tmp_path / "env.db"))
    chosen = open_store(tmp_path / "chosen.db")
    other = open_store(tmp_path / "other.db")
    chosen.upgrade()
    other.upgrade()
    assert web.get_async_db is get_async_db and web.get_async_db_session is get_async_db_session
    web.configure(store=chosen)
    try:

        async def main():
            async with contextlib.asynccontextmanager(web.get_async_db)() as s:
                await create_user(s, email="dep@example.org")
            async with web.get_async_db_session() as s:
                await create_user(s, email="ctx@example.org")
            bound = web.Dependencies(other)
            async with contextlib.asynccontextmanager(bound.get_async_db)() as s:
                await create_user(s, email="bound@example.org")
            await close_all()

        asyncio.run(main())
    finally:
        web.configure()
    assert _emails(chosen) == ["ctx@example.org", "dep@example.org"]
    assert _emails(other) == ["bound@example.org"]
    assert not (tmp_path / "env.db").exists()

"""Every public data-access function is reachable from async code, through one wrapper.

The calls come from ``test_public_api.CALLS`` (one valid call per repository
function); each runs once through ``localchat.aio`` in an async session and
once in a sync session, both rolled back, and must give the same kind of result.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import inspect
import io

import pytest
from test_public_api import CALLS, NOT_SWEPT, OTHER_CALLS, PUBLIC, build_world

import localchat
import localchat.aio as aio
from localchat import LocalchatError, NoSession, ValidationError, local_session
from localchat.aio import functions
from localchat.portable import export_store
from localchat.repository import _passwords

#: Calls of the session functions outside the repository that CALLS does not hold.
MORE_CALLS = {
    "prune": lambda w, tmp: dict(older_than=dt.timedelta(days=30), dry_run=True),
    "store_stats": lambda w, tmp: dict(by="month"),
    "export_store": lambda w, tmp: dict(fp=io.StringIO()),
    "export_markdown": lambda w, tmp: dict(folder=tmp / "md"),
    "iter_export_records": lambda w, tmp: dict(),
    "import_path": lambda w, tmp: dict(path=_export_file(tmp), dry_run=True),
}


def _export_file(tmp):
    path = tmp / "in.jsonl"
    with local_session() as s, open(path, "w") as fp:  # an export of an empty store
        export_store(s, fp)
    return path


class Rollback(Exception):
    pass


def _kwargs(name, world, tmp):
    short = name.rpartition(".")[2]
    if name in OTHER_CALLS:
        return OTHER_CALLS[name][1](world)
    if short in MORE_CALLS:
        return MORE_CALLS[short](world, tmp)
    return CALLS[name](world)


def _shape(result):
    if inspect.isgenerator(result):
        result = list(result)
    if isinstance(result, list):
        return ("list", len(result), sorted({type(x).__name__ for x in result}))
    if isinstance(result, tuple):
        return ("tuple", len(result))
    return type(result).__name__


def _call(fn, s, name, world, tmp):
    try:
        return _shape(fn(s, **_kwargs(name, world, tmp)))
    except LocalchatError as exc:  # the same refusal either way is the same behaviour
        return type(exc).__name__


def _sync(store, name, tmp):
    fn = functions.BRIDGED[name.rpartition(".")[2]]
    try:
        with store.session() as s:
            world = build_world(s, tmp)
            world.src = tmp / "other.txt" if tmp else None
            if tmp:
                world.src.write_text("other")
            raise Rollback(_call(fn, s, name, world, tmp))
    except Rollback as done:
        return done.args[0]


def _async(store, name, tmp):
    fn = getattr(aio, name.rpartition(".")[2])

    async def main():
        async with aio.aio_session(store) as s:
            world = await s.run(build_world, tmp)
            world.src = tmp / "other.txt" if tmp else None
            if tmp:
                world.src.write_text("other")
            try:
                found = _shape(await fn(s, **_kwargs(name, world, tmp)))
            except LocalchatError as exc:
                found = type(exc).__name__
            raise Rollback(found)

    try:
        asyncio.run(main())
    except Rollback as done:
        return done.args[0]


SESSION_FUNCTIONS = sorted(
    name for name, fn in functions.BRIDGED.items() if functions.kind_of(fn) == "session"
)


def test_every_public_function_taking_a_session_has_an_awaitable_twin():
    missing, wrong = [], []
    for source in functions.SOURCES:
        module = importlib.import_module(source)
        for name in module.__all__:
            obj = getattr(module, name)
            kind = functions.kind_of(obj)
            if not kind or name == "stream_reply":  # no database; stream_reply: its own twin
                continue
            twin = getattr(aio, name, None)
            if twin is None:
                missing.append(f"{source}.{name}")
            elif not inspect.iscoroutinefunction(twin) or functions.BRIDGED[name] is not obj:
                wrong.append(name)
    assert (missing, wrong) == ([], [])
    assert inspect.iscoroutinefunction(aio.stream_reply)


#: Takes a database, not a session: bulk-import plumbing for sync code (a context manager).
NOT_DATA_ACCESS = {"keep_triggers"}


def test_the_functions_left_out_touch_no_database():
    left_out = {
        name
        for source in functions.SOURCES
        for name in importlib.import_module(source).__all__
        if name not in functions.BRIDGED
        and name not in NOT_DATA_ACCESS
        and callable(getattr(importlib.import_module(source), name))
        and not inspect.isclass(getattr(importlib.import_module(source), name))
    }
    for name in left_out:
        params = list(inspect.signature(getattr(aio, name, None) or _find(name)).parameters)
        assert not params or params[0] not in ("s", "session", "db"), name


def _find(name):
    for source in functions.SOURCES:
        module = importlib.import_module(source)
        if name in module.__all__:
            return getattr(module, name)
    raise LookupError(name)


@pytest.mark.parametrize(
    "name", PUBLIC + sorted(OTHER_CALLS) + sorted(n for n in SESSION_FUNCTIONS if n in MORE_CALLS)
)
def test_every_function_runs_through_the_bridge_as_it_runs_in_a_sync_session(
    name, localchat_store, tmp_path
):
    (tmp_path / "sync").mkdir()
    (tmp_path / "async").mkdir()
    expected = _sync(localchat_store, name, tmp_path / "sync")
    assert _async(localchat_store, name, tmp_path / "async") == expected


def test_every_function_runs_through_the_bridge_on_postgresql_as_in_a_sync_session(
    pg_url, monkeypatch
):
    monkeypatch.setattr(_passwords, "SCRYPT_PARAMS", (2, 1, 1))  # a fast KDF for the loop
    localchat.reset_db(url=pg_url)
    store = localchat.open_store(url=pg_url)
    names = sorted(set(PUBLIC) - NOT_SWEPT) + sorted(OTHER_CALLS)
    differ = {}
    for name in names:
        expected, got = _sync(store, name, None), _async(store, name, None)
        if got != expected:
            differ[name] = (expected, got)
    assert differ == {}


def test_the_store_functions_run_in_a_worker_thread(localchat_store):
    async def main():
        astore = aio.open_async_store(localchat_store)
        report = await aio.check_store(astore)
        vacuum = await aio.vacuum_store(localchat_store)
        return report.exit_code, vacuum

    code, vacuum = asyncio.run(main())
    assert code == 0 and isinstance(vacuum, str)


def test_a_generated_function_takes_the_session_by_keyword_and_refuses_anything_else(
    localchat_store,
):
    async def main():
        async with aio.aio_session(localchat_store) as s:
            user = await aio.create_user(session=s, email="ada@example.org")
            assert (await aio.get_user(session=s, user_id=user.id)).email == "ada@example.org"
        with pytest.raises(NoSession, match=r"get_user\(\) takes a localchat session"):
            await aio.get_user(None, 1)
        async with aio.aio_session(localchat_store) as s:
            with pytest.raises(ValidationError):  # localchat's errors come through as they are
                await aio.create_user(s, email="not an address")

    asyncio.run(main())


# -- the source document's async examples, only their imports changed --------------------
def Depends(dependency):  # noqa: N802  (FastAPI's marker; the examples only name it)
    return dependency


def test_the_source_documents_async_examples_run(localchat_store, monkeypatch):
    monkeypatch.setenv("LOCALCHAT_DB_PATH", str(localchat_store.path))
    # was: from app.db.database import init_db, get_session / from app.db.audit import ...
    from localchat.aio import (
        AsyncSession,
        average_generation_time_ms,
        count_generations_per_user,
        error_rate,
        get_recent_logs,
        get_session,
        get_user_history,
        init_db,
        log_generation,
    )

    async def my_route(session: AsyncSession = Depends(get_session)):  # noqa: B008
        await log_generation(
            session=session,
            user_id="user_123",
            document_type="treatment_summary",
            input_data={"treatment_type": "clear aligners"},
            generated_text={"title": "Your Treatment Plan"},
            tokens_used=450,
            generation_time_ms=1250,
        )

    async def failing_route(session: AsyncSession = Depends(get_session)):  # noqa: B008
        entry = await log_generation(
            session=session,
            user_id="user_123",
            document_type="treatment_summary",
            input_data={"treatment_type": "clear aligners"},
            generated_text={},
            status="error",
            error_message="model timed out",
        )
        return entry

    async def main():
        await init_db()
        async for session in get_session():  # what Depends(get_session) does per request
            await my_route(session)
        async for session in get_session():
            entry = await failing_route(session)
        async for session in get_session():
            history = await get_user_history("user_123", session)
            recent = await get_recent_logs(session)
            per_user = await count_generations_per_user(session)
            average = await average_generation_time_ms(session)
            rate = await error_rate(session)
        return entry, history, recent, per_user, average, rate

    entry, history, recent, per_user, average, rate = asyncio.run(main())
    assert entry.status == "error" and entry.id and entry.created_at is not None
    assert [h.status for h in history] == ["error", "success"]  # newest first
    assert [r.status for r in recent] == ["success", "error"]  # oldest first
    assert history[1].input_data == {"treatment_type": "clear aligners"}
    assert (per_user, average, rate) == ({"user_123": 2}, 1250.0, 0.5)

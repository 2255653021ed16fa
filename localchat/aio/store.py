"""Async stores and sessions on peewee's ``playhouse.pwasyncio`` (aiosqlite, asyncpg).

    from localchat.aio import aio_session, create_user

    async with aio_session("/tmp/chat.db") as s:        # one transaction
        user = await create_user(s, email="ada@example.org")
        n = await s.run(count_users)                    # any sync function taking s

An :class:`AsyncStore` is the asyncio face of one sync :class:`~localchat.Store`
(which keeps the configuration, file checks, migrations and the file store)
for one event loop: a pool of aiosqlite write connections (``BEGIN
IMMEDIATE``) and one of ``query_only`` read connections (``BEGIN DEFERRED``),
or one asyncpg pool. A session runs the *same* steps as a sync session
(:meth:`~localchat.Store.transaction_steps`) through peewee's greenlet bridge,
so commit, rollback, error translation and rollback hooks are the sync ones.
SQLite statements run in aiosqlite's threads: the event loop never waits for
the database. Write sessions of one store queue on an ``asyncio.Lock`` (they
wait in the loop, not in SQLite's busy handler); read sessions never wait for
writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import peewee

from ..config import DEFAULT_APP_NAME, StoreConfig
from ..database import SQLITE_PRAGMAS, Session, Store, open_store
from ..database import init_db as sync_init_db
from ..errors import ConfigError, SessionClosed, StoreBusy
from ..storefile import BUSY_TIMEOUT_SECONDS

__all__ = [
    "AsyncSession",
    "AsyncStore",
    "open_async_store",
    "aio_session",
    "close_all",
    "init_db",
    "WRITE_POOL_SIZE",
    "READ_POOL_SIZE",
    "POSTGRES_POOL_SIZE",
    "WRITE_WAIT_SECONDS",
]

R = TypeVar("R")


#: SQLite connections per store and loop for write sessions (they take turns
#: on the store's write lock, so one would do; the second serves a nested read).
WRITE_POOL_SIZE = 2
#: SQLite ``query_only`` connections per store and loop: read sessions at once.
READ_POOL_SIZE = 4
#: PostgreSQL connections per store and loop (asyncpg pool).
POSTGRES_POOL_SIZE = 10
#: How long a write session waits for the store's other writers of this loop
#: before it gives up with StoreBusy (as SQLite's busy timeout does).
WRITE_WAIT_SECONDS = BUSY_TIMEOUT_SECONDS

_INSTALL = "pip install 'localchat[async]'"

# Where greenlet_spawn lives once pwasyncio is imported (the extra is optional).
_bridge: dict[str, Any] = {}


def _pwasyncio(postgres: bool) -> Any:
    """peewee's asyncio module, or ConfigError naming the extra to install."""
    try:
        import greenlet  # noqa: F401
        from playhouse import pwasyncio
    except ImportError as exc:
        raise ConfigError(
            f"asyncio sessions need greenlet and {'asyncpg' if postgres else 'aiosqlite'}: "
            f"{_INSTALL} ({exc})."
        ) from exc
    driver = "asyncpg" if postgres else "aiosqlite"
    if getattr(pwasyncio, driver, None) is None:
        raise ConfigError(f"asyncio sessions on this store need {driver}: {_INSTALL}.")
    _bridge["spawn"] = pwasyncio.greenlet_spawn
    return pwasyncio


class AsyncSession(Session):
    """One transaction of an asyncio task, from :func:`aio_session`.

    It is a :class:`~localchat.Session` (``s.db``, ``s.store``, ``s.readonly``,
    ``after_commit``...) that serves only the task that opened it, inside its
    ``async with`` block. Every data-access function runs in it through the
    bridge: ``await localchat.aio.create_user(s, ...)``, or for any sync
    function taking the session first, ``await s.run(fn, *args, **kwargs)``.
    """

    __slots__ = ()

    def __init__(self, store: Store, db: peewee.Database | None = None, readonly: bool = False):
        super().__init__(store, db, readonly)
        self.owner = asyncio.current_task()  # the task it serves; 0 once ended

    def check_usable(self) -> None:
        """Raise :class:`SessionClosed` unless used inside its block, by its task."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no event loop running here (a worker thread)
            task = None
        if self.owner is not task or task is None:
            raise SessionClosed(
                f"this async session on {self.store.config.describe()} "
                + ("has ended" if not self.owner else "belongs to another task")
                + ": open one with `async with aio_session() as s:` in the task that uses it."
            )

    async def run(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """``fn(session, *args, **kwargs)`` through the greenlet bridge; its result.

        ``fn`` is sync code: every data-access function, or your own using the
        models. Its queries run on this session's connection, and the event
        loop runs while they wait for the database.
        """
        self.check_usable()
        return await _bridge["spawn"](fn, self, *args, **kwargs)

    def __repr__(self) -> str:
        kind = "async read session" if self.readonly else "AsyncSession"
        return f"<{kind} on {self.store.config.describe()}>"


def _database_classes(pw: Any) -> tuple[type[peewee.Database], type[peewee.Database]]:
    """pwasyncio's SQLite and PostgreSQL databases, with ``cursor().executemany``.

    Bulk imports insert with one ``executemany`` (``repository.bulk``); pwasyncio's
    cursor only runs single statements, so its cursor gains the driver's own.
    """
    cached = _bridge.get("classes")
    if cached is not None:
        return cached

    async def executemany(conn: Any, sql: str, rows: list[Any], postgres: bool) -> None:
        await conn._acquire_lock()
        try:
            if postgres:
                await conn.conn.executemany(conn._translate_placeholders(sql), rows)
            else:
                raw, pending = conn.conn, conn.take_pending()

                def run() -> None:
                    _run_pending(raw._conn, pending)
                    raw._conn.executemany(sql, rows).close()

                await raw._execute(run)
        finally:
            conn._lock.release()

    class Cursor(pw.DummyCursor):
        postgres = False

        def executemany(self, sql: str, rows: Any) -> None:
            pw.await_(executemany(self.conn, sql, list(rows), self.postgres))

    class PgCursor(Cursor):
        postgres = True

    class SqliteConnection(pw.AsyncSqliteConnection):
        """At most one trip to aiosqlite's thread per statement (pwasyncio's makes
        three: execute, fetchall, close; each costs about 25 us), and none for a
        statement that returns nothing and cannot fail on its own (see
        :func:`_deferrable`): it waits here and runs in the next statement's trip,
        just before it. A session that ends with such statements still waiting
        (``BEGIN DEFERRED`` then ``COMMIT``: a read session that read nothing)
        makes no trip at all."""

        def __init__(self, conn: Any) -> None:
            super().__init__(conn)
            self.pending: list[str] = []
            self.in_begin = False  # a BEGIN ran (or waits) and no COMMIT/ROLLBACK since

        def take_pending(self) -> list[str]:
            pending, self.pending = self.pending, []
            return pending

        async def _execute(self, sql: str, params: Any = None) -> Any:
            word = sql.lstrip()[:8].upper()
            ends = word.startswith(("COMMIT", "END")) or word == "ROLLBACK" and _ends(sql)
            if not params and _deferrable(sql, self.in_begin):
                self.pending.append(sql)
                self.in_begin = self.in_begin or word.startswith("BEGIN")
                return pw.CursorAdapter([], lastrowid=None, rowcount=-1, description=None)
            if ends:
                self.in_begin = False
                if self.pending and all(p.lstrip()[:5].upper() == "BEGIN" for p in self.pending):
                    self.pending.clear()  # BEGIN DEFERRED then the end: nothing happened
                    return pw.CursorAdapter([], lastrowid=None, rowcount=-1, description=None)
            raw, pending = self.conn, self.take_pending()

            def run() -> tuple[Any, ...]:
                _run_pending(raw._conn, pending)
                cursor = raw._conn.execute(sql, params or ())
                try:
                    return cursor.fetchall(), cursor.lastrowid, cursor.rowcount, cursor.description
                finally:
                    cursor.close()

            try:
                rows, lastrowid, rowcount, description = await raw._execute(run)
            except BaseException:
                if pending and pending[0].lstrip()[:5].upper() == "BEGIN":
                    self.in_begin = False  # the waiting BEGIN may not have run
                raise
            if word.startswith("BEGIN"):
                self.in_begin = True
            return pw.CursorAdapter(
                rows, lastrowid=lastrowid, rowcount=rowcount, description=description
            )

        async def execute_iter(self, sql: str, params: Any = None) -> Any:
            if self.pending:  # what waits runs first, in its own trip
                await self.execute("SELECT 1")
            return await super().execute_iter(sql, params)

    class SqlitePool(pw.AsyncSqlitePool):
        async def release(self, conn: Any) -> None:
            conn.pending.clear()  # never run: as if rolled back (peewee ends its transactions)
            conn.in_begin = False
            await super().release(conn)

        async def _create_connection(self) -> Any:
            conn = await pw.aiosqlite.connect(
                self._database, isolation_level=None, **self._connect_params
            )
            if self._on_connect is not None:
                await self._on_connect(conn)
            return SqliteConnection(conn)

    class SqliteDB(pw.AsyncSqliteDatabase):
        def cursor(self, named_cursor: Any = None) -> Any:
            return Cursor(pw.await_(self.aconnect()))

        async def _acquire_conn_async(self) -> Any:
            # An idle pooled connection without pwasyncio's two wait_for() tasks
            # (each a trip round the loop); otherwise its own (bounded) wait.
            pool = self._pool
            if pool is not None and not pool._closed:
                try:
                    conn = pool._queue.get_nowait()
                except asyncio.QueueEmpty:
                    pass
                else:
                    conn._pool = pool
                    return conn
            return await super()._acquire_conn_async()

        async def _create_pool_async(self) -> Any:
            pool = SqlitePool(
                self.database,
                pool_size=self._pool_size,
                on_connect=self._add_conn_hooks,
                timeout=self._timeout,
                **self.connect_params,
            )
            return await pool.initialize()

    class PostgresDB(pw.AsyncPostgresqlDatabase):
        def cursor(self, named_cursor: Any = None) -> Any:
            return PgCursor(pw.await_(self.aconnect()))

        async def aexecute_sql(self, sql: str, params: Any = None) -> Any:
            try:
                return await super().aexecute_sql(sql, params)
            except pw.asyncpg.PostgresError as exc:  # one peewee's wrapper does not know
                raise _peewee_error(exc) from exc

    _bridge["classes"] = (SqliteDB, PostgresDB)
    return SqliteDB, PostgresDB


def _deferrable(sql: str, in_begin: bool) -> bool:
    """Whether a statement may wait for the next one's trip to aiosqlite's thread.

    Only statements that return nothing and take no lock, so that running them
    a moment later, just before the next statement, changes nothing but where
    a (practically impossible) error of theirs would raise: ``BEGIN`` and
    ``BEGIN DEFERRED`` (a read session's; no lock until the first read, so it
    never waits and never meets SQLITE_BUSY), ``SAVEPOINT`` and, inside a
    ``BEGIN`` transaction, ``RELEASE`` (outside one a RELEASE commits, so it
    runs at once). ``BEGIN IMMEDIATE`` takes the write lock and may wait for it
    and fail with "database is locked" (StoreBusy): it always makes its own trip,
    so it raises where it always did, when the session opens.
    """
    head = sql.lstrip()[:17].upper()
    if head.startswith("BEGIN"):
        return head.rstrip(" ;") in ("BEGIN", "BEGIN DEFERRED")
    if head.startswith("SAVEPOINT"):
        return True
    return in_begin and head.startswith("RELEASE")


def _ends(sql: str) -> bool:
    """ROLLBACK ends the transaction; ROLLBACK TO (a savepoint) does not."""
    return not sql.lstrip()[8:].lstrip().upper().startswith("TO")


def _run_pending(conn: Any, pending: list[str]) -> None:
    """In aiosqlite's thread: the statements that waited, in order (the first error raises)."""
    for sql in pending:
        conn.execute(sql).close()


def _peewee_error(exc: Exception) -> peewee.PeeweeException:
    """asyncpg's error as the nearest peewee class (as psycopg's would be)."""
    for cls in type(exc).__mro__:
        found = peewee.EXCEPTIONS.get(cls.__name__)  # type: ignore[attr-defined]
        if found is not None:
            return found(exc, *exc.args)
    return peewee.DatabaseError(exc, *exc.args)


def _async_database(config: StoreConfig, *, readonly: bool) -> peewee.Database:
    pw = _pwasyncio(postgres=config.path is None)
    sqlite_db, postgres_db = _database_classes(pw)
    if config.path is not None:
        pragmas = {**SQLITE_PRAGMAS, "query_only": 1} if readonly else SQLITE_PRAGMAS
        return sqlite_db(
            str(config.path),
            pragmas=pragmas,
            lock_type="DEFERRED" if readonly else "IMMEDIATE",
            timeout=BUSY_TIMEOUT_SECONDS,
            pool_size=READ_POOL_SIZE if readonly else WRITE_POOL_SIZE,
            autoconnect=False,
        )
    assert config.url is not None
    from playhouse.db_url import parse

    params = parse(config.url, unquote_user=True, unquote_password=True)
    for key in ("max_connections", "stale_timeout", "timeout"):  # the sync pool's options
        params.pop(key, None)
    return postgres_db(params.pop("database"), pool_size=POSTGRES_POOL_SIZE, **params)


class AsyncStore:
    """One store for the tasks of one event loop. Use :func:`open_async_store`.

    ``store`` is the sync :class:`~localchat.Store` (configuration, file
    checks, migrations, files); ``db`` and ``read_db`` are its pwasyncio
    databases. Its pools close with :meth:`close`, or by themselves when the
    loop ends through ``asyncio.run`` (or any loop that shuts down its async
    generators).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = _async_database(store.config, readonly=False)
        self._read_db: peewee.Database | None = None
        self._write_lock = asyncio.Lock()
        self._writer: asyncio.Task[Any] | None = None
        self._migrated = self._readable = False
        self._closer = self._close_at_loop_end()
        self._watching = False

    @property
    def config(self) -> StoreConfig:
        return self.store.config

    @property
    def read_db(self) -> peewee.Database:
        """The database read sessions use (SQLite: ``query_only`` connections; else ``db``)."""
        if self._read_db is None:
            self._read_db = (
                _async_database(self.config, readonly=True) if self.store.is_sqlite else self.db
            )
        return self._read_db

    def session(
        self, *, readonly: bool = False
    ) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """One transaction: commit on success, rollback on exception, connection released.

        Also on cancellation: a cancelled task's session rolls back and returns
        its connection before the ``CancelledError`` goes on.
        """
        return self._session(readonly)

    def read_session(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A read session: a snapshot that never waits for a writer (see ``Store.read_session``)."""
        return self._session(True)

    @contextlib.asynccontextmanager
    async def _session(self, readonly: bool) -> AsyncIterator[AsyncSession]:
        if not self._watching:
            self._watching = True
            await self._closer.__anext__()  # asyncio.run's shutdown closes the pools
        store = self.store
        if readonly:
            if not self._readable:
                await asyncio.to_thread(_checked, store, store.ensure_readable)
                self._readable = True
            in_write = store.is_sqlite and self.db.in_transaction()
            db = self.db if in_write or not store.is_sqlite else self.read_db
        else:
            if not self._migrated:
                await asyncio.to_thread(_checked, store, store.ensure_migrated)
                self._migrated = True
            db = self.db
        task = asyncio.current_task()
        locked = False
        if not readonly and store.is_sqlite and self._writer is not task:
            await self._wait_for_writers()  # writers queue here, in the loop
            self._writer, locked = task, True
        try:
            steps = store.transaction_steps(db, readonly=readonly, session_type=AsyncSession)
            session: AsyncSession = await db.run(next, steps)  # type: ignore[attr-defined]
            try:
                yield session
            except BaseException as exc:
                await db.run(steps.throw, exc)  # type: ignore[attr-defined]  # re-raises
                raise
            else:
                await db.run(next, steps, None)  # type: ignore[attr-defined]  # commit
        finally:
            if locked:
                self._writer = None
                self._write_lock.release()

    async def _wait_for_writers(self) -> None:
        lock = self._write_lock
        if not lock.locked():
            await lock.acquire()  # free: at once, without a timer
            return
        try:
            await asyncio.wait_for(lock.acquire(), WRITE_WAIT_SECONDS)
        except asyncio.TimeoutError:
            raise StoreBusy(
                f"{self.config.describe()} is busy: another task of this process held the "
                f"write lock for more than {WRITE_WAIT_SECONDS:g} s; try again. (A task that "
                "awaits another task's write session inside its own holds the lock it waits for.)"
            ) from None

    async def close(self) -> None:
        """Close this store's connection pools (idle ones now, busy ones when released)."""
        for db in {id(d): d for d in (self.db, self._read_db) if d is not None}.values():
            await db.close_pool()  # type: ignore[attr-defined]

    async def _close_at_loop_end(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await self.close()
            per_loop = _stores.get(asyncio.get_running_loop(), {})
            if per_loop.get(self.store) is self:  # the loop ends: forget it, and its stores
                del per_loop[self.store]

    def __repr__(self) -> str:
        return f"<AsyncStore {self.config.describe()}>"


def _checked(store: Store, step: Callable[[], Any]) -> None:
    with store.driver_errors():
        step()


# event loop -> sync store -> its AsyncStore in that loop
_stores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Store, AsyncStore]] = (
    weakref.WeakKeyDictionary()
)


def open_async_store(
    db_path: str | os.PathLike[str] | Store | AsyncStore | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
) -> AsyncStore:
    """The :class:`AsyncStore` of a location (or of a sync ``Store``) in the running loop.

    Creates nothing on disk; the first write session creates and migrates the
    store (in a worker thread). One per store and event loop, cached (an
    ``AsyncStore`` of another loop gives this loop's one).
    """
    if isinstance(db_path, AsyncStore):
        store = db_path.store
    elif isinstance(db_path, Store):
        store = db_path
    else:
        store = open_store(db_path, url=url, app_name=app_name)
    loop = asyncio.get_running_loop()
    per_loop = _stores.setdefault(loop, {})
    found = per_loop.get(store)
    if found is None:
        found = per_loop[store] = AsyncStore(store)
    return found


def aio_session(
    db_path: str | os.PathLike[str] | Store | AsyncStore | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    readonly: bool = False,
) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
    """``async with aio_session(...) as s:``: one transaction, like ``get_session``.

    Commit on success, rollback on an exception or cancellation, connection
    released either way. ``readonly=True``: a read session. The location
    resolves as for :func:`localchat.get_session` (a path, ``url=``, the
    environment, or the platform data directory); a ``Store`` works too.
    """
    return open_async_store(db_path, url=url, app_name=app_name).session(readonly=readonly)


async def close_all() -> None:
    """Close the pools of every async store of the running loop."""
    per_loop = _stores.pop(asyncio.get_running_loop(), {})
    for store in per_loop.values():
        await store.close()


async def init_db(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
) -> list[str]:
    """Create or upgrade the store to the newest migration (in a worker thread); applied names."""
    return await asyncio.to_thread(sync_init_db, db_path, url=url, app_name=app_name)

"""Open a store, migrate it, and work in it through sessions.

    from localchat import get_session, init_db, local_session
    init_db()                                   # create or upgrade the per-user store
    with get_session() as s:                    # one transaction
        ...                                     # commit on success, rollback on error
    with local_session() as s:                  # a fresh temporary store
        ...

A *store* is one database (a SQLite file with its own ``<file>-files/``
folder beside it, or a PostgreSQL database). A *session* is one transaction on
one store in one thread; it binds localchat's models to that store for its
duration, so two stores can be used one after the other or nested and never
mix. ``get_session(readonly=True)`` is a read session: a snapshot that never
waits for a writer and never writes.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
from playhouse.pool import PooledDatabase, PooledSqliteDatabase

from . import schema, store_swap, storefile
from .config import DEFAULT_APP_NAME, StoreConfig, resolve
from .errors import ConfigError, MigrationError, NotFound, SessionClosed, translate
from .models import ALL_MODELS, router
from .storefile import BUSY_TIMEOUT_SECONDS, make_private_dirs

__all__ = [
    "SQLITE_PRAGMAS",
    "BUSY_TIMEOUT_SECONDS",
    "Store",
    "Session",
    "open_store",
    "forget_store",
    "init_db",
    "drop_db",
    "reset_db",
    "get_session",
    "local_session",
    "close_all",
]

#: Applied to every SQLite connection. None of them writes to the file: WAL
#: (``journal_mode``, persistent in the file) is switched on once, when a
#: writer first prepares the store (:func:`_prepare_sqlite`). WAL with
#: synchronous=NORMAL never corrupts the file; a power cut may lose the last
#: commits (not torn data).
SQLITE_PRAGMAS: dict[str, Any] = {
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -16000,
}

_stores: dict[str, Store] = {}
_every_store: weakref.WeakSet[Store] = weakref.WeakSet()  # cached or not, for fork()
_resolved: dict[tuple[Any, ...], tuple[str, Store]] = {}  # open_store() arguments -> store
_stores_lock = threading.Lock()


class Session:
    """One transaction on one store, as handed out by :func:`get_session`.

    Data-access functions take it first: ``create_user(s, email=...)``.
    ``s.db`` is the peewee database, ``s.store`` the :class:`Store`;
    ``s.readonly`` is True in a read session (:meth:`Store.read_session`).
    A session serves only the thread that opened it, and only inside its
    ``with`` block (:class:`~localchat.errors.SessionClosed` otherwise).
    """

    __slots__ = ("store", "db", "readonly", "owner")

    def __init__(self, store: Store, db: peewee.Database | None = None, readonly: bool = False):
        self.store = store
        self.db = store.db if db is None else db
        self.readonly = readonly
        #: The thread the session serves (an async session: its task); 0 once
        #: its ``with`` block has ended.
        self.owner: Any = threading.get_ident()

    def check_usable(self) -> None:
        """Raise :class:`SessionClosed` unless used inside its block, by its thread."""
        if self.owner != threading.get_ident():
            raise SessionClosed(
                f"this session on {self.store.config.describe()} "
                + ("has ended" if not self.owner else "belongs to another thread")
                + ": open a new one with get_session() (one per thread, used inside its "
                "`with` block)."
            )

    def after_commit(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` once the outermost transaction commits (never on rollback)."""
        self.db.after_commit(fn)

    def after_rollback(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` if the outermost transaction rolls back (never on commit).

        The counterpart of :meth:`after_commit`, e.g. to remove a file written
        for a row that was never committed. Like peewee's commit callbacks, a
        hook registered inside a savepoint that rolls back alone stays
        registered, so hooks re-check the database before acting. A hook that
        raises is logged and does not hide the error that caused the rollback.
        """
        self.store._rollback_hooks().append(fn)

    def savepoint(self) -> Any:
        """A nested transaction: ``with s.savepoint(): ...`` rolls back alone."""
        return self.db.atomic()

    def __repr__(self) -> str:
        kind = "read session" if self.readonly else "Session"
        return f"<{kind} on {self.store.config.describe()}>"


class Store:
    """One database and its file store. Use :func:`open_store`, not the constructor."""

    def __init__(self, config: StoreConfig, *, migrations_dir: str | Path | None = None) -> None:
        self.config = config
        self.migrations_dir = Path(migrations_dir) if migrations_dir else schema.MIGRATIONS_DIR
        self.db = _connect(config)
        self._read_db: peewee.Database | None = None  # SQLite: a pool of query_only connections
        _every_store.add(self)
        self._prepared = False  # the file was checked as localchat's and is in WAL mode
        self._readable = False  # the file was checked as localchat's, at the newest schema
        self._migrated = False
        self._migrate_lock = threading.Lock()
        #: The rollback hooks of the outermost transaction open in this thread or
        #: asyncio task (each has its own context; a child task's copy keeps the
        #: list, but opening its own session sets its own).
        self._hooks: contextvars.ContextVar[list[Callable[[], Any]] | None] = (
            contextvars.ContextVar(f"localchat_rollback_hooks_{id(self):x}", default=None)
        )
        #: What code learned about this store's schema (e.g. whether a trigger
        #: exists); forgotten whenever the schema is migrated.
        self.schema_facts: dict[str, Any] = {}

    # -- where --------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.config.path

    @property
    def files_dir(self) -> Path | None:
        """The store's own document folder, ``<database file>-files/`` (None on PostgreSQL)."""
        return self.config.files_dir

    @property
    def is_sqlite(self) -> bool:
        return self.config.is_sqlite

    def exists(self) -> bool:
        """Whether the database exists (a SQLite file on disk; PostgreSQL: assumed)."""
        return self.path.exists() if self.path is not None else True

    # -- schema -------------------------------------------------------------
    def upgrade(self, target: str | None = None) -> list[str]:
        """Apply pending migrations (through ``target``, which ends applied); returns names."""
        self.schema_facts.clear()
        try:
            applied = []
            if schema.planned_upgrades(self, target):
                self.prepare()  # creates a missing file; WAL
                applied = schema.upgrade(self, target)
        finally:
            self._close_idle()  # no connection outlives a migration: the file is settled
        if target is None:
            self._migrated = True
        return applied

    def downgrade(self, target: str | None = None) -> list[str]:
        """Revert migrations: the newest one, or every one after ``target`` (which stays).

        ``target`` means the same as for :meth:`upgrade`, the version the store
        ends at; :data:`~localchat.schema.ZERO` reverts every migration (all
        tables and data go). A SQLite store is copied beside itself first
        (``<file>.pre-revert-<migration>.bak``). Returns the reverted names.
        """
        self._migrated = self._readable = False
        self.schema_facts.clear()
        try:
            if not schema.planned_reverts(self, target):
                return []
            self.prepare()
            return schema.downgrade(self, target)
        finally:
            self._close_idle()

    def migration_status(self) -> list[schema.MigrationState]:
        """Every migration, applied or pending. Read-only: never creates or changes the file."""
        self.check_file()
        with self.driver_errors():
            return schema.status(self)

    @contextlib.contextmanager
    def driver_errors(self) -> Iterator[None]:
        """Re-raise driver failures as localchat errors naming this store."""
        try:
            yield
        except (peewee.PeeweeException, sqlite3.Error) as exc:
            raise translate(exc, self.config.describe()) or exc from exc

    def check_file(self) -> str:
        """Raise unless the SQLite file is absent, empty SQLite or localchat's. Read-only.

        :class:`~localchat.errors.ForeignDatabase` names the tables of another
        application's database (or a zero-byte file localchat did not make),
        :class:`~localchat.errors.StoreCorrupt` a file that is not SQLite;
        either way the file is left byte-identical. PostgreSQL: ``"server"``.
        The one change it may make: a restore a crash cut short
        (:mod:`localchat.store_swap`) is finished or undone first.
        """
        if self.path is not None:
            try:
                store_swap.finish_interrupted(self.path)
            except OSError as exc:
                raise translate(exc, str(self.path)) or exc from exc
        return schema.check_file(self)

    def prepare(self) -> None:
        """Before the first write: the file is localchat's (or made new), in WAL mode.

        Also removes copies a crash interrupted (under the write lock, so no
        copy is in progress). Once per process and store.
        """
        if self._prepared:
            return
        with self._migrate_lock:
            if self._prepared or self.path is None:
                self._prepared = True
                return
            if self.check_file() == "missing":
                try:
                    make_private_dirs(self.path.parent)
                    storefile.create_file(self.path, timeout=BUSY_TIMEOUT_SECONDS)
                except OSError as exc:
                    raise translate(exc, str(self.path)) or exc from exc
            storefile.ensure_wal(self.path, timeout=BUSY_TIMEOUT_SECONDS)
            with self.db.connection_context():
                try:
                    with self.db.atomic():  # BEGIN IMMEDIATE: no copy is being made now
                        storefile.remove_partial_backups(self.path)
                except peewee.PeeweeException as exc:
                    raise translate(exc, str(self.path)) or exc from exc
            self._prepared = True

    def ensure_migrated(self) -> None:
        """Upgrade once per process; later calls cost nothing."""
        if not self._migrated:
            self.prepare()
            with self._migrate_lock:
                if not self._migrated:
                    if schema.at_head(self):  # the usual case: one SELECT, no Runner
                        self._migrated = True
                    else:
                        self.upgrade()

    def assume_migrated(self) -> None:
        """Trust that the file is localchat's, in WAL mode, at the newest schema.

        Sessions then skip the first-write checks and the migration check. For a
        copy of a store known to be migrated (the pytest plugin's per-test copies
        of its template); on any other file, the caller answers for it.
        """
        self._prepared = self._migrated = True

    def ensure_readable(self) -> None:
        """What a read session needs, checked without writing anything."""
        if self._readable or self._migrated:
            return
        if self.check_file() == "missing":  # first: it settles an interrupted restore
            raise NotFound(
                f"there is no store at {self.config.describe()} yet: `localchat init` or a "
                "write session (get_session()) creates it."
            )
        if not schema.at_head(self):
            states = self.migration_status()
            schema.refuse_newer(states, self)
            pending = [m.name for m in states if not m.applied]
            raise MigrationError(
                f"{self.config.describe()} needs migrations {', '.join(pending)} before it can "
                "be read; a read session never changes the file. Run `localchat init` or open "
                "a write session (get_session()) once."
            )
        self._readable = True

    def table_counts(self) -> dict[str, int]:
        """Rows per table of the domain model. Read-only."""
        if not self.exists():
            return {}
        self.check_file()
        db = self.read_db
        with self.driver_errors(), db.connection_context():
            tables = set(db.get_tables())
            return {
                m._meta.table_name: m.select().bind(db).count()
                for m in ALL_MODELS
                if m._meta.table_name in tables
            }

    def forget_state(self) -> None:
        """Close idle connections and forget what was learned about the file.

        For after the file was replaced (a restore): the next session checks,
        prepares and migrates it again.
        """
        self.close()
        self._prepared = self._readable = self._migrated = False
        self.schema_facts.clear()

    # -- sessions -----------------------------------------------------------
    def session(self, *, readonly: bool = False) -> contextlib.AbstractContextManager[Session]:
        """One transaction: commit on success, rollback on exception, connection released.

        ``readonly=True`` is :meth:`read_session`.
        """
        if readonly:
            return self.read_session()
        return self._write_session()

    @contextlib.contextmanager
    def _write_session(self) -> Iterator[Session]:
        with self.driver_errors():
            self.ensure_migrated()
        yield from self.transaction_steps(self.db, readonly=False)

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only transaction: one consistent snapshot that never waits for a writer.

        On SQLite it runs on its own pooled connections in ``query_only``
        mode (``BEGIN DEFERRED`` in WAL: it neither waits for nor blocks a
        writer); on PostgreSQL it is a ``READ ONLY`` transaction. Inside a
        write session of the same thread it joins that transaction (so it sees
        its uncommitted rows). Any write in it raises
        :class:`~localchat.errors.ReadOnlySession`. It never creates, migrates
        or changes the file: a store that needs migrating raises
        :class:`~localchat.errors.MigrationError` instead.
        """
        with self.driver_errors():
            self.ensure_readable()
        if not self.is_sqlite or self.db.in_transaction():
            yield from self.transaction_steps(self.db, readonly=True)
        else:
            yield from self.transaction_steps(self.read_db, readonly=True)

    @property
    def read_db(self) -> peewee.Database:
        """The database read sessions use (SQLite: query_only connections; else ``db``)."""
        if self._read_db is None:
            self._read_db = _connect(self.config, readonly=True) if self.is_sqlite else self.db
        return self._read_db

    def transaction_steps(
        self, db: peewee.Database, *, readonly: bool, session_type: type[Session] = Session
    ) -> Iterator[Session]:
        """Open, yield, commit or roll back, release: the one body of every session.

        A plain generator of sync calls, so :mod:`localchat.aio` drives the
        same steps through peewee's greenlet bridge (``session_type`` then
        names the session class that checks its owning task).
        """
        where = self.config.describe()
        opened = False
        try:
            if db.is_closed():
                db.connect()
                opened = True
            outermost = not db.in_transaction()
            txn = db.atomic()
            txn.__enter__()
        except peewee.PeeweeException as exc:
            if opened:
                db.close()
            raise translate(exc, where, readonly=readonly) or exc from exc
        restore_query_only = False
        try:
            if readonly and outermost and not self.is_sqlite:
                db.execute_sql("SET TRANSACTION READ ONLY")
            elif readonly and not outermost and self.is_sqlite:
                restore_query_only = not db.execute_sql("PRAGMA query_only").fetchone()[0]
                db.execute_sql("PRAGMA query_only = 1")
        except BaseException:
            txn.__exit__(None, None, None)
            raise
        router.push(db)
        session = session_type(self, db, readonly)
        hooks_before = self._hooks.get()
        if outermost:
            self._hooks.set([])
        try:
            try:
                yield session
            finally:
                session.owner = 0
                if restore_query_only:
                    db.execute_sql("PRAGMA query_only = 0")
        except BaseException as exc:
            _finish(txn, db, exc)
            if outermost:
                self._run_rollback_hooks()
            error = _store_error(exc, where, readonly)
            if error is not None:
                raise error from exc
            raise
        else:
            try:
                _finish(txn, db, None)
            except peewee.PeeweeException as exc:
                if outermost:
                    self._run_rollback_hooks()
                raise translate(exc, where, readonly=readonly) or exc from exc
        finally:
            if outermost:
                self._hooks.set(hooks_before)
            router.pop()
            if opened:
                db.close()

    def _rollback_hooks(self) -> list[Callable[[], Any]]:
        hooks = self._hooks.get()
        if hooks is None:  # no transaction open here: nothing would ever run them
            return []
        return hooks

    def _run_rollback_hooks(self) -> None:
        hooks = self._rollback_hooks()
        todo, hooks[:] = list(hooks), []
        for fn in todo:
            try:
                fn()
            except Exception:
                logging.getLogger(__name__).exception("rollback hook %r failed", fn)

    def close(self) -> None:
        """Close this thread's connections, if open, and the pools' idle ones."""
        for db in self._databases():
            if not db.is_closed():
                db.close()
        self._close_idle()

    def _databases(self) -> list[peewee.Database]:
        extra = self._read_db
        return [self.db] if extra is None or extra is self.db else [self.db, extra]

    def _close_idle(self) -> None:
        for db in self._databases():
            if isinstance(db, PooledDatabase):
                db.close_idle()

    def __repr__(self) -> str:
        return f"<Store {self.config.describe()}>"


def _finish(txn: Any, db: peewee.Database, exc: BaseException | None) -> None:
    """Commit (``exc`` None) or roll back the transaction ``txn`` opened.

    When SQLite already rolled the transaction back itself (a full disk, an
    I/O error), peewee's ROLLBACK fails with "no transaction is active": that
    secondary error is dropped so the real one is what the caller sees, and
    the commit callbacks of the lost transaction are forgotten.
    """
    try:
        if exc is None:
            txn.__exit__(None, None, None)  # COMMIT; on failure peewee tries a ROLLBACK
        else:
            txn.__exit__(type(exc), exc, exc.__traceback__)
    except peewee.PeeweeException as failed:
        if db.in_transaction() or "no transaction" not in str(failed):
            raise
        db._clear_commit_callbacks()  # type: ignore[attr-defined]
        if exc is None:  # the COMMIT itself failed (disk full, I/O error): that is the error
            real: BaseException | None = failed
            while real is not None and "no transaction" in str(real):
                real = real.__context__
            raise (real if isinstance(real, Exception) else failed) from None


def _store_error(exc: BaseException, where: str, readonly: bool) -> BaseException | None:
    """The localchat error for a driver failure that left a session; None to re-raise as is.

    Constraint and programming errors of the caller's own queries pass
    through unchanged; store failures (busy, read-only, full, damaged...) and
    writes in a read session become localchat errors.
    """
    if isinstance(exc, (peewee.IntegrityError, peewee.ProgrammingError)):
        return None
    if isinstance(exc, (peewee.PeeweeException, sqlite3.Error)):
        return translate(exc, where, readonly=readonly)
    return None


def _forget_connections_after_fork() -> None:
    """In a forked child: never use the parent's SQLite connections (that corrupts files).

    peewee's ``dispose()`` drops them without closing them (closing would also
    disturb the parent's); the child opens its own on first use.
    """
    global _stores_lock
    _stores_lock = threading.Lock()
    for store in list(_every_store):
        store.db.dispose()
        if store._read_db is not None and store._read_db is not store.db:
            store._read_db.dispose()
        store._migrate_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _echo_sql() -> None:
    """Print every SQL statement to standard error (``DB_ECHO=1``), logging set up or not.

    peewee gives its logger a ``NullHandler``, so "has it a handler?" is no
    test: a stream handler is added unless the app configured a real one.
    """
    logger = logging.getLogger("peewee")
    logger.setLevel(logging.DEBUG)
    if not any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.StreamHandler())


def _connect(config: StoreConfig, *, readonly: bool = False) -> peewee.Database:
    if config.echo:
        _echo_sql()
    if config.path is not None:
        # A pool, so a session reuses an open connection instead of opening one
        # (connect, pragmas, schema parse) and closing it (the last close of a
        # WAL database checkpoints it): ~0.7 ms per session otherwise.
        # check_same_thread=False: a returned connection may serve another
        # thread next, never two at once.
        # Writers take the write lock when they begin (IMMEDIATE: a read-then-
        # write never fails at once with a busy snapshot); readers begin
        # DEFERRED on query_only connections, so they never wait.
        pragmas = {**SQLITE_PRAGMAS, "query_only": 1} if readonly else SQLITE_PRAGMAS
        db = PooledSqliteDatabase(
            str(config.path),
            pragmas=pragmas,
            lock_type="DEFERRED" if readonly else "IMMEDIATE",
            autoconnect=False,
            check_same_thread=False,
            max_connections=None,
        )
        db.timeout = BUSY_TIMEOUT_SECONDS  # the pool takes `timeout=` for itself
        return db
    assert config.url is not None
    from playhouse import db_url  # here: it imports every backend (~6 ms at start-up)

    try:
        return db_url.connect(
            config.url, autoconnect=False, unquote_user=True, unquote_password=True
        )
    except (ValueError, RuntimeError, ImportError) as exc:
        raise ConfigError(
            f"cannot open {config.describe()}: {exc} (PostgreSQL needs "
            "`pip install 'localchat[postgres]'`)."
        ) from exc


def open_store(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    migrations_dir: str | Path | None = None,
) -> Store:
    """The :class:`Store` for a location (see :mod:`localchat.config`); creates nothing.

    Stores are cached per location, so every caller shares one database object.
    """
    # An explicit absolute path or a URL resolves the same way every time (only
    # the echo variables can change it): skip resolve()'s stat and path work.
    fast: tuple[Any, ...] | None = None
    if url is not None or (db_path is not None and os.path.isabs(db_path)):
        echo = (os.environ.get("LOCALCHAT_DB_ECHO"), os.environ.get("DB_ECHO"))
        where = os.fspath(db_path) if db_path is not None else None
        fast = (where, url, app_name, echo, str(migrations_dir or ""))
        known = _resolved.get(fast)
        if known is not None and _stores.get(known[0]) is known[1]:
            return known[1]
    config = resolve(db_path, url=url, app_name=app_name)
    key = f"{config.describe()}|{migrations_dir or ''}"
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = Store(config, migrations_dir=migrations_dir)
        if fast is not None:
            _resolved[fast] = (key, store)
        return store


def forget_store(store: Store) -> None:
    """Drop ``store`` from :func:`open_store`'s cache (it is not closed; other stores stay).

    The next ``open_store()`` of its location makes a new :class:`Store`.
    """
    with _stores_lock:
        for key in [k for k, v in _stores.items() if v is store]:
            del _stores[key]
        for fast in [k for k, v in _resolved.items() if v[1] is store]:
            del _resolved[fast]


def close_all() -> None:
    """Forget every cached store (closing this thread's connections)."""
    with _stores_lock:
        for store in _stores.values():
            store.close()
        _stores.clear()
        _resolved.clear()


def init_db(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
) -> list[str]:
    """Create or upgrade the store to the newest migration; returns what was applied."""
    return open_store(db_path, url=url, app_name=app_name).upgrade()


def drop_db(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
) -> list[str]:
    """Revert every migration: all localchat tables and data are gone. Returns names.

    A SQLite store is first copied beside itself, as before an upgrade
    (``<file>.pre-revert-<newest migration>.bak``); the document files stay.
    """
    store = open_store(db_path, url=url, app_name=app_name)
    if not store.exists():
        return []
    return store.downgrade(schema.ZERO)


def reset_db(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
) -> list[str]:
    """Drop everything (after a copy, see :func:`drop_db`) and migrate afresh; returns names."""
    drop_db(db_path, url=url, app_name=app_name)
    return init_db(db_path, url=url, app_name=app_name)


def get_session(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    readonly: bool = False,
) -> contextlib.AbstractContextManager[Session]:
    """A transaction on the configured store, upgraded to the newest schema first.

    ``readonly=True`` gives a read session (:meth:`Store.read_session`): a
    snapshot that never waits for a writer and never writes.
    """
    return open_store(db_path, url=url, app_name=app_name).session(readonly=readonly)


@contextlib.contextmanager
def local_session(db_path: str | os.PathLike[str] | None = None) -> Iterator[Session]:
    """A transaction on an explicit SQLite file, or on a fresh temporary store.

    The temporary store (``db_path=None``) and its folder are deleted afterwards.
    """
    if db_path is not None:
        with open_store(db_path).session() as s:
            yield s
        return
    folder = tempfile.mkdtemp(prefix="localchat-")
    store = Store(resolve(Path(folder) / "localchat.db"))
    try:
        with store.session() as s:
            yield s
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)

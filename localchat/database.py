"""Open a store, migrate it, and work in it through sessions.

    from localchat import get_session, init_db, local_session
    init_db()                                   # create or upgrade the per-user store
    with get_session() as s:                    # one transaction
        ...                                     # commit on success, rollback on error
    with local_session() as s:                  # a fresh temporary store
        ...

A *store* is one database (a SQLite file with ``files/`` beside it, or a
PostgreSQL database). A *session* is one transaction on one store in one
thread; it binds localchat's models to that store for its duration, so two
stores can be used one after the other or nested and never mix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
from playhouse.pool import PooledDatabase, PooledSqliteDatabase

from . import schema
from .config import DEFAULT_APP_NAME, StoreConfig, resolve
from .errors import ConfigError
from .models import ALL_MODELS, router

__all__ = [
    "SQLITE_PRAGMAS",
    "BUSY_TIMEOUT_SECONDS",
    "Store",
    "Session",
    "open_store",
    "init_db",
    "drop_db",
    "reset_db",
    "get_session",
    "local_session",
    "close_all",
]

#: Applied to every SQLite connection. WAL with synchronous=NORMAL never
#: corrupts the file; a power cut may lose the last commits (not torn data).
SQLITE_PRAGMAS: dict[str, Any] = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "cache_size": -16000,
}
#: How long a writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_SECONDS = 30.0

_stores: dict[str, Store] = {}
_every_store: weakref.WeakSet[Store] = weakref.WeakSet()  # cached or not, for fork()
_resolved: dict[tuple[Any, ...], tuple[str, Store]] = {}  # open_store() arguments -> store
_stores_lock = threading.Lock()


class Session:
    """One transaction on one store, as handed out by :func:`get_session`.

    Data-access functions take it first: ``create_user(s, email=...)``.
    ``s.db`` is the peewee database, ``s.store`` the :class:`Store`.
    """

    __slots__ = ("store", "db")

    def __init__(self, store: Store) -> None:
        self.store = store
        self.db = store.db

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
        return f"<Session on {self.store.config.describe()}>"


class Store:
    """One database and its file store. Use :func:`open_store`, not the constructor."""

    def __init__(self, config: StoreConfig, *, migrations_dir: str | Path | None = None) -> None:
        self.config = config
        self.migrations_dir = Path(migrations_dir) if migrations_dir else schema.MIGRATIONS_DIR
        self.db = _connect(config)
        _every_store.add(self)
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._local = threading.local()  # per-thread rollback hooks
        #: What code learned about this store's schema (e.g. whether a trigger
        #: exists); forgotten whenever the schema is migrated.
        self.schema_facts: dict[str, Any] = {}

    # -- where --------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.config.path

    @property
    def files_dir(self) -> Path | None:
        return self.config.files_dir

    @property
    def is_sqlite(self) -> bool:
        return self.config.is_sqlite

    def exists(self) -> bool:
        """Whether the database exists (a SQLite file on disk; PostgreSQL: assumed)."""
        return self.path.exists() if self.path is not None else True

    # -- schema -------------------------------------------------------------
    def upgrade(self, target: str | None = None) -> list[str]:
        """Apply pending migrations (through ``target``); returns their names."""
        self.schema_facts.clear()
        try:
            applied = schema.upgrade(self, target)
        finally:
            self._close_idle()  # no connection outlives a migration: the file is settled
        if target is None:
            self._migrated = True
        return applied

    def downgrade(self, target: str | None = None) -> list[str]:
        """Revert the newest migration (or back through ``target``); returns names."""
        self._migrated = False
        self.schema_facts.clear()
        try:
            return schema.downgrade(self, target)
        finally:
            self._close_idle()

    def migration_status(self) -> list[schema.MigrationState]:
        """Every migration, applied or pending. Read-only: never creates the file."""
        return schema.status(self)

    def ensure_migrated(self) -> None:
        """Upgrade once per process; later calls cost nothing."""
        if not self._migrated:
            with self._migrate_lock:
                if not self._migrated:
                    if schema.at_head(self):  # the usual case: one SELECT, no Runner
                        self._migrated = True
                    else:
                        self.upgrade()

    def table_counts(self) -> dict[str, int]:
        """Rows per table of the domain model. Read-only."""
        if not self.exists():
            return {}
        with self.db.connection_context():
            tables = set(self.db.get_tables())
            return {
                m._meta.table_name: m.select().bind(self.db).count()
                for m in ALL_MODELS
                if m._meta.table_name in tables
            }

    # -- sessions -----------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: commit on success, rollback on exception, connection released."""
        self.ensure_migrated()
        with self.db.connection_context():
            outermost = not self.db.in_transaction()
            router.push(self.db)
            try:
                with self.db.atomic():
                    yield Session(self)
            except BaseException:
                if outermost:
                    self._run_rollback_hooks()
                raise
            finally:
                if outermost:
                    self._rollback_hooks().clear()
                router.pop()

    def _rollback_hooks(self) -> list[Callable[[], Any]]:
        return self._local.__dict__.setdefault("rollback_hooks", [])

    def _run_rollback_hooks(self) -> None:
        hooks = self._rollback_hooks()
        todo, hooks[:] = list(hooks), []
        for fn in todo:
            try:
                fn()
            except Exception:
                logging.getLogger(__name__).exception("rollback hook %r failed", fn)

    def close(self) -> None:
        """Close this thread's connection, if open, and the pool's idle ones."""
        if not self.db.is_closed():
            self.db.close()
        self._close_idle()

    def _close_idle(self) -> None:
        if isinstance(self.db, PooledDatabase):
            self.db.close_idle()

    def prepare_files(self) -> None:
        """Create the private folder and the 0600 database file, if missing."""
        if self.path is None:
            return
        make_private_dirs(self.path.parent)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)

    def __repr__(self) -> str:
        return f"<Store {self.config.describe()}>"


def _forget_connections_after_fork() -> None:
    """In a forked child: never use the parent's SQLite connections (that corrupts files).

    peewee's ``dispose()`` drops them without closing them (closing would also
    disturb the parent's); the child opens its own on first use.
    """
    global _stores_lock
    _stores_lock = threading.Lock()
    for store in list(_every_store):
        store.db.dispose()
        store._migrate_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents, each new level 0700."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        try:
            level.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(level, 0o700)


def _connect(config: StoreConfig) -> peewee.Database:
    if config.echo:
        logging.getLogger("peewee").setLevel(logging.DEBUG)
        if not logging.getLogger("peewee").handlers:
            logging.getLogger("peewee").addHandler(logging.StreamHandler())
    if config.path is not None:
        # A pool, so a session reuses an open connection instead of opening one
        # (connect, pragmas, schema parse) and closing it (the last close of a
        # WAL database checkpoints it): ~0.7 ms per session otherwise.
        # check_same_thread=False: a returned connection may serve another
        # thread next, never two at once.
        db = PooledSqliteDatabase(
            str(config.path),
            pragmas=SQLITE_PRAGMAS,
            lock_type="IMMEDIATE",
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
    """Revert every migration: all localchat tables and data are gone. Returns names."""
    store = open_store(db_path, url=url, app_name=app_name)
    if not store.exists():
        return []
    applied = [m for m in store.migration_status() if m.applied]
    return store.downgrade(applied[0].name) if applied else []


def reset_db(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
) -> list[str]:
    """Drop everything and migrate afresh; returns the migrations applied."""
    drop_db(db_path, url=url, app_name=app_name)
    return init_db(db_path, url=url, app_name=app_name)


def get_session(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
) -> contextlib.AbstractContextManager[Session]:
    """A transaction on the configured store, upgraded to the newest schema first."""
    return open_store(db_path, url=url, app_name=app_name).session()


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

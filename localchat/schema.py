"""Schema versions: apply, revert and report the migrations in ``migrations/``.

The work is done by ``playhouse.migrations.Runner``; this module adds what a
desktop store needs around it:

* the whole upgrade is one transaction holding the write lock, so two
  processes opening the same old database migrate it exactly once, and a
  failing migration leaves the database at the version it had before;
* foreign keys are switched off around it (a SQLite table rebuild would
  otherwise cascade-delete child rows) and ``PRAGMA foreign_key_check``
  must pass before the commit;
* a database holding data is copied beside itself (SQLite online backup)
  before anything is applied or reverted; a copy a crash interrupted is
  removed on the next open;
* a database migrated by a newer localchat is refused, untouched.

    from localchat import open_store
    store = open_store("/tmp/chat.db")
    store.upgrade()            # ['0001_initial', ...]
    store.downgrade("0002_full_text_search")   # ends at 0002 (a copy is taken first)
    store.migration_status()   # [MigrationState(name='0001_initial', applied=True, known=True)]
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import peewee

from . import storefile
from .errors import MigrationError, SchemaTooNew
from .storefile import BUSY_TIMEOUT_SECONDS, HISTORY_TABLE

if TYPE_CHECKING:
    from playhouse import migrations as pw_migrations

__all__ = [
    "MIGRATIONS_DIR",
    "HISTORY_TABLE",
    "MigrationState",
    "Migratable",
    "status",
    "check_file",
    "planned_upgrades",
    "upgrade",
    "downgrade",
    "ZERO",
    "backup_path",
    "at_head",
    "shipped",
    "refuse_newer",
    "planned_reverts",
]

#: Where the shipped migration scripts live (the package ``localchat.migrations``).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
if not MIGRATIONS_DIR.is_dir():  # a source checkout: top-level migrations/
    MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: The first migration: reverting it drops every table.
HISTORY_FIRST = "0001_initial"
#: The ``target`` that reverts every migration (``localchat migrate down --target zero``).
ZERO = "zero"
_PG_LOCK_KEY = 0x6C6F63616C63  # "localc": pg_advisory_xact_lock key
_LONG_WAIT_MS = 600_000  # how long a second process waits for a running upgrade


class _Described(Protocol):
    def describe(self) -> str: ...


class Migratable(Protocol):
    """What this module needs of a store (a :class:`~localchat.database.Store` has it).

    Only these attributes are read: the schema never calls back into the store.
    Preparing the file (creating it, WAL) before :func:`upgrade` /
    :func:`downgrade` is the caller's part (``Store.upgrade`` does it).
    """

    @property
    def db(self) -> peewee.Database: ...
    @property
    def path(self) -> Path | None: ...
    @property
    def migrations_dir(self) -> Path: ...
    @property
    def config(self) -> _Described: ...


class MigrationState(NamedTuple):
    name: str
    applied: bool
    known: bool  # False: recorded in the database, but no such file here


def _runner(store: Migratable) -> pw_migrations.Runner:
    # Imported here: a store already at the newest migration never needs it
    # (see at_head), and it costs ~10 ms of every process's start-up.
    from playhouse import migrations as pw_migrations

    return pw_migrations.Runner(store.db, str(store.migrations_dir), table_name=HISTORY_TABLE)


def shipped(store: Migratable) -> set[str]:
    """The migrations shipped in ``store.migrations_dir`` (what the Runner loads)."""
    return {p.stem for p in Path(store.migrations_dir).glob("[0-9]*.py")}


def _exists(store: Migratable) -> bool:
    """Whether the database exists (a SQLite file on disk; PostgreSQL: assumed)."""
    return store.path is None or store.path.exists()


def check_file(store: Migratable) -> str:
    """Raise unless the SQLite file is absent, empty SQLite or localchat's. Read-only.

    See :func:`localchat.storefile.inspect_file`; PostgreSQL: ``"server"``.
    """
    if store.path is None:
        return "server"
    return storefile.inspect_file(store.path, shipped(store), timeout=BUSY_TIMEOUT_SECONDS)


def at_head(store: Migratable) -> bool:
    """Whether every shipped migration is applied and no unknown one is recorded.

    Read-only and cheap (one SELECT, one directory listing): how a process
    opening an up-to-date store skips the full migration machinery. False
    whenever in doubt (no file, no history table), so upgrade() decides.
    """
    if not _exists(store):
        return False
    try:
        with store.db.connection_context():
            cursor = store.db.execute_sql(f'SELECT "name" FROM "{HISTORY_TABLE}"')
            applied = {row[0] for row in cursor.fetchall()}
    except peewee.DatabaseError:
        return False
    return applied == shipped(store)


def status(store: Migratable) -> list[MigrationState]:
    """Every migration, in order. Read-only: a missing database stays missing."""
    if not _exists(store):
        from playhouse import migrations as pw_migrations

        files = pw_migrations.Migration.load_directory(str(store.migrations_dir))
        return [MigrationState(m.name, False, True) for m in files]
    with store.db.connection_context():
        rows = _runner(store).status()
    return [MigrationState(m.name, m.applied is not None, m.path is not None) for m in rows]


def refuse_newer(rows: list[MigrationState], store: Migratable) -> None:
    unknown = [m.name for m in rows if not m.known]
    if unknown:
        raise SchemaTooNew(
            f"{store.config.describe()} was migrated by a newer localchat "
            f"(unknown migrations: {', '.join(unknown)}); upgrade localchat to open it. "
            "The database was not changed."
        )


def backup_path(store: Migratable, before: str) -> Path:
    """Where the newest copy taken before applying migration ``before`` goes.

    ``before`` is ``"revert-<name>"`` for a copy taken before reverting. A
    copy already there is kept, renamed with its time (``.pre-<before>.<UTC
    time>.bak``): taking a copy never replaces an older one.
    """
    assert store.path is not None
    return store.path.with_name(f"{store.path.name}.pre-{before}.bak")


def _keep_older(target: Path) -> None:
    """Rename an existing copy at ``target`` to a name carrying its modification time."""
    try:
        mtime = target.stat().st_mtime
    except FileNotFoundError:
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(mtime))
    for n in range(1000):
        older = target.with_name(f"{target.stem}.{stamp}{'-' + str(n) if n else ''}.bak")
        if not older.exists():
            os.replace(target, older)
            return


def _backup(store: Migratable, before: str) -> Path:
    """Copy the database beside itself with SQLite's online backup API."""
    target = backup_path(store, before)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".partial")
    os.close(fd)  # mkstemp: 0600, a name no other process uses
    partial = Path(name)
    src = sqlite3.connect(str(store.path))
    dst = sqlite3.connect(str(partial))
    try:
        src.backup(dst)
    except BaseException:
        dst.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        dst.close()
        src.close()
    _keep_older(target)
    os.replace(partial, target)
    return target


def planned_upgrades(store: Migratable, target: str | None = None) -> list[str]:
    """The pending migrations (through ``target``); read-only, and it refuses
    another application's file or a newer localchat's schema, touching nothing."""
    check_file(store)
    rows = status(store)
    refuse_newer(rows, store)
    names = [m.name for m in rows]
    if target is not None and target not in names:
        raise MigrationError(f"unknown migration {target!r}; known: {', '.join(names)}.")
    plan: list[str] = []
    for m in rows:
        if not m.applied:
            plan.append(m.name)
        if m.name == target:
            break
    return plan


def upgrade(store: Migratable, target: str | None = None) -> list[str]:
    """Apply every pending migration (or through ``target``, which ends applied), atomically.

    The file must exist in WAL mode (``Store.upgrade`` checks
    :func:`planned_upgrades` and prepares the file first).
    """
    return _locked(store, "up", target)


def downgrade(store: Migratable, target: str | None = None) -> list[str]:
    """Revert the newest migration, or every one after ``target`` (:data:`ZERO`: all).

    ``target`` is the version the store ends at, as for :func:`upgrade`. A
    SQLite store is copied beside itself first (:func:`backup_path`). Like
    :func:`upgrade`, after :func:`planned_reverts` and with the file prepared.
    """
    return _locked(store, "down", target)


def planned_reverts(store: Migratable, target: str | None = None) -> list[str]:
    """The migrations :func:`downgrade` with this ``target`` would revert, newest first."""
    if not _exists(store):
        return []
    check_file(store)
    rows = status(store)
    refuse_newer(rows, store)
    applied = [m.name for m in rows if m.applied]
    if target is not None and target != ZERO and target not in applied:
        raise MigrationError(
            f"{target!r} is not an applied migration; applied: {', '.join(applied) or 'none'} "
            f"(--target {ZERO} reverts them all)."
        )
    return _down_plan(applied, target)


def _down_plan(applied: list[str], target: str | None) -> list[str]:
    if target is None:
        return applied[-1:]
    plan: list[str] = []
    for name in reversed(applied):
        if name == target:
            break
        plan.append(name)
    return plan


def _take_backup(store: Migratable, before: str) -> Path:
    try:
        return _backup(store, before)
    except (OSError, sqlite3.Error) as exc:
        raise MigrationError(
            f"could not copy {store.path} before migrating ({exc}); nothing was applied."
        ) from exc


def _locked(store: Migratable, direction: str, target: str | None) -> list[str]:
    db: Any = store.db
    backup: Path | None = None
    sqlite = isinstance(db, peewee.SqliteDatabase)
    done: list[str] = []
    with db.connection_context():
        if sqlite:
            old_timeout = db.pragma("busy_timeout")
            db.pragma("busy_timeout", _LONG_WAIT_MS)
            db.pragma("foreign_keys", 0)  # outside any transaction, or it is a no-op
        current = "?"
        try:
            with db.atomic():  # BEGIN IMMEDIATE on SQLite: the write lock
                if not sqlite:
                    db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
                runner = _runner(store)
                # Re-read under the lock: another process may have finished first.
                plan, held_data = _plan(runner, direction, target)
                if plan and sqlite and held_data:
                    # Under the lock, so the copy is of the version being changed:
                    # a process that finds nothing left to do never takes one.
                    before = plan[0] if direction == "up" else f"revert-{plan[0]}"
                    backup = _take_backup(store, before)
                for current in plan:
                    step = runner.up(current) if direction == "up" else runner.down(current)
                    done.extend(step)
                if sqlite:
                    _foreign_key_check(db)
        except MigrationError:
            raise
        except Exception as exc:
            where = f" A copy taken before the change is at {backup}." if backup else ""
            raise MigrationError(
                f"migration {current} ({direction}) failed: {type(exc).__name__}: {exc}. "
                f"Nothing was applied; the database is at the version it had before.{where}"
            ) from exc
        finally:
            if sqlite:
                db.pragma("foreign_keys", 1)
                db.pragma("busy_timeout", old_timeout)
    return done


def _plan(
    runner: pw_migrations.Runner, direction: str, target: str | None
) -> tuple[list[str], bool]:
    """The migrations to run, and whether any was applied before (the store holds data)."""
    rows = runner.status()
    applied = [m.name for m in rows if m.applied is not None]
    plan: list[str] = []
    if direction == "up":
        if target is not None and target not in {m.name for m in rows}:
            raise MigrationError(f"unknown migration {target!r}.")
        for m in rows:
            if m.applied is None and m.path is not None:
                plan.append(m.name)
            if m.name == target:
                break
        return plan, bool(applied)
    return _down_plan(applied, target), bool(applied)


def _foreign_key_check(db: Any) -> None:
    broken = db.execute_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise MigrationError(
            f"the migration left {len(broken)} rows with dangling foreign keys "
            f"(tables: {', '.join(tables)}); nothing was applied."
        )

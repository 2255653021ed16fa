"""Every error localchat raises, under one root.

    from localchat.errors import LocalchatError, NotFound
    try:
        ...
    except NotFound as exc:       # one kind of failure
        ...
    except LocalchatError as exc: # anything localchat refused
        print("error:", exc)

Driver errors (peewee's ``IntegrityError``, ``OperationalError``, sqlite3's
and psycopg2's, a full disk, a read-only folder) are re-raised as one of these
at the library boundary, with the original kept as ``__cause__``:
:func:`translate` is that boundary's one rule.
"""

from __future__ import annotations

import errno
import sqlite3

__all__ = [
    "LocalchatError",
    "ConfigError",
    "NotFound",
    "ValidationError",
    "Conflict",
    "MigrationError",
    "SchemaTooNew",
    "NoSession",
    "FileStoreError",
    "Unsupported",
    "StoreError",
    "StoreBusy",
    "StoreReadOnly",
    "StoreCorrupt",
    "StoreFull",
    "ForeignDatabase",
    "ReadOnlySession",
    "SessionClosed",
    "OutsideStore",
    "ArchiveError",
    "ModelError",
]


class LocalchatError(Exception):
    """Root of every error localchat raises on purpose."""


class ConfigError(LocalchatError):
    """The store's location or URL could not be resolved or is malformed."""


class NotFound(LocalchatError):
    """A record that must exist does not."""


class ValidationError(LocalchatError, ValueError):
    """An argument has a value localchat does not accept."""


class Conflict(LocalchatError):
    """A uniqueness rule would be broken (e.g. an e-mail already in use)."""


class MigrationError(LocalchatError):
    """A schema migration could not be planned or applied."""


class SchemaTooNew(MigrationError):
    """The database was migrated by a newer localchat than this one."""


class NoSession(LocalchatError):
    """A query ran outside ``get_session()`` / ``local_session()``."""


class FileStoreError(LocalchatError):
    """The document file store could not be read or written."""


class Unsupported(LocalchatError):
    """The store's backend cannot do this (e.g. full-text search off SQLite FTS5)."""


class StoreError(LocalchatError):
    """The database could not be used: busy, read-only, damaged, full or unreachable.

    The message names the database and what to do; the driver's error is kept
    as ``__cause__``.
    """


class StoreBusy(StoreError):
    """Another session held the write lock longer than the busy timeout."""


class StoreReadOnly(StoreError):
    """The database file or its folder cannot be written (permissions, read-only disk)."""


class StoreCorrupt(StoreError):
    """The file is not a SQLite database, or its contents are damaged."""


class StoreFull(StoreError):
    """The disk (or quota) is full: nothing of the failed write was kept."""


class ForeignDatabase(StoreError):
    """The file is another application's database (or not localchat's); left untouched."""


class ReadOnlySession(LocalchatError):
    """A write was attempted inside a read session (``get_session(readonly=True)``)."""


class SessionClosed(NoSession):
    """A session was used after its ``with`` block ended, or from another thread."""


class OutsideStore(FileStoreError):
    """A path lies outside every folder this store owns; localchat will not read or delete it."""


class ArchiveError(ValidationError):
    """A backup archive is not one localchat can restore (damaged, hostile or not a backup)."""


class ModelError(LocalchatError):
    """A model call failed (connection refused, HTTP error, a reply that is not JSON)."""


# -- the boundary -------------------------------------------------------------

_RESTORE_HINT = (
    "restore it from a backup (localchat keeps one beside it, named "
    "<file>.pre-<migration>.bak, before every schema change)"
)


def translate(exc: BaseException, where: str, *, readonly: bool = False) -> LocalchatError | None:
    """The localchat error for a driver or OS failure on the store ``where``; None if none fits.

    ``where`` names the database (its path, or the masked URL) so the message
    can say which file is concerned; ``readonly`` tells that the failure
    happened in a read session. The caller raises the result ``from exc``.
    Errors localchat raises itself, and programming errors, pass through (None).
    """
    if isinstance(exc, LocalchatError):
        return None
    text = " ".join(str(exc).split())
    low = text.lower()
    name = type(exc).__name__
    if name == "ImproperlyConfigured" or "driver not installed" in low:
        return ConfigError(
            f"cannot open {where}: {text} PostgreSQL needs `pip install 'localchat[postgres]'`."
        )
    if name == "InterfaceError" and ("not opened" in low or "closed" in low):
        return SessionClosed(
            f"the session on {where} is closed: it was used after its `with` block ended "
            "or from another thread; open a new one with get_session()."
        )
    if isinstance(exc, OSError) and not _is_driver_error(exc):
        return _os_error(exc, where)
    if not _is_driver_error(exc):
        return None
    if "read-only transaction" in low or (readonly and "readonly database" in low):
        return ReadOnlySession(
            f"a write was attempted in a read session on {where}; use get_session() "
            f"(not readonly) to change data. ({text})"
        )
    if "database is locked" in low or "database table is locked" in low or "lock timeout" in low:
        return StoreBusy(
            f"{where} is busy: another session (in this or another process) held the write "
            f"lock for longer than the wait allows; try again. ({text})"
        )
    if "readonly database" in low or "read-only file system" in low:
        return StoreReadOnly(
            f"{where} cannot be written: the file or its folder is read-only (permissions or "
            f"a read-only disk). Make both writable, or copy the store elsewhere. ({text})"
        )
    if "unable to open database" in low:
        return StoreError(
            f"cannot open {where}: the file or its folder cannot be read or created "
            f"(missing folder, permissions, or a read-only folder that cannot hold the "
            f"-wal/-shm files SQLite needs beside it). ({text})"
        )
    if "not a database" in low:
        return StoreCorrupt(
            f"{where} is not a SQLite database (or is encrypted); check the path given. ({text})"
        )
    if "malformed" in low or "corrupt" in low:
        return StoreCorrupt(f"{where} is damaged ({text}); {_RESTORE_HINT}.")
    if "disk is full" in low or "no space left" in low or "quota" in low:
        return StoreFull(
            f"the disk holding {where} is full: the write was not kept. Free some space "
            f"and try again. ({text})"
        )
    if "disk i/o error" in low or "i/o error" in low:
        return StoreError(
            f"reading or writing {where} failed at the disk (disk I/O error: a full or failing "
            f"disk, or a file changed behind SQLite's back). Nothing of the failed write was "
            f"kept; check free space and the disk. ({text})"
        )
    if "could not connect" in low or "connection refused" in low or "server closed" in low:
        return StoreError(f"cannot reach {where}: {text}")
    return StoreError(f"{where}: {name}: {text}")


def _is_driver_error(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    return (
        isinstance(exc, sqlite3.Error)
        or module.startswith(("peewee", "psycopg", "sqlite3", "asyncpg"))
        or any(c.__module__.startswith(("peewee", "psycopg")) for c in type(exc).__mro__[1:-1])
    )


def _os_error(exc: OSError, where: str) -> LocalchatError:
    what = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC or exc.errno == getattr(errno, "EDQUOT", -1):
        return StoreFull(f"the disk holding {where} is full ({what}{reason}); free some space.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreReadOnly(f"{what}{reason} (the store {where}): check its permissions.")
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return StoreError(f"{what}{reason}: a part of the path of {where} is a file, not a folder.")
    return StoreError(f"{what}{reason} (the store {where}).")

"""Every error localchat raises, under one root.

    from localchat.errors import LocalchatError, NotFound
    try:
        ...
    except NotFound as exc:       # one kind of failure
        ...
    except LocalchatError as exc: # anything localchat refused
        print("error:", exc)

Driver errors (peewee's ``IntegrityError``, ``OperationalError``...) are
re-raised as one of these at the library boundary, with the original kept as
``__cause__``.
"""

from __future__ import annotations

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

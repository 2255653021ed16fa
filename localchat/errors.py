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

"""Where the store lives: one function answers it.

Resolution order, first match wins:

1. an explicit ``db_path`` or ``url`` argument;
2. ``LOCALCHAT_DATABASE_URL``, then ``LOCALCHAT_DB_PATH``;
3. the unprefixed ``DATABASE_URL``, then ``DB_PATH``, then ``DB_HOST`` (with
   ``DB_PORT``, ``DB_NAME``, ``DB_USER``, ``DB_PASSWORD``) for PostgreSQL;
4. ``<platformdirs.user_data_dir(app_name)>/localchat.db``.

    >>> from localchat.config import resolve
    >>> cfg = resolve(db_path="/tmp/chat/app.db")
    >>> cfg.path.name, cfg.files_dir.name, cfg.is_sqlite
    ('app.db', 'app.db-files', True)

A SQLite store keeps its documents' files in ``<database file name>-files/``
beside the database (``chat.db`` -> ``chat.db-files/``), as SQLite keeps its
``-wal`` and ``-journal`` siblings: one folder per database, never shared.
Stores made before that kept them in ``files/`` beside the database
(``legacy_files_dir``), which may be shared and is never cleaned.

``LOCALCHAT_DB_ECHO`` / ``DB_ECHO`` (``1``, ``true``, ``yes``) log every SQL
statement through the ``peewee`` logger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from .errors import ConfigError

__all__ = [
    "DEFAULT_APP_NAME",
    "DB_FILENAME",
    "ENV_VARS",
    "StoreConfig",
    "resolve",
    "default_db_path",
    "files_dir_for",
    "legacy_files_dir_for",
]

DEFAULT_APP_NAME = "localchat"
DB_FILENAME = "localchat.db"

#: Every environment variable that ``resolve`` reads, in priority order.
ENV_VARS = (
    "LOCALCHAT_DATABASE_URL",
    "LOCALCHAT_DB_PATH",
    "DATABASE_URL",
    "DB_PATH",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "LOCALCHAT_DB_ECHO",
    "DB_ECHO",
)

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class StoreConfig:
    """A resolved store location.

    ``path`` is set for SQLite (the database file), ``url`` for PostgreSQL.
    ``source`` says which rule chose it (``"argument"``, an environment
    variable's name, or ``"platform"``), so ``localchat status`` can explain.
    """

    path: Path | None
    url: str | None
    source: str
    app_name: str = DEFAULT_APP_NAME
    echo: bool = False

    @property
    def is_sqlite(self) -> bool:
        return self.path is not None

    @property
    def files_dir(self) -> Path | None:
        """The store's own file folder: ``<database file name>-files/`` beside it."""
        return files_dir_for(self.path) if self.path is not None else None

    @property
    def legacy_files_dir(self) -> Path | None:
        """``files/`` beside the database: where stores before 0005 kept files."""
        return legacy_files_dir_for(self.path) if self.path is not None else None

    def describe(self) -> str:
        """The path, or the URL with its password masked."""
        if self.path is not None:
            return str(self.path)
        assert self.url is not None
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.url


def files_dir_for(db_file: str | os.PathLike[str]) -> Path:
    """``chat.db`` -> ``chat.db-files``: the file folder of the database ``db_file``."""
    path = Path(db_file)
    return path.with_name(path.name + "-files")


def legacy_files_dir_for(db_file: str | os.PathLike[str]) -> Path:
    """``files/`` beside ``db_file``: read-only fallback for documents of old stores."""
    return Path(db_file).parent / "files"


def default_db_path(app_name: str = DEFAULT_APP_NAME) -> Path:
    """``<user data dir>/<app_name>/localchat.db``; creates nothing."""
    _check_app_name(app_name)
    import platformdirs  # here: only the default location needs it (~3 ms at start-up)

    return Path(platformdirs.user_data_dir(app_name, appauthor=False)) / DB_FILENAME


def resolve(
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    env: dict[str, str] | None = None,
) -> StoreConfig:
    """Resolve where the store lives, without touching the disk."""
    environ = os.environ if env is None else env
    echo = any(
        environ.get(k, "").strip().lower() in _TRUE for k in ("LOCALCHAT_DB_ECHO", "DB_ECHO")
    )
    if db_path is not None and url is not None:
        raise ConfigError("give db_path or url, not both.")
    if db_path is not None:
        return _from_path(os.fspath(db_path), "argument", app_name, echo)
    if url is not None:
        return _from_url(url, "argument", app_name, echo)
    for name in ("LOCALCHAT_DATABASE_URL", "LOCALCHAT_DB_PATH", "DATABASE_URL", "DB_PATH"):
        value = environ.get(name, "").strip()
        if value:
            if name.endswith("URL"):
                return _from_url(value, name, app_name, echo)
            return _from_path(value, name, app_name, echo)
    host = environ.get("DB_HOST", "").strip()
    if host:
        user = quote(environ.get("DB_USER", "postgres"), safe="")
        password = environ.get("DB_PASSWORD", "")
        auth = user + (":" + quote(password, safe="") if password else "")
        port = environ.get("DB_PORT", "5432").strip() or "5432"
        name = environ.get("DB_NAME", app_name).strip() or app_name
        pg_url = f"postgresql://{auth}@{host}:{port}/{name}"
        return _from_url(pg_url, "DB_HOST", app_name, echo)
    return StoreConfig(default_db_path(app_name), None, "platform", app_name, echo)


def _check_app_name(app_name: str) -> None:
    if not app_name or app_name in {".", ".."} or any(c in app_name for c in "/\\\0"):
        raise ConfigError(
            f"app_name {app_name!r} must be a plain folder name such as 'my-chat-app'."
        )


def _from_path(value: str, source: str, app_name: str, echo: bool) -> StoreConfig:
    if "\0" in value:
        raise ConfigError(f"database path from {source} contains a NUL byte.")
    if value == ":memory:":
        raise ConfigError(
            f"{source}: ':memory:' is not supported; use local_session() for a temporary store."
        )
    path = Path(value).expanduser()
    if path.exists() and path.is_dir():
        raise ConfigError(
            f"database path {str(path)!r} (from {source}) is a directory, not a file."
        )
    return StoreConfig(path.absolute(), None, source, app_name, echo)


def _from_url(value: str, source: str, app_name: str, echo: bool) -> StoreConfig:
    scheme, sep, rest = value.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigError(
            f"{source}={value!r} is not a URL; use sqlite:////absolute/path.db, "
            "sqlite:///relative.db or postgresql://user:password@host:5432/name."
        )
    if scheme in {"sqlite", "sqlite+pool"}:
        if not rest.startswith("/") or rest == "/" or rest == "/:memory:":
            raise ConfigError(
                f"{source}={value!r} names no database file (sqlite://x.db with two slashes "
                "would be an in-memory database). Use sqlite:///relative.db or "
                "sqlite:////absolute/path.db."
            )
        return _from_path(unquote(rest[1:].split("?", 1)[0]), source, app_name, echo)
    if scheme in {"postgres", "postgresql", "postgres+pool", "postgresql+pool", "psycopg3"}:
        parts = urlsplit(value)
        if not parts.hostname and not parts.path.strip("/"):
            raise ConfigError(f"{source}: PostgreSQL URL {value!r} names no host or database.")
        return StoreConfig(None, value, source, app_name, echo)
    raise ConfigError(
        f"{source}: unsupported database URL scheme {scheme!r}; "
        "use sqlite:///path.db or postgresql://user:password@host/name."
    )

"""What a SQLite file must be before localchat uses it, and how a new one comes to be.

    from localchat.storefile import inspect_file
    inspect_file(path, {"0001_initial"})   # "missing", "empty" or "localchat"
                                           # ForeignDatabase / StoreCorrupt otherwise

localchat writes only to files it created or that already hold its schema
history. Another application's database (tables but no localchat history, or
a history of migrations localchat never shipped), a zero-byte file and a file
that is not SQLite are refused, and every check here only reads: the file
stays byte-identical. A new store is made as a private temporary file already
in WAL mode and linked into place, so no other process ever sees a
half-made file at the store's path. WAL is switched on once, by a writer,
waiting for other processes like any write instead of failing at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .errors import ForeignDatabase, StoreBusy, StoreCorrupt, translate

__all__ = [
    "HISTORY_TABLE",
    "BUSY_TIMEOUT_SECONDS",
    "make_private_dirs",
    "inspect_file",
    "create_file",
    "ensure_wal",
    "retry_while_locked",
    "remove_partial_backups",
]

HISTORY_TABLE = "schema_migration"
#: How long a writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_SECONDS = 30.0
T = TypeVar("T")
_NEW_PREFIX = ".new-"


def _connect_plain(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that sets nothing: opening and reading never write to the file."""
    return sqlite3.connect(str(path), timeout=timeout, isolation_level=None)


def inspect_file(path: Path, known: set[str], *, timeout: float = 30.0) -> str:
    """``"missing"``, ``"empty"`` (a SQLite file with no table) or ``"localchat"``.

    Raises :class:`ForeignDatabase` for a file that is not localchat's (naming
    its tables) and :class:`StoreCorrupt` for one that is not SQLite. Read-only.
    """
    # Never open() the file itself: closing any descriptor of it drops every
    # POSIX lock this process's SQLite connections hold on it, and another
    # process could then think itself the last user and reset the WAL.
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        raise translate(exc, str(path)) or exc from exc
    if size == 0:
        raise ForeignDatabase(
            f"{path} is an empty (zero-byte) file that localchat did not create; it was left "
            "untouched. Remove it, or choose another path, and localchat will create its store."
        )
    try:
        conn = _connect_plain(path, timeout)
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            history: list[str] = []
            if HISTORY_TABLE in tables:
                history = [r[0] for r in conn.execute(f'SELECT "name" FROM "{HISTORY_TABLE}"')]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreCorrupt(
                f"{path} is not a SQLite database (or is encrypted); it was left untouched. "
                "Check the path given."
            ) from exc
        raise translate(exc, str(path)) or exc from exc
    if not tables:
        return "empty"
    if HISTORY_TABLE not in tables:
        more = f" and {len(tables) - 12} more" if len(tables) > 12 else ""
        shown = ", ".join(tables[:12]) + more
        raise ForeignDatabase(
            f"{path} is another application's database (tables: {shown}) without localchat's "
            f"schema history; localchat leaves it untouched. Give localchat a path of its own."
        )
    if history and not set(history) & known:
        raise ForeignDatabase(
            f"{path} has a {HISTORY_TABLE} table recording migrations localchat never shipped "
            f"({', '.join(sorted(history)[:5])}): another application's history. localchat "
            "leaves it untouched; give localchat a path of its own."
        )
    return "localchat"


def create_file(path: Path, *, timeout: float = 30.0) -> bool:
    """Create an empty SQLite database in WAL mode at ``path`` (0600); False if one appeared first.

    The file is made under a private temporary name in the same folder and
    linked into place, so ``path`` is either absent or a valid database.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}{_NEW_PREFIX}", dir=path.parent)
    os.close(fd)  # mkstemp: 0600
    temp = Path(name)
    try:
        conn = _connect_plain(temp, timeout)
        try:
            conn.execute("PRAGMA journal_mode = wal")  # writes the header; persists in the file
        finally:
            conn.close()  # the last close checkpoints: no -wal/-shm left
        try:
            os.link(temp, path)  # never replaces a file another process made meanwhile
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links
            if path.exists():
                return False
            os.replace(temp, path)
        return True
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def ensure_wal(path: Path, *, timeout: float = 30.0) -> None:
    """Switch ``path`` to WAL unless it is; waits up to ``timeout`` for other connections.

    Changing the journal mode needs the file to itself, and SQLite answers
    "database is locked" at once instead of waiting: retry until ``timeout``.
    """
    conn = _connect_plain(path, timeout)

    def switch() -> None:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.execute("PRAGMA journal_mode = wal")

    try:
        retry_while_locked(
            switch,
            path,
            timeout,
            f"{path} is busy: could not switch it to WAL within {timeout:g} s "
            "because other connections kept it open; try again.",
        )
    finally:
        conn.close()


def retry_while_locked(attempt: Callable[[], T], path: Path, timeout: float, busy: str) -> T:
    """``attempt()``, retried while SQLite says "locked"/"busy"; StoreBusy(``busy``) at ``timeout``.

    For statements SQLite refuses at once instead of waiting (changing the
    journal mode needs the file to itself). Other errors are translated.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise translate(exc, str(path)) or exc from exc
            if time.monotonic() >= deadline:
                raise StoreBusy(busy) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def remove_partial_backups(path: Path) -> list[Path]:
    """Remove copies a crash interrupted (``<db>.pre-*.bak.*.partial`` and their journals).

    Call it only while holding the store's write lock: copies are made under
    that lock, so none is in progress then. Returns what was removed.
    """
    removed = []
    stale = time.time() - 60  # a new file being made right now is younger than this
    for pattern in (f"{path.name}.pre-*.partial", f"{path.name}.pre-*.partial-journal",
                    f".{path.name}{_NEW_PREFIX}*"):  # fmt: skip
        for leftover in path.parent.glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                if pattern.startswith(".") and leftover.stat().st_mtime > stale:
                    continue
                leftover.unlink()
                removed.append(leftover)
    return removed


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

"""Portable backup and restore: one zip holding a consistent snapshot and every stored file.

    from localchat.backup import backup_store, restore_store
    result = backup_store("/tmp/chat-backup.zip", "/tmp/chat.db")   # while the app writes
    print(result.archive, result.files, result.total_bytes)
    restored = restore_store("/tmp/chat-backup.zip", "/tmp/other.db")
    print(restored.kept)      # the store it replaced, kept beside it (None: there was none)

The archive (``format_version`` 1) holds ``database.sqlite``, a snapshot of the
database taken in a read session with SQLite's online backup API (writers go
on meanwhile; a live WAL file is never copied), ``files/<stored name>`` for
every file a document of the snapshot stores (the store's own
``<db>-files/`` folder, ``files/`` of stores made before migration 0005, and
``storage_dir`` folders), and ``manifest.json``: format and schema version,
``created_at``, the store identity and the size and sha256 of every entry.

Restore checks everything before it touches the store: only the names above
(no ``../``, no absolute names), sizes as declared (no zip bomb; at most
``max_bytes`` in all, and what the disk can hold), every sha256, ``PRAGMA
integrity_check`` and localchat's schema history on the snapshot. A snapshot
from an older localchat is upgraded through the migrations; one from a newer
localchat is refused (:class:`~localchat.errors.SchemaTooNew`). The restored
store keeps the snapshot's identity and its folder carries that identity's
marker, so it owns its files; documents whose file was in a ``storage_dir``
get it in the store's own folder (their ``path`` is cleared). Then
:mod:`localchat.store_swap` puts it in place with renames, keeping the old
store beside it as ``<db>.pre-restore-<time>.bak`` (+ ``-files``); a restore
killed half-way is finished or undone on the next open.

PostgreSQL stores are refused (:class:`~localchat.errors.Unsupported`): back
them up with ``pg_dump`` and restore with ``pg_restore``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from . import __version__, schema, store_swap
from .config import DEFAULT_APP_NAME, files_dir_for, legacy_files_dir_for, resolve
from .database import Store, make_private_dirs, open_store
from .errors import (
    ArchiveError,
    Conflict,
    FileStoreError,
    NotFound,
    SchemaTooNew,
    StoreFull,
    Unsupported,
    translate,
)
from .files import CHUNK_SIZE, is_stored_name, mark_folder, open_stored
from .models.documents import stored_file_location

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_RESTORE_BYTES",
    "Progress",
    "BackupResult",
    "RestoreResult",
    "backup_store",
    "restore_store",
    "default_archive_name",
]

FORMAT = "localchat-backup"
FORMAT_VERSION = 1
#: restore_store refuses archives that would unpack to more than this (``max_bytes``).
MAX_RESTORE_BYTES = 1 << 40
MANIFEST = "manifest.json"
DATABASE = "database.sqlite"
_MAX_MANIFEST = 64 << 20
_ZIP64_FROM = 1 << 31
_STEP_PAGES = 2048  # pages the online backup copies per step (8 MB of 4 KB pages)
_FLUSH_EVERY = 8 << 20  # bytes written between two flushes to disk
_flush = getattr(os, "fdatasync", os.fsync)

#: ``progress(done_bytes, total_bytes, done_items, total_items)``, called as work advances.
Progress = Callable[[int, int, int, int], None]


@dataclass
class BackupResult:
    """What :func:`backup_store` wrote."""

    archive: str
    database: str
    schema_version: str
    created_at: str
    database_bytes: int
    files: int
    file_bytes: int
    #: Files the snapshot names that were gone before they could be copied.
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        return self.database_bytes + self.file_bytes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_bytes": self.total_bytes}


@dataclass
class RestoreResult:
    """What :func:`restore_store` did."""

    archive: str
    database: str
    files_dir: str
    #: The replaced store, kept beside it (its folder: the same name plus ``-files``).
    kept: str | None
    schema_version: str
    #: Migrations applied to bring an older snapshot up to date.
    upgraded: list[str]
    files: int
    file_bytes: int
    database_bytes: int
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_archive_name(now: datetime.datetime | None = None) -> str:
    """``localchat-backup-20261130T174500Z.zip``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"localchat-backup-{now.strftime('%Y%m%dT%H%M%SZ')}.zip"


def _sqlite_store(db_path: Any, url: str | None, app_name: str, verb: str) -> Store:
    store = open_store(db_path, url=url, app_name=app_name)
    if not store.is_sqlite or store.path is None:
        raise Unsupported(
            f"{verb} works on SQLite stores; {store.config.describe()} is PostgreSQL: use "
            "`pg_dump -Fc DBNAME > store.dump` and `pg_restore -d DBNAME store.dump` (and copy "
            "the storage_dir folders its documents use)."
        )
    return store


# -- backup --------------------------------------------------------------------
def _target(archive: str | os.PathLike[str] | None) -> Path:
    where = Path(archive) if archive is not None else Path.cwd()
    if where.is_dir():
        where = where / default_archive_name()
    if os.path.lexists(where):
        raise Conflict(f"{where} already exists; choose another name (a backup never replaces).")
    if not where.parent.is_dir():
        raise NotFound(f"the folder {where.parent} does not exist.")
    return where.absolute()


def _snapshot(store: Store, into: Path) -> tuple[list[tuple[str, Path]], list[str], str]:
    """Copy the database to ``into`` in one read session; its files and schema history.

    The file list, the history and the copy all come from the session's one
    snapshot, so they agree with each other whatever writers do meanwhile.
    """
    with store.read_session() as s:
        conn = s.db.connection()
        history = [
            r[0] for r in conn.execute(f'SELECT "name" FROM "{schema.HISTORY_TABLE}" ORDER BY "id"')
        ]
        own, legacy = store.files_dir, legacy_files_dir_for(store.path or "")
        rows = conn.execute(
            'SELECT "stored_name", "path" FROM "document" WHERE "stored_name" IS NOT NULL'
        )
        files: dict[str, Path] = {}
        for name, recorded in rows:
            where = stored_file_location(name, recorded, own, legacy)
            if where is not None:
                files.setdefault(name, where)
        identity = conn.execute('SELECT "uuid" FROM "store_identity" LIMIT 1').fetchone()
        dst = sqlite3.connect(str(into), isolation_level=None)
        fd = os.open(into, os.O_RDONLY)  # our private copy: flushed to disk as it grows
        try:
            # In steps, all inside this read transaction, so all of its snapshot
            # (a held read transaction never sees, nor restarts on, other writes).
            # Flushing after each step keeps the OS from piling up a gigabyte of
            # dirty pages that the app's next fsync would have to wait behind.
            conn.backup(dst, pages=_STEP_PAGES, progress=lambda *_: _flush(fd))
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            dst.close()
            os.close(fd)
    _checkpoint(store)
    return sorted(files.items()), history, str(identity[0]) if identity else ""


def _checkpoint(store: Store) -> None:
    """Move what the WAL gathered while the snapshot was held into the database.

    A checkpoint cannot pass a reader's snapshot, so during a long backup the
    WAL grows; left alone, the app's next commit would checkpoint all of it
    itself (a pause of a second for a gigabyte snapshot). A PASSIVE
    checkpoint here does that work on this thread and never waits for, nor
    blocks, a writer.
    """
    conn = sqlite3.connect(str(store.path), timeout=1.0, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.OperationalError:
        pass  # another checkpoint is running: it does the same work
    finally:
        conn.close()


def _compresses(head: bytes) -> bool:
    """Whether deflating is worth it: not for bytes already compressed (PDF, images, zips)."""
    sample = head[: 256 << 10]
    return len(zlib.compress(sample, 1)) < 0.9 * len(sample)


def _copy_into(
    zf: zipfile.ZipFile, name: str, src: IO[bytes], size: int, tick: Callable[[int], None]
) -> dict[str, Any]:
    """Copy ``src`` into the archive as ``name``, hashing it and flushing every 64 MB."""
    digest, done = hashlib.sha256(), 0
    chunk = src.read(CHUNK_SIZE)
    entry = zipfile.ZipInfo(name, time.gmtime()[:6])
    entry.external_attr = 0o600 << 16
    if chunk and _compresses(chunk):
        entry.compress_type = zipfile.ZIP_DEFLATED
        for attr in ("_compresslevel", "compress_level"):  # Python 3.11-3.12, 3.13+
            with contextlib.suppress(AttributeError):
                setattr(entry, attr, 1)
    with zf.open(entry, "w", force_zip64=size >= _ZIP64_FROM) as out:
        while chunk:
            digest.update(chunk)
            out.write(chunk)
            done += len(chunk)
            tick(len(chunk))
            if done % _FLUSH_EVERY < len(chunk) and zf.fp is not None:
                zf.fp.flush()
                _flush(zf.fp.fileno())
            chunk = src.read(CHUNK_SIZE)
    return {"name": name, "size": done, "sha256": digest.hexdigest()}


def _publish(partial: Path, target: Path) -> None:
    """Give the finished archive its name, never replacing a file that appeared meanwhile."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise Conflict(f"{target} appeared while the backup ran; it was left alone.") from None
    except OSError:  # a file system without hard links
        if os.path.lexists(target):
            raise Conflict(f"{target} appeared while the backup ran; it was left alone.") from None
        os.replace(partial, target)
    store_swap.fsync_dir(target.parent)


def backup_store(
    archive: str | os.PathLike[str] | None = None,
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    progress: Progress | None = None,
) -> BackupResult:
    """Write one zip archive of the store: a consistent snapshot and every stored file.

    ``archive`` is the file to write (never replaced: :class:`Conflict` if it
    exists), or a folder to write ``localchat-backup-<UTC time>.zip`` in
    (default: the working directory). The database is copied in a read
    session, so the app's writers are never blocked. A file a later commit
    deleted before it could be copied is listed in ``skipped``. The archive is
    written under a temporary name and renamed into place when complete.
    """
    started = time.monotonic()
    store = _sqlite_store(db_path, url, app_name, "backup")
    if not store.exists():
        raise NotFound(f"there is no store at {store.config.describe()} to back up.")
    target = _target(archive)
    fd, partial_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
    )
    os.close(fd)
    partial, snap = Path(partial_name), Path(partial_name + ".db")
    try:
        files, history, identity = _snapshot(store, snap)
        sizes = {}
        for name, where in files:
            with contextlib.suppress(OSError):
                sizes[name] = os.lstat(where).st_size
        db_size = snap.stat().st_size
        total, count = db_size + sum(sizes.values()), 1 + len(files)
        done = [0, 0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total, done[1], count)

        entries, skipped = [], []
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            with open(snap, "rb") as fh:  # our own snapshot: no connection is open on it
                entries.append(_copy_into(zf, DATABASE, fh, db_size, tick))
            done[1] += 1
            for name, where in files:
                try:
                    src = open_stored(where)
                except FileStoreError as exc:  # deleted after the snapshot, or not a file
                    skipped.append({"name": name, "path": str(where), "reason": str(exc)})
                    continue
                with src:
                    entries.append(_copy_into(zf, f"files/{name}", src, sizes.get(name, 0), tick))
                done[1] += 1
                tick(0)
            version = history[-1] if history else "none"
            created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "app": f"localchat {__version__}",
                "created_at": created,
                "schema_version": version,
                "migrations": history,
                "store_identity": identity,
                "entries": entries,
                "skipped": skipped,
            }
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
        fd = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        _publish(partial, target)
    except OSError as exc:
        raise translate(exc, str(target)) or exc from exc
    finally:
        for leftover in (partial, snap, Path(f"{snap}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    file_entries = entries[1:]
    return BackupResult(
        archive=str(target),
        database=store.config.describe(),
        schema_version=version,
        created_at=created,
        database_bytes=entries[0]["size"],
        files=len(file_entries),
        file_bytes=sum(e["size"] for e in file_entries),
        skipped=skipped,
        seconds=round(time.monotonic() - started, 3),
    )


# -- restore -------------------------------------------------------------------
def _bad(archive: Path, why: str) -> ArchiveError:
    return ArchiveError(
        f"{archive} is not a backup localchat can restore: {why}. Nothing was changed."
    )


def _read_manifest(archive: Path, zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise _bad(archive, f"it has no {MANIFEST}") from None
    if info.file_size > _MAX_MANIFEST:
        raise _bad(archive, f"its {MANIFEST} is {info.file_size} bytes")
    with zf.open(info) as fh:
        raw = fh.read(_MAX_MANIFEST + 1)
    if len(raw) > _MAX_MANIFEST:
        raise _bad(archive, f"its {MANIFEST} is larger than declared")
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(archive, f"its {MANIFEST} is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _bad(archive, f"its {MANIFEST} does not say format {FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _bad(archive, f"format_version {version!r} is not a version")
    if version > FORMAT_VERSION:
        raise _bad(
            archive,
            f"it is format version {version}, this localchat reads up to {FORMAT_VERSION}; "
            "upgrade localchat",
        )
    return manifest


def _entry_ok(name: Any) -> bool:
    if name == DATABASE:
        return True
    return isinstance(name, str) and name.startswith("files/") and is_stored_name(name[6:])


def _plan(archive: Path, zf: zipfile.ZipFile, max_bytes: int) -> list[dict[str, Any]]:
    """The manifest's entries, checked against the zip's own directory; nothing extracted."""
    manifest = _read_manifest(archive, zf)
    entries = manifest.get("entries")
    if not isinstance(entries, list) or not entries:
        raise _bad(archive, "its manifest lists no entries")
    names = [i.filename for i in zf.infolist()]
    for name in names:
        if name != MANIFEST and not _entry_ok(name):
            raise _bad(archive, f"it holds an entry named {name!r} (only {DATABASE} and "
                       "files/<stored name> may be restored)")  # fmt: skip
    if len(set(names)) != len(names):
        raise _bad(archive, "it holds two entries of one name")
    listed: dict[str, dict[str, Any]] = {}
    for e in entries:
        ok = isinstance(e, dict) and _entry_ok(e.get("name"))
        ok = ok and isinstance(e.get("size"), int) and e["size"] >= 0
        ok = ok and isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64
        if not ok or e["name"] in listed:
            raise _bad(archive, f"its manifest has a malformed entry {str(e)[:120]}")
        listed[e["name"]] = e
    if DATABASE not in listed:
        raise _bad(archive, f"it holds no {DATABASE}")
    if set(listed) != set(names) - {MANIFEST}:
        differ = sorted(set(listed) ^ (set(names) - {MANIFEST}))
        raise _bad(archive, f"its manifest and contents disagree on {', '.join(differ[:5])}")
    total = 0
    for name, e in listed.items():
        if zf.getinfo(name).file_size != e["size"]:
            raise _bad(archive, f"{name} is declared {e['size']} bytes but stored as "
                       f"{zf.getinfo(name).file_size}")  # fmt: skip
        total += e["size"]
    if total > max_bytes:
        raise _bad(archive, f"it would unpack to {total} bytes, more than the {max_bytes} allowed")
    return [listed[DATABASE]] + [listed[n] for n in sorted(listed) if n != DATABASE]


def _extract(
    archive: Path,
    zf: zipfile.ZipFile,
    entry: dict[str, Any],
    dst: Path,
    tick: Callable[[int], None],
) -> None:
    """Write one entry to ``dst`` (0600), refusing more bytes than declared or a wrong hash."""
    digest, size, limit = hashlib.sha256(), 0, entry["size"]
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, zf.open(entry["name"]) as src:
        try:
            while chunk := src.read(CHUNK_SIZE):
                size += len(chunk)
                if size > limit:
                    raise _bad(archive, f"{entry['name']} unpacks to more than its {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
                tick(len(chunk))
        except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
            raise _bad(archive, f"{entry['name']} cannot be read ({exc})") from None
        except Exception as exc:  # zlib.error and CRC errors surface as several types
            if isinstance(exc, (ArchiveError, OSError)):
                raise
            raise _bad(archive, f"{entry['name']} cannot be read ({exc})") from None
        out.flush()
        os.fsync(out.fileno())
    if size != limit or digest.hexdigest() != entry["sha256"]:
        raise _bad(archive, f"{entry['name']} does not match its sha256 in the manifest")


def _check_snapshot(archive: Path, path: Path, known: set[str]) -> list[str]:
    """integrity_check and schema history of the unpacked snapshot; its applied migrations."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            history = []
            if schema.HISTORY_TABLE in tables:
                history = [r[0] for r in conn.execute(
                    f'SELECT "name" FROM "{schema.HISTORY_TABLE}" ORDER BY "id"')]  # fmt: skip
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise _bad(archive, f"its database is not a SQLite database ({exc})") from None
    if problems != ["ok"]:
        raise _bad(archive, f"its database fails PRAGMA integrity_check: {'; '.join(problems[:3])}")
    if not history:
        raise _bad(archive, "its database is not a localchat store (no schema history)")
    unknown = [n for n in history if n not in known]
    if unknown:
        raise SchemaTooNew(
            f"{archive} was made by a newer localchat (unknown migrations: {', '.join(unknown)}); "
            "upgrade localchat to restore it. Nothing was changed."
        )
    return history


def _settle(archive: Path, stage: Path, store: Store, files: set[str]) -> tuple[list[str], str]:
    """Upgrade the staged snapshot, give its own folder the files; (applied, schema version)."""
    staged = Store(resolve(stage / "db"), migrations_dir=store.migrations_dir)
    try:
        applied = staged.upgrade()
    finally:
        staged.close()
    conn = sqlite3.connect(str(stage / "db"), isolation_level=None)
    try:
        return _adopt(archive, stage, conn, files, applied)
    except sqlite3.Error as exc:
        raise _bad(archive, f"its database does not hold localchat's tables ({exc})") from None
    finally:
        conn.close()


def _adopt(
    archive: Path, stage: Path, conn: sqlite3.Connection, files: set[str], applied: list[str]
) -> tuple[list[str], str]:
    """The staged store takes its files: marker of its identity, storage_dir rows moved in."""
    identity = conn.execute('SELECT "uuid" FROM "store_identity" LIMIT 1').fetchone()
    if identity is None:
        raise _bad(archive, "its database has no store identity")
    # Files that lived in a storage_dir now live in the store's own folder.
    conn.executemany(
        'UPDATE "document" SET "path" = NULL WHERE "stored_name" = ? AND "path" IS NOT NULL',
        [(name,) for name in sorted(files)],
    )
    version = conn.execute(
        f'SELECT "name" FROM "{schema.HISTORY_TABLE}" ORDER BY "id" DESC LIMIT 1'
    ).fetchone()[0]
    conn.execute("PRAGMA journal_mode = DELETE")  # nothing left in a -wal beside it
    mark_folder(stage / "files", str(identity[0]))
    for leftover in stage.glob("db.pre-*"):  # the copy upgrade() took of the snapshot
        leftover.unlink()
    return applied, str(version)


def _free_space(folder: Path, need: int, archive: Path) -> None:
    free = shutil.disk_usage(folder).free
    if need > free:
        raise StoreFull(
            f"restoring {archive} needs {need} bytes in {folder}, only {free} are free; "
            "nothing was changed."
        )


def restore_store(
    archive: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    app_name: str = DEFAULT_APP_NAME,
    progress: Progress | None = None,
    max_bytes: int = MAX_RESTORE_BYTES,
    wait: float = 5.0,
) -> RestoreResult:
    """Replace the store by the one in ``archive``, keeping the previous one beside it.

    Everything is checked in a staging folder beside the store before the
    store is touched (see the module docstring); :class:`ArchiveError` says
    what is wrong with a damaged or hostile archive, :class:`SchemaTooNew`
    refuses a snapshot from a newer localchat, and :class:`StoreBusy` a store
    another connection has open (``wait`` seconds for it to close). The
    store may not exist yet.
    """
    started = time.monotonic()
    source = Path(archive)
    store = _sqlite_store(db_path, url, app_name, "restore")
    db = store.path
    assert db is not None
    if not source.is_file():
        raise NotFound(f"there is no archive at {source}.")
    if not zipfile.is_zipfile(source):
        raise _bad(source, "it is not a zip archive")
    store.check_file()  # settles an earlier interrupted restore; refuses a foreign file
    try:
        make_private_dirs(db.parent)
        with zipfile.ZipFile(source) as zf, store_swap.hold(db) as swap:
            plan = _plan(source, zf, max_bytes)
            total = sum(e["size"] for e in plan)
            _free_space(db.parent, total, source)
            stage = swap.new_stage()
            try:
                done = [0, 0]

                def tick(n: int) -> None:
                    done[0] += n
                    if progress is not None:
                        progress(done[0], total, done[1], len(plan))

                for entry in plan:
                    name = entry["name"]
                    dst = stage / "db" if name == DATABASE else stage / "files" / name[6:]
                    _extract(source, zf, entry, dst, tick)
                    done[1] += 1
                    tick(0)
                _check_snapshot(source, stage / "db", schema.shipped(store))
                names = {e["name"][6:] for e in plan[1:]}
                applied, version = _settle(source, stage, store, names)
                store.forget_state()  # our own idle connections would block the swap
                kept = swap.swap_in(stage, wait=wait)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    except zipfile.BadZipFile as exc:
        raise _bad(source, str(exc)) from None
    except OSError as exc:
        raise translate(exc, str(db)) or exc from exc
    store.forget_state()
    return RestoreResult(
        archive=str(source.absolute()),
        database=str(db),
        files_dir=str(files_dir_for(db)),
        kept=str(kept) if kept else None,
        schema_version=version,
        upgraded=applied,
        files=len(plan) - 1,
        file_bytes=sum(e["size"] for e in plan[1:]),
        database_bytes=plan[0]["size"],
        seconds=round(time.monotonic() - started, 3),
    )

"""Put a prepared store in place of another with renames, so a crash leaves one or the other.

    from localchat.store_swap import finish_interrupted, hold
    with hold(db) as swap:             # others opening the store get StoreBusy meanwhile
        stage = swap.new_stage()       # fill stage/db and stage/files/
        kept = swap.swap_in(stage)     # the old store's new name (<db>.pre-restore-<time>.bak)
    finish_interrupted(db)             # on open: complete or undo a swap a crash cut short

A store is its database file and its ``<db>-files/`` folder. Replacing both
cannot be one atomic step, so the swap writes a journal
(``<db>.restore-journal``) before its first rename and removes it after the
last. The renames, in order: the old database (and any ``-wal``/``-shm``) to
``<db>.pre-restore-<time>.bak``, the old folder to that name plus ``-files``
(the kept pair is itself a store that opens), the new folder into place, and
last the new database: that rename is the commit point. Whoever next opens the
store (:meth:`localchat.Store.check_file` calls :func:`finish_interrupted`)
finds the journal: if the new database is still in the staging folder the
swap is rolled back (every rename undone), otherwise it is finished. Either
way the staging folder is removed. The process that swaps holds an exclusive
``flock`` on the journal, so nobody "recovers" a swap that is still running:
they get :class:`~localchat.errors.StoreBusy` instead.

Before renaming, the old database is switched out of WAL (which needs every
other connection to it closed: a store in use is refused with ``StoreBusy``)
and locked exclusively until the new one is in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .config import files_dir_for
from .errors import StoreBusy, StoreError
from .storefile import retry_while_locked

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock, the journal still works
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "JOURNAL_SUFFIX",
    "journal_path",
    "hold",
    "Swap",
    "finish_interrupted",
    "kept_name",
    "fsync_dir",
]

JOURNAL_SUFFIX = ".restore-journal"
_SIDE = ("-wal", "-shm", "-journal")


def journal_path(db: Path) -> Path:
    """``<db>.restore-journal``: present only while a swap runs (or one was cut short)."""
    return db.with_name(db.name + JOURNAL_SUFFIX)


def kept_name(db: Path) -> Path:
    """A fresh ``<db>.pre-restore-<UTC time>.bak`` name for the store being replaced."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        name = db.with_name(f"{db.name}.pre-restore-{stamp}{'-' + str(n) if n else ''}.bak")
        if not os.path.lexists(name) and not os.path.lexists(files_dir_for(name)):
            return name
    raise StoreError(f"too many kept copies of {db} made this second; try again.")


def fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (best effort: not every platform can)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _journal_lock(db: Path) -> Iterator[int]:
    """The journal file, opened and exclusively locked; StoreBusy if a swap holds it."""
    path = journal_path(db)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusy(
                    f"{db} is being restored by another process; try again when it is done."
                ) from None
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _end_journal(db: Path, fd: int) -> None:
    os.ftruncate(fd, 0)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal_path(db))
    fsync_dir(db.parent)


def finish_interrupted(db: Path) -> str | None:
    """Complete or undo a swap a crash interrupted; ``"finished"``, ``"rolled back"`` or None.

    One ``stat`` when there is nothing to do. Raises StoreBusy while another
    process is swapping.
    """
    if not os.path.lexists(journal_path(db)):
        return None
    with _journal_lock(db) as fd:
        if not _same_file(fd, journal_path(db)):
            return None  # the swap that held it ended and removed it meanwhile
        raw = os.read(fd, 1 << 16)
        outcome = _recover(db, json.loads(raw)) if raw.strip() else None
        _remove_stages(db)
        _end_journal(db, fd)
        return outcome


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` if ``src`` is there and ``dst`` is not."""
    if os.path.lexists(src) and not os.path.lexists(dst):
        os.rename(src, dst)


def _recover(db: Path, journal: dict[str, str]) -> str:
    stage, kept = Path(journal["stage"]), Path(journal["kept"])
    new_db, new_files, files = stage / "db", stage / "files", files_dir_for(db)
    if not os.path.lexists(new_db):
        outcome = "finished"  # the commit point was passed: the new store is in place
    else:
        if not os.path.lexists(new_files) and os.path.lexists(files):
            os.rename(files, new_files)  # the new folder had been moved in: take it back
        _move(files_dir_for(kept), files)
        for side in _SIDE:
            _move(Path(f"{kept}{side}"), Path(f"{db}{side}"))
        _move(kept, db)
        outcome = "rolled back"
    shutil.rmtree(stage, ignore_errors=True)
    fsync_dir(db.parent)
    return outcome


def _exclusive(db: Path, wait: float) -> sqlite3.Connection | None:
    """A connection holding the old database exclusively (out of WAL); None if no file.

    Leaving WAL needs every other connection closed, so a store some app has
    open is refused here, before anything is renamed.
    """
    if not db.exists():
        return None
    conn = sqlite3.connect(str(db), timeout=wait, isolation_level=None)

    def take() -> sqlite3.Connection:
        conn.execute("PRAGMA journal_mode = DELETE").fetchone()
        conn.execute("BEGIN EXCLUSIVE")
        return conn

    try:
        return retry_while_locked(
            take,
            db,
            wait,
            f"{db} is in use (another connection has it open); close the apps using it "
            "and try again. Nothing was changed.",
        )
    except BaseException:
        conn.close()
        raise


class Swap:
    """A restore's hold on the store: the journal lock, staging folders, the swap itself."""

    def __init__(self, db: Path, fd: int) -> None:
        self.db, self.fd = db, fd

    def new_stage(self) -> Path:
        """A private staging folder beside the store, with an empty ``files/`` in it."""
        stage = Path(tempfile.mkdtemp(dir=self.db.parent, prefix=_stage_prefix(self.db)))
        (stage / "files").mkdir(mode=0o700)
        return stage

    def swap_in(self, stage: Path, *, wait: float = 5.0) -> Path | None:
        """Replace the store by ``stage/db`` and ``stage/files``; returns the kept name.

        The previous store, if any, is kept as ``<db>.pre-restore-<time>.bak``
        with its folder beside it (``...bak-files``); None if there was none.
        ``stage`` is gone afterwards.
        """
        db, fd = self.db, self.fd
        old = _exclusive(db, wait)
        try:
            kept = kept_name(db)
            os.write(fd, json.dumps({"stage": str(stage), "kept": str(kept)}).encode())
            os.fsync(fd)
            fsync_dir(db.parent)
            had_db = os.path.lexists(db)
            _move(db, kept)
            for side in _SIDE:
                _move(Path(f"{db}{side}"), Path(f"{kept}{side}"))
            _move(files_dir_for(db), files_dir_for(kept))
            os.rename(stage / "files", files_dir_for(db))
            os.rename(stage / "db", db)  # the commit point
            fsync_dir(db.parent)
        finally:
            if old is not None:
                old.close()
        shutil.rmtree(stage, ignore_errors=True)
        _end_journal(db, fd)
        return kept if had_db or os.path.lexists(files_dir_for(kept)) else None


def _stage_prefix(db: Path) -> str:
    return f".{db.name}.restore-"


def _remove_stages(db: Path) -> None:
    """Staging folders a killed restore left (only called under the journal lock)."""
    for leftover in db.parent.glob(_stage_prefix(db) + "*"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def hold(db: Path) -> Iterator[Swap]:
    """Hold the store for a restore: others opening it get StoreBusy until this ends.

    An earlier restore a crash interrupted is settled first; staging folders
    it left are removed. Leaving the block without swapping changes nothing.
    """
    with _journal_lock(db) as fd:
        raw = os.read(fd, 1 << 16)
        if raw.strip():  # an earlier swap died: settle it first
            _recover(db, json.loads(raw))
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        _remove_stages(db)
        try:
            yield Swap(db, fd)
        finally:
            _end_journal(db, fd)

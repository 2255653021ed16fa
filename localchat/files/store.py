"""The store's file folders: its identity, where they are, and whether rows and files agree.

    from localchat import local_session
    from localchat.repository import repair_file_store, verify_file_store

    with local_session() as s:                   # or get_session() for the user's store
        report = verify_file_store(s)            # missing, orphan, damaged files
        assert report.ok, [(i.kind, i.name) for i in report.issues]
        repair_file_store(s, dry_run=False)      # orphans go once this commits

Read by ``localchat files verify|repair``. A file is an *orphan* when it sits
in the store's own folder (``<database>-files/``), has a name the store makes
(``<32 hex>[.ext]``, or ``.tmp-...`` of an interrupted write) and no document
names it. Repair removes orphans only from a folder that carries this store's
marker and no other store's; a file of any other name there is reported as
``foreign`` and never removed. Other folders given as ``storage_dir``, and
``files/`` of stores made before migration 0005, are checked for the files
their documents name, never searched for orphans. With SQLite a session holds
the write lock, so no other writer is half-way through storing a file while
the folder is scanned.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import peewee

from ..database import Session
from ..errors import FileStoreError
from ..models import Document
from ..models.documents import stored_file_location
from ..operations import operation
from .disk import (
    MARKER_PREFIX,
    TEMP_PREFIX,
    folder_markers,
    hash_file,
    is_store_file_name,
    remove_if_unreferenced,
)

__all__ = [
    "FileIssue",
    "FileStoreReport",
    "check_folder",
    "store_identity",
    "verify_file_store",
    "repair_file_store",
]


IDENTITY_TABLE = "store_identity"


def store_identity(s: Session) -> str:
    """This store's uuid (32 hex digits), from migration 0005's one-row table."""
    facts = s.store.schema_facts
    known = facts.get(IDENTITY_TABLE)
    if known is None:
        try:
            if not s.db.table_exists(IDENTITY_TABLE):
                raise FileStoreError(
                    f"{s.store.config.describe()} has no store identity (migration "
                    "0005_store_identity is not applied); run `localchat migrate up`."
                )
            row = s.db.execute_sql(
                f'SELECT "uuid" FROM "{IDENTITY_TABLE}" ORDER BY "id" LIMIT 1'
            ).fetchone()
        except peewee.PeeweeException as exc:
            raise FileStoreError(f"cannot read the store identity: {exc}") from exc
        if row is None:
            raise FileStoreError(f"the {IDENTITY_TABLE} table of this store is empty.")
        known = facts[IDENTITY_TABLE] = str(row[0])
    return str(known)


def default_folder(s: Session) -> Path | None:
    """The real path of the store's own folder, ``<database>-files`` (None on PostgreSQL)."""
    folder = s.store.files_dir
    return Path(os.path.realpath(folder)) if folder is not None else None


def legacy_folder(s: Session) -> Path | None:
    """The real path of ``files/`` beside the database: read-only, for old stores' files."""
    folder = s.store.config.legacy_files_dir
    return Path(os.path.realpath(folder)) if folder is not None else None


def release_later(s: Session, name: str, path: Path) -> None:
    """Delete the file after the commit if it is the store's own and no document uses it."""
    callback = functools.partial(remove_if_unreferenced, s.db, name, path, store_identity(s))
    s.after_commit(callback)


@dataclass(frozen=True)
class FileIssue:
    """One disagreement between the rows and the disk."""

    kind: str  # missing | orphan | foreign | size_mismatch | hash_mismatch | not_a_file
    name: str
    path: str
    document_ids: tuple[int, ...] = ()
    detail: str = ""


@dataclass
class FileStoreReport:
    """What :func:`check_folder` found; ``ok`` when nothing disagrees."""

    folder: str | None
    documents: int = 0
    files: int = 0
    issues: list[FileIssue] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    dry_run: bool = True
    #: Whether orphans may be removed: the folder carries this store's marker only.
    cleanable: bool = False
    #: Why orphans are not removed, when they are not.
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.issues

    def of_kind(self, kind: str) -> list[FileIssue]:
        return [i for i in self.issues if i.kind == kind]

    @property
    def remaining(self) -> list[FileIssue]:
        """The issues still there after this repair (all of them after a dry run)."""
        gone = set() if self.dry_run else set(self.removed)
        return [i for i in self.issues if not (i.kind == "orphan" and i.name in gone)]

    @property
    def missing(self) -> list[FileIssue]:
        return self.of_kind("missing")

    @property
    def orphans(self) -> list[FileIssue]:
        return self.of_kind("orphan")

    @property
    def foreign(self) -> list[FileIssue]:
        return self.of_kind("foreign")

    @property
    def mismatches(self) -> list[FileIssue]:
        return self.of_kind("size_mismatch") + self.of_kind("hash_mismatch")

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "ok": self.ok,
            "documents": self.documents,
            "files": self.files,
            "issues": [asdict(i) | {"document_ids": list(i.document_ids)} for i in self.issues],
            "removed": self.removed,
            "dry_run": self.dry_run,
            "cleanable": self.cleanable,
            "note": self.note,
        }


def check_folder(
    folder: Path | None,
    rows: Iterable[tuple[int, str | None, str | None, str | None, int | None]],
    *,
    hashes: bool = True,
    legacy: Path | None = None,
    identity: str | None = None,
) -> FileStoreReport:
    """Compare document rows ``(id, stored_name, path, sha256, size)`` with the disk.

    Files of rows with a stored name are checked wherever they live (``folder``
    when ``path`` is empty, or ``legacy`` if the file is only there). Orphans
    are looked for in ``folder`` only: a file there with a name the store
    makes that no row names. ``cleanable`` says whether ``folder`` carries the
    marker of the store ``identity`` and of no other store.
    """
    report = FileStoreReport(str(folder) if folder is not None else None)
    expected: dict[Path, list[tuple[int, str, str | None, int | None]]] = {}
    protected: set[Path] = set()
    for doc_id, name, path, sha, size in rows:
        report.documents += 1
        if path:
            protected.add(_real(path))
        if not name:
            continue
        found = stored_file_location(name, path, folder, legacy)
        if found is None:
            where = str(path or name)
            report.issues.append(FileIssue("missing", name, where, (doc_id,), "no usable location"))
            continue
        expected.setdefault(_real(str(found)), []).append((doc_id, name, sha, size))
    for location, users in sorted(expected.items()):
        report.files += 1
        issue = _check_one(location, users, hashes)
        if issue is not None:
            report.issues.append(issue)
    if folder is not None and folder.is_dir():
        _ownership(report, folder, identity)
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            entry_path = Path(entry.path)
            if entry_path in expected or entry_path in protected:
                continue
            if entry.name.startswith(MARKER_PREFIX) and entry.is_file(follow_symlinks=False):
                continue
            plain = entry.is_file(follow_symlinks=False) or entry.is_symlink()
            if plain and is_store_file_name(entry.name):
                detail = "interrupted write" if entry.name.startswith(TEMP_PREFIX) else ""
                report.issues.append(FileIssue("orphan", entry.name, entry.path, (), detail))
            elif plain:
                detail = "not written by the store; never removed"
                report.issues.append(FileIssue("foreign", entry.name, entry.path, (), detail))
            else:
                report.issues.append(
                    FileIssue("not_a_file", entry.name, entry.path, (), "unexpected entry")
                )
    return report


def _ownership(report: FileStoreReport, folder: Path, identity: str | None) -> None:
    """Set ``cleanable`` (and ``note``) from the markers found in ``folder``."""
    owners = folder_markers(folder)
    if identity is not None and owners == {identity}:
        report.cleanable = True
    elif not owners:
        report.note = "orphans are not removed: the folder is not marked as this store's"
    elif identity not in owners:
        report.note = "orphans are not removed: the folder is marked by another store"
    else:
        others = ", ".join(sorted(owners - {identity}))
        report.note = f"orphans are not removed: the folder is shared with another store ({others})"


def _real(path: str) -> Path:
    """``path`` with its folder resolved (the last part is not followed)."""
    where = Path(path)
    return Path(os.path.realpath(where.parent)) / where.name


def _check_one(
    location: Path, users: list[tuple[int, str, str | None, int | None]], hashes: bool
) -> FileIssue | None:
    ids = tuple(u[0] for u in users)
    name = users[0][1]
    try:
        st = os.lstat(location)
    except FileNotFoundError:
        return FileIssue("missing", name, str(location), ids)
    if not stat.S_ISREG(st.st_mode):
        return FileIssue("not_a_file", name, str(location), ids, "not a regular file")
    sizes = {u[3] for u in users if u[3] is not None}
    if sizes and sizes != {st.st_size}:
        detail = f"{st.st_size} bytes on disk, {sorted(sizes)} recorded"
        return FileIssue("size_mismatch", name, str(location), ids, detail)
    shas = {u[2] for u in users if u[2]}
    if hashes and shas:
        actual, _ = hash_file(location)
        if shas != {actual}:
            return FileIssue("hash_mismatch", name, str(location), ids, f"sha256 {actual}")
    return None


@operation
def verify_file_store(s: Session, *, hashes: bool = True) -> FileStoreReport:
    """Compare the document rows with the files: missing, orphan, damaged. Read-only.

    ``hashes=False`` checks sizes only (fast). Orphans are looked for in the
    store's own folder; files in other ``storage_dir`` folders, and in
    ``files/`` of stores made before migration 0005, are checked for
    presence, size and content.
    """
    rows = Document.select(
        Document.id, Document.stored_name, Document.path, Document.sha256, Document.size
    ).tuples()
    return check_folder(
        default_folder(s),
        list(rows),  # type: ignore[arg-type]
        hashes=hashes,
        legacy=legacy_folder(s),
        identity=store_identity(s),
    )


@operation
def repair_file_store(s: Session, dry_run: bool = True, *, hashes: bool = True) -> FileStoreReport:
    """Remove orphan files (after the commit); a dry run unless ``dry_run=False``.

    ``report.removed`` names the files removed (or that would be): orphans of
    the store's own folder, only while it carries this store's marker and no
    other's (else ``report.note`` says why nothing is removed). Missing or
    damaged files are reported, never "fixed": they need a backup, or the same
    content stored again, which heals them. Foreign files are never removed.
    """
    report = verify_file_store(s, hashes=hashes)
    report.dry_run = dry_run
    for issue in report.orphans if report.cleanable else []:
        report.removed.append(issue.name)
        if not dry_run:
            release_later(s, issue.name, Path(issue.path))
    return report
